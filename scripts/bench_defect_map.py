"""CPU batch inspection with and without the defect map: segdec_resnet18 (two ONNX outputs) vs the classifier
with the same resnet18 encoder (tv:resnet18), both at the same input size, through the edge runner (files → rows).

    .venv/bin/python scripts/bench_defect_map.py [--size 256] [--images 300] [--rounds 3]

Untrained weights (throughput does not depend on them). Engines alternate round by round on the same files and
the median is reported, so a busy machine slows both alike. Writes benchmarks/results/defect_map_inspect_<dev>.json.
Target (issue 13): the map model within 1.3x of the classifier's time per image.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inspection.core.postprocess import Thresholds  # noqa: E402
from inspection.core.preprocess import PreprocessSpec  # noqa: E402
from inspection.edge.inspector import OnnxInspector  # noqa: E402
from inspection.edge.runner import Progress, run_inspection  # noqa: E402
from inspection.evaluation.machine import device_tag, machine_info  # noqa: E402
from inspection.export.onnx_export import export_onnx  # noqa: E402
from inspection.models.checkpoint import LoadedModel  # noqa: E402
from inspection.models.factory import create_backbone  # noqa: E402

PILL = REPO.parent / "shared" / "data" / "mvtec-pill"


def export(backbone: str, size: int, out: Path) -> Path:
    torch.manual_seed(0)
    net = create_backbone(backbone, 2, 3).eval()
    model = LoadedModel(net, ["defect", "good"], PreprocessSpec(size, size, 3), Thresholds(ok_classes=("good",)),
                        backbone)
    return export_onnx(model, out / backbone.replace(":", "_")).onnx_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    files = sorted(str(p) for p in PILL.glob("t*/*/*.jpg"))[: a.images]
    if not files:
        sys.exit(f"no images under {PILL}")
    info = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = {"classifier tv:resnet18": export("tv:resnet18", a.size, tmp),
                  "defect map segdec_resnet18": export("segdec_resnet18", a.size, tmp)}
        engines = {name: OnnxInspector(path, device="cpu") for name, path in models.items()}
        rates: dict[str, list[float]] = {name: [] for name in engines}
        for r in range(a.rounds + 1):  # round 0 warms up (graph optimisation, page cache)
            for k, (name, eng) in enumerate(engines.items()):
                out = tmp / f"rows-{r}-{k}.csv"
                t0 = time.perf_counter()
                s = run_inspection(eng, files, out, progress=Progress(enabled=False))
                if r:
                    rates[name].append(s.n_new / (time.perf_counter() - t0))
                print(f"round {r} {name}: {s.n_new / (time.perf_counter() - t0):.1f} img/s", flush=True)
    med = {name: round(statistics.median(v), 2) for name, v in rates.items()}
    ratio = med["classifier tv:resnet18"] / med["defect map segdec_resnet18"]
    result = {"what": "edge runner files → CSV rows, ORT CPU, same input size, untrained weights",
              "size": a.size, "images": len(files), "rounds": a.rounds, "img_per_s": med, "samples": rates,
              "time_ratio_map_vs_classifier": round(ratio, 3), "target_ratio": 1.3, "met": ratio <= 1.3,
              "machine": info, "loadavg_end": os.getloadavg()}
    out = a.out or REPO / "benchmarks" / "results" / f"defect_map_inspect_{device_tag(info)}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("size", "img_per_s", "time_ratio_map_vs_classifier", "met")}, indent=2))


if __name__ == "__main__":
    main()
