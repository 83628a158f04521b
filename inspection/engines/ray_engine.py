"""Ray engine: batch inspection spread over a Ray cluster with Ray Data; an `edge.engine.Inspector`.

The paths travel, not the pixels: Ray Data cuts the path list into batches and `map_batches` hands them to a pool
of actors, each holding one of the project's own engines (ONNX Runtime on CPU or CUDA for model.onnx, the torch
engine for a checkpoint), which read and decode the files where they run. The model file travels once, through
the object store, so worker nodes need no shared disk for it. Actors return probabilities (and defect maps) per
path; the driver applies the card's thresholds with `core.postprocess` like every engine and yields ImageResults
in input order (`preserve_order`), so the edge runner lists, resumes, writes and summarises exactly as it does
for a local run: same rows, same verdicts, unreadable files as ERROR rows. Install with `pip install
'inspection[cluster]'`; the core and edge installs never import Ray.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np

from inspection.core.errors import InspectionError
from inspection.core.results import ImageResult
from inspection.edge.engine import CardBacked, Inspector
from inspection.edge.inspector import OnnxInspector
from inspection.edge.providers import available_cpus

DEFAULT_BATCH_SIZE = 64  # paths per actor call: large enough to amortise Ray's per-batch overhead
WINDOW = 100_000  # paths per Ray Data run: the driver holds at most this many paths, each run restarts the pool
TORCH_SUFFIXES = (".pt", ".ckpt")
MAX_REMOTE_BYTES = 256 << 20  # an object-store image larger than this is an error row, not a download


def import_ray():
    """`ray` with Ray Data, or an InspectionError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise InspectionError(f"--engine ray needs Ray Data ({e}): pip install 'inspection[cluster]'") from None
    return ray


def open_local(model: Path, device: str, threads: int) -> Inspector:
    """The engine one actor runs: ONNX Runtime for model.onnx, the torch engine for a checkpoint."""
    if model.suffix in TORCH_SUFFIXES:
        from inspection.engines.torch_engine import TorchInspector

        # threads, not processes: an actor is already one process per slot of the pool
        return TorchInspector(model, device=device, readers="threads", require_gpu=device == "cuda")
    return OnnxInspector(model, device=device, require_gpu=device in ("cuda", "tensorrt"), threads=threads)


class BatchWorker:
    """Ray Data callable class: one engine per actor, built once, then fed batches of paths."""

    def __init__(self, model_name: str, model_bytes: bytes, device: str, workers: int):
        folder = Path(tempfile.mkdtemp(prefix="inspection-ray-"))
        path = folder / model_name
        path.write_bytes(model_bytes)
        self.workers, self.scratch, self._filesystems = workers, folder, {}
        self.engine = open_local(path, device, threads=workers)
        self.n_classes = len(self.engine.card.class_names)
        self.map_shape: tuple[int, ...] | None = None
        if self.engine.card.defect_map:  # fixed column shapes: probe the map size once on a blank image
            import cv2

            spec = self.engine.card.preprocess
            blank = folder / "blank.png"
            cv2.imwrite(str(blank), np.zeros((spec.height, spec.width, spec.channels), np.uint8))
            probe = next(iter(self.engine.iter_results([str(blank)], 1, 1)))[0]
            self.map_shape = tuple(probe.defect_map.shape)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        local, failed = self._localise(paths)
        todo = [i for i in range(len(paths)) if i not in failed]
        done = [r for part in self.engine.iter_results([local[i] for i in todo], len(paths), self.workers)
                for r in part] if todo else []
        results = [ImageResult(p, error=failed.get(i)) for i, p in enumerate(paths)]
        for i, r in zip(todo, done, strict=True):
            r.path = paths[i]
            results[i] = r
        for i in todo:
            if local[i] != paths[i]:
                os.unlink(local[i])
        probs = np.full((len(paths), self.n_classes), np.nan, np.float32)
        out = {"path": np.array(paths, dtype=object),
               "error": np.array([r.error or "" for r in results], dtype=object)}
        maps = np.full((len(paths), *self.map_shape), np.nan, np.float32) if self.map_shape else None
        for i, r in enumerate(results):
            if r.error is None and r.probs is not None:
                probs[i] = r.probs
                if maps is not None and r.defect_map is not None:
                    maps[i] = r.defect_map
        out["probs"] = probs
        if maps is not None:
            out["defect_map"] = maps
        return out

    def _localise(self, paths: list[str]) -> tuple[list[str], dict[int, str]]:
        """Object-store URIs (s3://, gs://, hdfs://, file://) → files in this actor's scratch folder, fetched with
        pyarrow.fs (credentials from the node's environment); plain paths pass through. Returns (paths to read,
        {index: error} for URIs that cannot be fetched): like unreadable files, they become ERROR rows."""
        local, failed = list(paths), {}
        if not any("://" in p for p in paths):
            return local, failed
        from pyarrow.fs import FileType

        for i, p in enumerate(paths):
            if "://" not in p:
                continue
            try:
                fs, key = self._filesystem(p)
                info = fs.get_file_info(key)
                if info.type == FileType.NotFound:
                    failed[i] = "file not found"
                elif info.type != FileType.File:
                    failed[i] = "not a file"
                elif info.size > MAX_REMOTE_BYTES:
                    failed[i] = f"too large to fetch ({info.size} bytes > {MAX_REMOTE_BYTES})"
                else:
                    with fs.open_input_stream(key) as f:
                        local[i] = str(self.scratch / f"{i}{Path(key).suffix}")
                        Path(local[i]).write_bytes(f.read())
            except Exception as e:  # pyarrow raises OSError/ArrowInvalid/…: an error row, never a dead actor
                failed[i] = f"cannot fetch: {type(e).__name__}: {e}"
        return local, failed

    def _filesystem(self, uri: str):
        """(pyarrow filesystem, path inside it); one client per s3/gs bucket (creating one may cost a round trip)."""
        import pyarrow.fs as pafs

        scheme, rest = uri.split("://", 1)
        if scheme not in ("s3", "gs", "gcs"):
            return pafs.FileSystem.from_uri(uri)
        root = f"{scheme}://{rest.split('/', 1)[0]}"
        if root not in self._filesystems:
            self._filesystems[root] = pafs.FileSystem.from_uri(uri)[0]
        return self._filesystems[root], rest.split("?", 1)[0]


