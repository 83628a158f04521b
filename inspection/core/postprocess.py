"""Turn class probabilities into a line decision: OK / NG / REVIEW, plus the predicted class."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class Thresholds:
    """Decision rule. p_ng = 1 - sum(p[ok_classes]).

    NG when p_ng >= ng; OK when p_ng < ok; REVIEW in between. An NG row reports the most likely *defect* class
    (even when an OK class is the single most likely one), and that class's probability must reach
    `min_confidence` when it is > 0 (an unsure defect type goes to REVIEW). With no ok_classes (all classes are
    defect types, e.g. NEU steel) every image is a defect and only the type confidence decides NG vs REVIEW.
    """

    ok_classes: tuple[str, ...] = ()
    ng: float = 0.5
    ok: float = 0.5
    min_confidence: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.ok <= self.ng <= 1.0:
            raise ValueError(f"need 0 <= ok ({self.ok}) <= ng ({self.ng}) <= 1")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok_classes"] = list(self.ok_classes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Thresholds:
        return cls(
            ok_classes=tuple(d.get("ok_classes", ())),
            ng=float(d.get("ng", 0.5)),
            ok=float(d.get("ok", 0.5)),
            min_confidence=float(d.get("min_confidence", 0.0)),
        )


@dataclass(frozen=True)
class Verdict:
    """One image's decision."""

    verdict: str  # "OK" | "NG" | "REVIEW"
    predicted: str
    confidence: float
    p_ng: float
    probs: dict[str, float] = field(default_factory=dict)


def ng_probability(probs: np.ndarray, class_names: list[str], ok_classes: tuple[str, ...]) -> np.ndarray:
    """p(defective) per row: one minus the mass on OK classes."""
    ok_idx = [class_names.index(c) for c in ok_classes if c in class_names]
    if not ok_idx:
        return np.ones(probs.shape[0], np.float32)
    return 1.0 - probs[:, ok_idx].sum(axis=1)


def postprocess(probs: np.ndarray, class_names: list[str], thresholds: Thresholds) -> list[Verdict]:
    """Probabilities (N x C) → one Verdict per row."""
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(class_names):
        raise ValueError(f"probs shape {probs.shape} does not match {len(class_names)} classes")
    p_ng = ng_probability(probs, class_names, thresholds.ok_classes)
    top = probs.argmax(axis=1)
    defect = _top_defect(probs, class_names, thresholds.ok_classes)
    out = []
    for i in range(probs.shape[0]):
        k = int(top[i])
        if p_ng[i] >= thresholds.ng:
            # An NG row names a defect: when the OK class is the single most likely one but the defect classes
            # together pass the NG threshold, report the most likely defect class (never "NG, good").
            k = int(defect[i])
            verdict = "NG" if probs[i, k] >= thresholds.min_confidence else "REVIEW"
        elif p_ng[i] < thresholds.ok:
            verdict = "OK"
        else:
            verdict = "REVIEW"
        out.append(
            Verdict(
                verdict=verdict,
                predicted=class_names[k],
                confidence=float(probs[i, k]),
                p_ng=float(p_ng[i]),
                probs={c: float(probs[i, j]) for j, c in enumerate(class_names)},
            )
        )
    return out


def _top_defect(probs: np.ndarray, class_names: list[str], ok_classes: tuple[str, ...]) -> np.ndarray:
    """Per row, the most likely class that is not an OK class (the top class when every class is a defect)."""
    ok_idx = [class_names.index(c) for c in ok_classes if c in class_names]
    if not ok_idx or len(ok_idx) == len(class_names):
        return probs.argmax(axis=1)
    masked = probs.copy()
    masked[:, ok_idx] = -np.inf
    return masked.argmax(axis=1)
