"""`make demo`'s wall time for two commits, side by side in one job (the earlier one is the baseline).

python scripts/bench_demo_time.py [--base REV] [--rev HEAD] [--out benchmarks/results/demo_time_cpu2.json]
Each commit is cloned fresh into a temporary folder that shares this checkout's installed .venv (the time after
install, as the target states); `make demo` runs there and the per-stage start times it prints are kept.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inspection.evaluation.machine import machine_info  # noqa: E402

STAGE_LINE = re.compile(r"^\[\s*(\d+) s\] (\S+)$")


def time_demo(rev: str, work: Path) -> dict:
    """One fresh clone of `rev`, `make demo` in it; wall seconds and the stage start times it printed."""
    clone = work / rev[:12]
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", rev], cwd=clone, check=True)
    (clone / ".venv").symlink_to(REPO / ".venv")
    (clone / ".venv" / ".installed").touch()  # installed already: make must not reinstall into the shared venv
    t0 = time.perf_counter()
    p = subprocess.run(["make", "demo"], cwd=clone, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"make demo failed at {rev}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    starts = [(m.group(2), int(m.group(1))) for m in map(STAGE_LINE.match, p.stdout.splitlines()) if m]
    table = [ln for ln in p.stdout.splitlines() if ln.startswith("| ")]
    return {"rev": subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True,
                                  check=True).stdout.strip(),
            "make_demo_wall_seconds": round(wall, 1), "stage_starts_seconds": dict(starts), "table": table}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="3888537", help="the earlier commit (the baseline of the ratio)")
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/demo_time_cpu2.json")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="demo-time-") as tmp:
        base, new = time_demo(a.base, Path(tmp)), time_demo(a.rev, Path(tmp))
    out = {"what": "`make demo` from a fresh clone of each commit (the project's .venv already installed), one "
                   "after the other in one job on the same machine",
           "baseline_in_this_run": base, "this_change": new,
           "ratio_new_over_base": round(new["make_demo_wall_seconds"] / base["make_demo_wall_seconds"], 3),
           "target_seconds": 300, "machine": machine_info()}
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("ratio_new_over_base",)} |
                     {"base_s": base["make_demo_wall_seconds"], "new_s": new["make_demo_wall_seconds"]}))


if __name__ == "__main__":
    main()
