"""Torch inspection engine for GPU servers: nvJPEG batch decode on the GPU, fp16 + channels_last, optional compile.

Same duck-typed interface as edge.OnnxInspector (load / predict / decide / iter_results), so the edge batch
runner, writers, resume and report work unchanged. Non-JPEG files and every file on a CPU-only machine go
through the shared core decode + resize; JPEGs at the model's size are decoded straight into GPU memory.
"""

from __future__ import annotations

import os
import pickle
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from inspection.core.errors import ImageDecodeError, InspectionError
from inspection.core.image import check_encoded, decode_image
from inspection.core.postprocess import Verdict, postprocess
from inspection.core.preprocess import load_model_input, resize_image
from inspection.edge.runner import ImageResult
from inspection.models.checkpoint import load_checkpoint
from inspection.models.normalize import Normalize


class _Providers:
    def __init__(self, text: str):
        self.text = text

    def describe(self) -> str:
        return self.text


class TorchInspector:
    """A checkpoint (model.pt) run by torch; `device` cuda or cpu; `precision` fp32 | fp16 | bf16."""

    def __init__(self, checkpoint: str | os.PathLike, device: str = "auto", precision: str = "fp16",
                 compile: bool = False, gpu_decode: bool = True, require_gpu: bool = False):
        p = Path(checkpoint)
        if not p.is_file():
            raise InspectionError(f"{p}: checkpoint not found")
        want_cuda = device in ("cuda", "auto")
        if want_cuda and not torch.cuda.is_available():
            if device == "cuda" or require_gpu:
                msg = f"--engine torch --device {device}: CUDA is not available (torch {torch.__version__})"
                if require_gpu:
                    raise InspectionError(msg)
                print(f"WARNING: {msg}; running on CPU", flush=True)
        self.device = torch.device("cuda" if want_cuda and torch.cuda.is_available() else "cpu")
        try:
            model = load_checkpoint(p)
        except (ValueError, KeyError, RuntimeError, pickle.UnpicklingError, EOFError) as e:
            raise InspectionError(f"{p}: not a usable inspection checkpoint ({e})") from None
        self.path, self.card_spec, self._names = p, model.spec, model.class_names
        self.thresholds = model.thresholds
        from inspection.edge.inspector import file_sha256

        self.model_hash = file_sha256(p)[:12]
        on_gpu = self.device.type == "cuda"
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision] if on_gpu \
            else torch.float32
        net = model.net.to(self.device, dtype=self.dtype).eval()
        self.norm = Normalize(model.spec, channels_last=on_gpu).to(self.device)
        if on_gpu:
            net = net.to(memory_format=torch.channels_last)
        self.net = torch.compile(net) if compile else net  # default mode: compiles in seconds, not minutes
        self.gpu_decode = gpu_decode and on_gpu
        self.providers = _Providers(f"torch {self.device.type} {precision if on_gpu else 'fp32'}"
                                    f"{' compiled' if compile else ''}{' nvjpeg' if self.gpu_decode else ''}")

    @property
    def class_names(self) -> list[str]:
        return self._names

    @property
    def spec(self):
        return self.card_spec

    def load(self, path: str | os.PathLike) -> np.ndarray:
        """CPU path: core decode + resize (identical to training evaluation and the edge runner)."""
        return load_model_input(path, self.spec)

    @torch.inference_mode()
    def predict_tensor(self, x_u8_nhwc: torch.Tensor) -> torch.Tensor:
        x = self.norm(x_u8_nhwc.to(self.device, non_blocking=True)).to(self.dtype)
        return torch.softmax(self.net(x).float(), dim=1)

    def predict(self, batch_u8_nhwc: np.ndarray) -> np.ndarray:
        if len(batch_u8_nhwc) == 0:
            return np.zeros((0, len(self._names)), np.float32)
        return self.predict_tensor(torch.from_numpy(np.ascontiguousarray(batch_u8_nhwc))).cpu().numpy()

    def decide(self, probs: np.ndarray) -> list[Verdict]:
        return postprocess(probs, self._names, self.thresholds)

    def describe(self) -> str:
        return f"{self.path.name} [{self.model_hash}] on {self.providers.describe()}"

    def _gpu_jpegs(self, datas: list[torch.Tensor]) -> torch.Tensor | None:
        """nvJPEG batch decode → uint8 NHWC at the model size, or None when this batch needs the CPU path."""
        from torchvision.io import ImageReadMode, decode_jpeg

        mode = ImageReadMode.GRAY if self.spec.channels == 1 else ImageReadMode.RGB
        try:
            imgs = decode_jpeg(datas, mode=mode, device=self.device)
        except RuntimeError:
            return None  # a corrupt file in the batch: let the CPU path report it per image
        out = []
        for im in imgs:
            if im.shape[1:] != (self.spec.height, self.spec.width):
                if self.spec.resize != "stretch":
                    return None
                # Antialiased bilinear approximates cv2 INTER_AREA; the parity check measures the gap.
                im = F.interpolate(im[None].float(), (self.spec.height, self.spec.width), mode="bilinear",
                                   antialias=True, align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
            out.append(im)
        return torch.stack(out).permute(0, 2, 3, 1)

    def iter_results(self, paths: Iterable[str], batch_size: int = 256, workers: int | None = None,
                     prefetch: int = 2) -> Iterator[list[ImageResult]]:
        """Read files in threads, decode JPEG batches on the GPU (others on CPU), classify; bounded prefetch."""
        it = iter(paths)

        def read(p: str) -> tuple[str, bytes | None, str | None, str | None]:
            try:
                data = Path(p).read_bytes()
                return p, data, check_encoded(data, p), None
            except ImageDecodeError as e:
                return p, None, None, e.reason
            except OSError as e:
                return p, None, None, f"cannot read: {e.strerror or e}"

        with ThreadPoolExecutor(max_workers=workers or min(16, os.cpu_count() or 1)) as pool:
            pending: deque = deque()

            def submit() -> None:
                chunk = list(islice(it, batch_size))
                if chunk:
                    pending.append(pool.map(read, chunk))

            for _ in range(max(1, prefetch)):
                submit()
            while pending:
                items = list(pending.popleft())
                submit()
                yield self._classify(items)

    def _classify(self, items: list[tuple[str, bytes | None, str | None, str | None]]) -> list[ImageResult]:
        results = [ImageResult(p, error=err) for p, _, _, err in items]
        jpeg_idx = [i for i, (_, d, fmt, _) in enumerate(items) if d is not None and fmt == "jpeg"]
        cpu_idx = [i for i, (_, d, fmt, _) in enumerate(items) if d is not None and fmt != "jpeg"]
        tensors, slots = [], []
        if self.gpu_decode and jpeg_idx:
            batch = self._gpu_jpegs([torch.frombuffer(bytearray(items[i][1]), dtype=torch.uint8) for i in jpeg_idx])
            if batch is None:
                cpu_idx += jpeg_idx
            else:
                tensors.append(batch)
                slots += jpeg_idx
        else:
            cpu_idx += jpeg_idx
        cpu_pixels = []
        for i in sorted(cpu_idx):
            try:
                cpu_pixels.append(resize_image(decode_image(items[i][1], items[i][0], self.spec.channels), self.spec))
                slots.append(i)
            except ImageDecodeError as e:
                results[i].error = e.reason
        if cpu_pixels:
            tensors.append(torch.from_numpy(np.stack(cpu_pixels)).to(self.device))
        if tensors:
            probs = self.predict_tensor(torch.cat(tensors)).cpu().numpy()
            for k, verdict, p in zip(slots, self.decide(probs), probs, strict=True):
                results[k].probs, results[k].verdict = p, verdict
        return results
