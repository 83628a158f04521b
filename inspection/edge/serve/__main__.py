"""`python -m inspection.edge.serve MODEL.onnx`: the same as `python -m inspection.edge serve MODEL.onnx`."""

import sys

from inspection.edge.serve.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m inspection.edge.serve"))
