"""Read a chunk of image files for a batch engine: JPEG bytes kept for a GPU decoder, everything else decoded here.

Torch-free and picklable, so reader *processes* can run it as well as threads: opening and reading thousands of
small files is mostly Python work under the GIL, which more reader threads only contend for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inspection.core.errors import ImageDecodeError
from inspection.core.image import check_encoded, read_encoded
from inspection.core.preprocess import PreprocessSpec, decode_model_input


@dataclass
class FileChunk:
    """Per file, exactly one of: encoded JPEG bytes (`data`), model-size pixels (`pixels`), or an `error`."""

    paths: list[str] = field(default_factory=list)
    data: list[bytes | None] = field(default_factory=list)
    pixels: list[np.ndarray | None] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)

    def add(self, path: str, data: bytes | None = None, pixels: np.ndarray | None = None,
            error: str | None = None) -> None:
        self.paths.append(path)
        self.data.append(data)
        self.pixels.append(pixels)
        self.errors.append(error)

    def __len__(self) -> int:
        return len(self.paths)

    @classmethod
    def concat(cls, chunks) -> FileChunk:
        out = cls()
        for c in chunks:
            out.paths += c.paths
            out.data += c.data
            out.pixels += c.pixels
            out.errors += c.errors
        return out


def read_chunk(paths: list[str], spec: PreprocessSpec, keep_jpeg: bool, cpu_share: float = 0.0) -> FileChunk:
    """Read `paths`; JPEGs stay encoded when `keep_jpeg` (a GPU decoder takes them), others are decoded + resized
    with the core code the edge runner uses. `cpu_share` of the JPEGs, spread evenly, are decoded here anyway:
    the readers' CPU cores take that part of the decode work off the GPU decoder's one host thread.
    Unreadable or undecodable files get their error, never an exception."""
    out = FileChunk()
    for i, p in enumerate(paths):
        try:
            data = read_encoded(p)
            if keep_jpeg and check_encoded(data, p) == "jpeg" and int((i + 1) * cpu_share) == int(i * cpu_share):
                out.add(p, data=data)
            else:
                out.add(p, pixels=decode_model_input(data, p, spec))
        except ImageDecodeError as e:
            out.add(p, error=e.reason)
        except Exception as e:  # an unexpected decoder failure must not stop the batch
            out.add(p, error=f"{type(e).__name__}: {e}")
    return out
