"""Short, unambiguous class labels for places with little room (contact-sheet captions, chart axes).

A name that fits is shown as it is. A longer one becomes `<n>·<start>…`, where n is its 1-based position in the
class list, so two long names with the same start ("oxide scale of plate system", "oxide scale of temperature
system") can never look alike; `legend` lists the full names behind every shortened one.
"""

from __future__ import annotations

from collections.abc import Sequence


def short_labels(names: Sequence[str], max_chars: int) -> dict[str, str]:
    """{name: label of at most max_chars characters}; unique whenever the names are."""
    out = {}
    for i, name in enumerate(names, 1):
        name = str(name)
        if len(name) <= max_chars:
            out[name] = name
            continue
        head = f"{i}·"
        room = max(1, max_chars - len(head) - 1)
        out[name] = f"{head}{name[:room].rstrip()}…"
    # a shortened label could equal another class's full name only by a strange coincidence: number them all then
    if len(set(out.values())) < len(out):
        out = {str(n): f"{i}·{str(n)[: max(1, max_chars - len(str(i)) - 2)]}…" for i, n in enumerate(names, 1)}
    return out


def legend(labels: dict[str, str]) -> list[str]:
    """'label = full name' for every shortened label, in class order."""
    return [f"{short} = {name}" for name, short in labels.items() if short != name]
