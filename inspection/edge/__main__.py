"""`python -m inspection.edge MODEL SOURCE... --out results.csv`: batch inspection without torch or typer."""

import sys

from inspection.edge.cli import main

if __name__ == "__main__":
    sys.exit(main())
