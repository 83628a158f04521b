"""Torch-free foundations shared by training, export and the edge runtime (numpy + OpenCV only)."""

from inspection.core.errors import ImageDecodeError, InspectionError, ManifestError, ModelCardError
from inspection.core.image import decode_image, read_image
from inspection.core.postprocess import Thresholds, Verdict, postprocess
from inspection.core.preprocess import PreprocessSpec, normalize, preprocess, resize_image

__all__ = [
    "ImageDecodeError",
    "InspectionError",
    "ManifestError",
    "ModelCardError",
    "PreprocessSpec",
    "Thresholds",
    "Verdict",
    "decode_image",
    "normalize",
    "postprocess",
    "preprocess",
    "read_image",
    "resize_image",
]
