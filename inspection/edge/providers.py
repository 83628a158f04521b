"""`--device auto|cpu|cuda|tensorrt` → ONNX Runtime execution providers, with loud (never silent) fallback."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import onnxruntime as ort

from inspection.core.errors import InspectionError

log = logging.getLogger("inspection.edge")

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
_SHORT = {CPU: "cpu", CUDA: "cuda", TRT: "tensorrt"}


class DeviceError(InspectionError):
    """A GPU execution provider was required but could not be used."""


@dataclass(frozen=True)
class ProviderChoice:
    """What was asked for and what ONNX Runtime actually loaded."""

    device: str
    requested: tuple[str, ...]
    active: tuple[str, ...]

    @property
    def gpu_requested(self) -> bool:
        return any(p != CPU for p in self.requested)

    @property
    def on_gpu(self) -> bool:
        return bool(self.active) and self.active[0] != CPU

    @property
    def fell_back(self) -> bool:
        return bool(self.requested) and bool(self.active) and self.active[0] != self.requested[0]

    def describe(self) -> str:
        used = _SHORT.get(self.active[0], self.active[0]) if self.active else "none"
        note = f" (requested {self.device}: {self.requested[0]} did NOT load)" if self.fell_back else ""
        return f"{used}{note}"


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask under taskset/cgroups, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def requested_providers(device: str) -> list[str]:
    """Provider list, best first, for a --device value (auto = CUDA when this ORT build has it, else CPU)."""
    if device not in DEVICES:
        raise InspectionError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if device == "cuda":
        return [CUDA, CPU]
    if device == "tensorrt":
        return [TRT, CUDA, CPU]
    return [CUDA, CPU] if CUDA in available else [CPU]


def _provider_options(name: str) -> dict:
    if name == TRT:
        # Engines are expensive to build: cache them next to nothing in particular unless told where.
        cache = os.environ.get("INSPECTION_TRT_CACHE", "")
        return {"trt_engine_cache_enable": "True", "trt_engine_cache_path": cache} if cache else {}
    return {}


_preloaded = False


def preload_gpu_libraries() -> None:
    """Load CUDA / cuDNN from the nvidia-* pip packages (onnxruntime-gpu[cuda,cudnn]) before the first GPU session.

    Without torch in the process nothing else loads them, and the CUDA provider would fail to find libcudart /
    libcudnn unless the system's LD_LIBRARY_PATH names them. A no-op on CPU builds and when already loaded.
    """
    global _preloaded
    if _preloaded or CUDA not in ort.get_available_providers() or not hasattr(ort, "preload_dlls"):
        return
    _preloaded = True
    try:
        ort.preload_dlls()
    except Exception as e:  # libraries from the system path may still work: the provider check below says
        log.warning("could not preload CUDA/cuDNN from the nvidia pip packages: %s", e)


def create_session(model_path: str, device: str = "auto", require_gpu: bool = False,
                   threads: int | None = None) -> tuple[ort.InferenceSession, ProviderChoice]:
    """Build an InferenceSession; compare the providers actually loaded with the request and say so loudly."""
    requested = requested_providers(device)
    if requested[0] != CPU:
        preload_gpu_libraries()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # ORT's own provider-load chatter; our warning below says it plainly
    if threads or available_cpus() < (os.cpu_count() or 1):
        # ORT sizes its pool from the machine's cores; under taskset/cgroup limits that oversubscribes.
        opts.intra_op_num_threads = threads or available_cpus()
    providers = [(p, _provider_options(p)) for p in requested]
    session = ort.InferenceSession(model_path, sess_options=opts, providers=providers)
    choice = ProviderChoice(device, tuple(requested), tuple(session.get_providers()))
    if choice.fell_back or (require_gpu and not choice.on_gpu):
        msg = (f"device {device!r}: wanted {requested[0]} but ONNX Runtime loaded {list(choice.active)}; "
               f"available in this build: {ort.get_available_providers()}. Check the CUDA/cuDNN/TensorRT "
               "libraries and that onnxruntime-gpu (not onnxruntime) is installed.")
        if require_gpu:
            raise DeviceError(f"GPU required but not in use: {msg}")
        if device == "auto":
            log.warning("auto device: GPU not usable, running on CPU. %s", msg)
        else:
            log.warning("!!! RUNNING ON CPU, NOT GPU !!! %s", msg)
    return session, choice
