"""Script form of `inspection train` / `evaluate`: what Lightning re-launches for each extra DDP process.

Lightning starts DDP workers by re-running the main script with the same Hydra overrides (plus a fixed
`hydra.run.dir`, so workers share the launcher's output folder instead of making new ones). The console
script's argv carries the verb (`inspection train ...`), which Hydra would misread as an override; this file
takes overrides only.
"""

import sys

if __name__ == "__main__":
    from inspection.cli.hydra_entry import evaluate_main, train_main

    verb = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in ("train", "evaluate") else "train"
    (train_main if verb == "train" else evaluate_main)()
