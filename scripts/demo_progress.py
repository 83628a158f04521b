"""`make demo`'s reader of `dvc repro` output: one line per stage with its time; the full log goes to a file.

dvc repro 2>&1 | python scripts/demo_progress.py outputs/demo/repro.log
python scripts/demo_progress.py --summary outputs/pipeline/compare/report.json   (the demo's closing lines)
Every input line is written to the log (each stage's seconds to <log>.stages.json); the terminal shows "[ 12 s] train@baseline (4 s)" per stage, lines our
own verbs mark as progress ("[compare …]", "[search] …", "[data-centric] …"), and, when DVC reports an error,
the last 40 lines of the log. Exit status: 1 when the log holds an error, else 0 (the Makefile also checks
dvc's own exit status through pipefail).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

STAGE = re.compile(r"^Running stage '([^']+)'")
SKIPPED = re.compile(r"^Stage '([^']+)' didn't change, skipping")
PROGRESS = ("[compare", "[search]", "[data-centric]")


def main(log_path: str) -> int:
    """Filter stdin to the terminal, copy it whole to log_path; returns 1 when DVC reported an error."""
    log = Path(log_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    start = last = time.perf_counter()
    current, failed, skipped, timings = None, False, 0, []
    tail: list[str] = []
    with log.open("w") as out:
        for line in sys.stdin:
            out.write(line)
            out.flush()
            text = line.rstrip("\n")
            tail = [*tail[-39:], text]
            now = time.perf_counter()
            if m := STAGE.match(text):
                if current:
                    timings.append((current, now - last))
                current, last = m.group(1), now
                print(f"[{now - start:5.0f} s] {current}", flush=True)
            elif SKIPPED.match(text):
                skipped += 1
            elif text.startswith(PROGRESS):
                print(f"          {text}", flush=True)
            elif text.startswith("ERROR"):
                failed = True
    end = time.perf_counter()
    if current:
        timings.append((current, end - last))
    if failed:
        print(f"dvc repro failed; the last lines of {log}:", *tail, sep="\n", file=sys.stderr)
        return 1
    if timings:  # where the time goes, for benchmarks/: <log>.stages.json
        log.with_suffix(".stages.json").write_text(json.dumps(
            {"total_seconds": round(end - start, 1), "skipped": skipped,
             "stages": {name: round(sec, 1) for name, sec in timings}}, indent=2) + "\n")
        slow = ", ".join(f"{name} {sec:.0f} s" for name, sec in sorted(timings, key=lambda t: -t[1])[:4])
        print(f"[{end - start:5.0f} s] {len(timings)} stages run ({skipped} unchanged); slowest: {slow}. "
              f"Full log: {log}", flush=True)
    else:
        print(f"nothing to run: every stage is up to date ({skipped} unchanged). Full log: {log}", flush=True)
    return 0


def _delta(arm: dict) -> str:
    d = arm["delta_vs_baseline"]
    lo, hi = 100 * (d["mean"] - d["ci95"]), 100 * (d["mean"] + d["ci95"])
    ci = "" if d["ci95"] != d["ci95"] or d["ci95"] == 0 else f" (95% CI {lo:+.1f} to {hi:+.1f})"
    return f"{100 * d['mean']:+.1f} pt{ci}"


def summary(report_json: str) -> str:
    """What the user just saw, in words, from the compare report's own numbers."""
    r = json.loads(Path(report_json).read_text())
    arms, cur = r["arms"], r["curation"]
    base = 100 * arms["baseline"]["accuracy"]["mean"]
    return "\n".join([
        f"What you saw: {r['dataset']}, labelled by simulated labelers (one writes faint defects as their look-alike, "
        "an unwritten rule; slips; bad acquisitions);",
        f"  label noise in train/val {cur['label noise in train/val, v1 → v2']} after the audit and "
        f"{cur['relabel budget used']} asked again.",
        f"  On the same gold test split ({r['n_test']} images, {r['n_seeds']} seeds), baseline {base:.1f}% accuracy: "
        f"data-centric {_delta(arms['data_centric'])},",
        f"  model-centric {_delta(arms['model_centric'])}, oracle (gold labels) {_delta(arms['oracle'])}.",
    ])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--summary"]:
        print(summary(sys.argv[2]))
        sys.exit(0)
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "outputs/demo/repro.log"))
