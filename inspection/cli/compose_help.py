"""`--help` for the verbs that compose a Hydra config themselves (compare, search) instead of running @hydra.main.

Those verbs hand every argument to `compose()`, which would choke on `--help`; this prints what a user needs to
write overrides: the usage line, each config group with its options, and the composed defaults.
"""

from __future__ import annotations

from pathlib import Path

HELP_FLAGS = ("--help", "-h")


def wants_help(args: list[str]) -> bool:
    return any(a in HELP_FLAGS for a in args)


def config_groups(conf_dir: Path) -> dict[str, list[str]]:
    """Group name → option names, read from the conf/ tree (hydra/ internals left out)."""
    groups: dict[str, list[str]] = {}
    for sub in sorted(p for p in conf_dir.rglob("*") if p.is_dir()):
        options = sorted(f.stem for f in sub.glob("*.yaml"))
        if options:
            groups[sub.relative_to(conf_dir).as_posix()] = options
    return groups


def compose_help(config_name: str, usage: str) -> str:
    from omegaconf import OmegaConf

    from inspection.cli.compose import compose_config, config_dir

    conf = Path(config_dir())
    cfg = compose_config(config_name)
    lines = [usage, "", f"Config: {conf / (config_name + '.yaml')} — override any key as key=value.", "",
             "Config groups (group=option):"]
    lines += [f"  {g:<22} {', '.join(opts)}" for g, opts in config_groups(conf).items()]
    lines += ["", "Composed defaults:", OmegaConf.to_yaml(cfg)]
    return "\n".join(lines)


def answered_help(args: list[str], config_name: str, usage: str) -> bool:
    """Print the help and return True when `args` ask for it; the verb then stops."""
    if not wants_help(args):
        return False
    print(compose_help(config_name, usage))
    return True