class RayInspector(CardBacked):
    """Run a model over a Ray cluster: `address` None starts a private local one (stopped by close()), "auto"
    joins the running cluster, "ray://head:10001" connects through Ray Client. `concurrency` actors (default:
    every CPU, or every GPU / `gpus_per_worker`), each with `gpus_per_worker` GPUs."""

    def __init__(self, model: str | os.PathLike, device: str = "auto", address: str | None = None,
                 concurrency: int | None = None, gpus_per_worker: float = 0.0, window: int = WINDOW):
        p = Path(model)
        if not p.is_file():
            raise InspectionError(f"{p}: model file not found")
        if gpus_per_worker < 0:
            raise InspectionError(f"--gpus-per-worker must be >= 0, got {gpus_per_worker}")
        if gpus_per_worker == 0 and device in ("cuda", "tensorrt"):
            raise InspectionError(f"--device {device} with --engine ray needs --gpus-per-worker > 0 (Ray hides "
                                  "the GPUs from actors that reserve none)")
        if p.suffix in TORCH_SUFFIXES and device == "tensorrt":
            raise InspectionError(f"{p}: --device tensorrt runs an ONNX model; a checkpoint runs on cuda or cpu")
        self.path, self.window, self.gpus = p, max(1, window), gpus_per_worker
        self.device = device if device != "auto" else ("cuda" if gpus_per_worker else "cpu")
        # The card and hash come from the file itself, opened here on the CPU: bad models fail before Ray starts.
        local = open_local(p, "cpu", threads=1)
        self.card, self.model_hash = local.card, local.model_hash
        local.close()
        self.ray = import_ray()
        self._owns_ray = False
        if concurrency is not None and concurrency < 1:
            raise InspectionError(f"--concurrency must be >= 1, got {concurrency}")
        self._start(address, concurrency)
        self._requested = concurrency
        self.concurrency = concurrency or self._default_concurrency(1)
        self._model_bytes = p.read_bytes()

    def _start(self, address: str | None, concurrency: int | None) -> None:
        ray = self.ray
        self.address = address or "local"
        if ray.is_initialized():
            return  # a session the caller started (a notebook, a test): used as is and left running
        # Quiet by default: Ray's and Ray Data's own INFO lines and the workers' output stay in /tmp/ray logs.
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
        local = {"num_cpus": max(available_cpus(), concurrency or 0)} if address is None else {}
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=True,
                     logging_level=logging.ERROR, **local)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise InspectionError(f"--address {self.address}: cannot start or reach a Ray cluster ({e})") from None
        self._owns_ray = True
        ctx = self.ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the runner draws its own progress line

    def _default_concurrency(self, workers: int) -> int:
        """One actor per `workers` CPUs, or per GPU share, of what the cluster has now."""
        res = self.ray.cluster_resources()
        if self.gpus:
            return max(1, int(res.get("GPU", 0) // self.gpus))
        return max(1, int(res.get("CPU", 1) // workers))

    def _check_fits(self, workers: int) -> None:
        """A pool the private local cluster cannot hold would wait forever: refuse it (a joined cluster may
        autoscale, so it is not checked)."""
        if not self._owns_ray or self.address != "local":
            return
        res = self.ray.cluster_resources()
        for what, need, have in (("CPUs", self.concurrency * workers, res.get("CPU", 0)),
                                 ("GPUs", self.concurrency * self.gpus, res.get("GPU", 0))):
            if need > have:
                raise InspectionError(f"--engine ray: {self.concurrency} actors need {need:g} {what} (--workers "
                                      f"{workers} each{f', --gpus-per-worker {self.gpus:g}' if self.gpus else ''})"
                                      f"; this machine's local cluster has {have:g}")

    def describe(self) -> str:
        return self.describe_card()

    def runs_on(self) -> str:
        gpus = f", {self.gpus:g} GPU each" if self.gpus else ""
        kind = "torch" if self.path.suffix in TORCH_SUFFIXES else "onnxruntime"
        return f"ray ({self.address}): {self.concurrency} actors, {kind} {self.device}{gpus}"

    def iter_results(self, paths: Iterable[str], batch_size: int | None = None,
                     workers: int | None = None) -> Iterator[list[ImageResult]]:
        """Batches in input order; `workers`: decode threads (and CPUs reserved) per actor, default 1."""
        batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
        if batch_size < 1:
            raise InspectionError(f"batch size must be >= 1, got {batch_size}")
        workers = max(1, workers or 1)
        self.concurrency = self._requested or self._default_concurrency(workers)
        self._check_fits(workers)
        it = iter(paths)
        while window := list(islice(it, self.window)):
            yield from self._run_window(window, batch_size, workers)

    def _run_window(self, window: list[str], batch_size: int, workers: int) -> Iterator[list[ImageResult]]:
        ray = self.ray
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # rows in input order: resume and diffs read like local runs
        n_blocks = max(1, min(len(window) // batch_size, 10 * self.concurrency))
        ds = ray.data.from_items([{"path": p} for p in window], override_num_blocks=n_blocks)
        args = {"batch_size": batch_size, "batch_format": "numpy", "num_cpus": workers, "num_gpus": self.gpus or None,
                "compute": ray.data.ActorPoolStrategy(size=self.concurrency),
                "fn_constructor_kwargs": {"model_name": self.path.name, "model_bytes": self._model_bytes,
                                          "device": self.device, "workers": workers}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # max_restarts has no named parameter (yet)
            try:
                # A dead actor fails the run loudly instead of restarting: its rows so far are written and
                # --resume finishes the rest; restarts would also log one C++ error line per actor
                # (ray-project/ray#53727).
                ds = ds.map_batches(BatchWorker, **args, max_restarts=0)
            except TypeError:  # a Ray that no longer takes remote args as keywords
                ds = ds.map_batches(BatchWorker, **args)
        start = 0
        try:
            for b in ds.iter_batches(batch_size=batch_size, batch_format="numpy", prefetch_batches=2):
                results = self._to_results(b)
                expected = window[start : start + len(results)]
                if [r.path for r in results] != expected:
                    raise InspectionError("ray: results came back out of order; rows would not match paths")
                start += len(results)
                yield results
        except ray.exceptions.RayError as e:
            first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise InspectionError(f"ray: a worker failed ({first})") from None
        if start != len(window):
            raise InspectionError(f"ray: {len(window) - start} of {len(window)} paths came back without a result")

    def _to_results(self, b: dict[str, np.ndarray]) -> list[ImageResult]:
        errors = [str(e) for e in b["error"]]
        results = [ImageResult(str(p), error=e or None) for p, e in zip(b["path"], errors, strict=True)]
        ok = [i for i, e in enumerate(errors) if not e]
        if ok:
            probs = np.asarray(b["probs"], np.float32)[ok]
            maps = b.get("defect_map")
            for k, i in enumerate(ok):
                results[i].probs = probs[k]
                if maps is not None:
                    results[i].defect_map = np.asarray(maps[i], np.float32)
            for i, verdict in zip(ok, self.decide(probs), strict=True):
                results[i].verdict = verdict
        return results

    def close(self) -> None:
        """Stop the local Ray cluster this engine started (a joined or caller-started one is left running)."""
        if self._owns_ray and self.ray.is_initialized():
            self.ray.shutdown()
        self._owns_ray = False
