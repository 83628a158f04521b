"""Request bodies → named encoded images, within the limits: raw image bytes or multipart/form-data parts.

The whole body is read first, counted as it arrives (a chunked upload cannot dodge --max-body-mb), and only then
parsed; multipart parts are parsed from that bounded buffer with Starlette's parser (python-multipart).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

RAW_TYPES = ("image/", "application/octet-stream")


@dataclass
class ServeError(Exception):
    """A refused request: HTTP status, a short machine-readable kind (also the metrics label), the message."""

    status: int
    kind: str
    message: str


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it is known (Content-Length) or seen to exceed `max_bytes`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ServeError(400, "bad_request", f"Content-Length {declared!r} is not a number")
        if int(declared) > max_bytes:
            raise ServeError(413, "body_too_large", f"request body of {int(declared)} bytes exceeds the limit of "
                                                    f"{max_bytes} bytes (--max-body-mb)")
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ServeError(413, "body_too_large", f"request body exceeds the limit of {max_bytes} bytes "
                                                    "(--max-body-mb)")
        parts.append(chunk)
    return b"".join(parts)


async def read_images(request: Request, max_bytes: int, max_files: int, name: str | None) -> list[tuple[str, bytes]]:
    """(name, encoded bytes) per image: one for an image/* body (named by `name`), one per file part of a
    multipart/form-data body (named by its filename). 415 for any other content type, 400 for no image."""
    kind = media_type(request)
    if kind.startswith(RAW_TYPES):
        body = await read_body(request, max_bytes)
        if not body:
            raise ServeError(400, "empty_body", "the request body is empty; send the image bytes")
        return [(name or "upload", body)]
    if kind != "multipart/form-data":
        shown = kind or "none"
        raise ServeError(415, "unsupported_media_type", f"Content-Type {shown!r} is not accepted: send one image as "
                                                        "image/* (or application/octet-stream), or several as "
                                                        "multipart/form-data")
    body = await read_body(request, max_bytes)

    async def stream():
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=max_files, max_fields=max_files).parse()
    except MultiPartException as e:
        raise ServeError(400, "bad_multipart", f"malformed multipart body: {e.message}") from None
    try:
        files = [(i, v) for i, (_, v) in enumerate(form.multi_items()) if isinstance(v, UploadFile)]
        if not files:
            raise ServeError(400, "empty_body", "the multipart body has no file parts; send images as files")
        return [(f.filename or f"part-{i}", await f.read()) for i, f in files]
    finally:
        await form.close()
