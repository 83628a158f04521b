"""Command line: the typer app and Hydra entry points — the only code that reads a DictConfig."""
