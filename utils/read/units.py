"""How a reader reads a metric: its unit (years, a share, a raw loss), a figure and a difference in that unit, and
Welch's sentence written in it."""

from __future__ import annotations

from ..base.labels import AGE_SCALE
from ..base.stats import welch_sentence
from .tables import readable_name


def unit(metric: str) -> str:
    """How a reader reads a metric: 'years' (ages; a normalised MAE is converted),
    'share' (accuracies) or 'raw' (losses)."""
    if metric == "age_mae" or metric.endswith("_years"):
        return "years"
    if metric.endswith("accuracy") or metric == "rank_consistency":
        return "share"
    return "raw"


def display_scale(metric: str) -> float:
    """What a stored figure is multiplied by to be read: 116 for a normalised age MAE, 100 for a share, else 1."""
    return AGE_SCALE if metric == "age_mae" else 100.0 if unit(metric) == "share" else 1.0


def welch_in_units(a: str, b: str, va, vb, metric: str, what: str | None = None) -> str:
    """``welch_sentence`` in the metric's reading unit: ages in years, accuracies in % (differences in points)."""
    kind, scale = unit(metric), display_scale(metric)
    style = {"years": (" y", 2, None), "share": ("%", 1, " points"), "raw": ("", 4, None)}[kind]
    return welch_sentence(
        a, b, va, vb, what or readable_name(metric), scale=scale, unit=style[0], digits=style[1], diff_unit=style[2]
    )


def _readable(metric: str, value: float) -> float:
    """The value in its reader's unit (a normalised age MAE × 116)."""
    return value * AGE_SCALE if metric == "age_mae" else value


def in_units(metric: str, value: float) -> str:
    """A figure in the unit a reader thinks in: ages in years, accuracies in per cent, losses as they are."""
    kind, v = unit(metric), _readable(metric, value)
    if kind == "years":
        return f"{v:.2f} y"
    if kind == "share":
        return f"{v:.1%}"
    return f"{v:.5f}" if metric == "age_loss" else f"{v:.4f}"


def gap(metric: str, ours: float, other: float, relative_to: str = "the article's figure") -> str:
    """How far apart two figures are, saying which kind of difference: years, percentage points,
    or relative per cent."""
    kind, d = unit(metric), abs(_readable(metric, ours) - _readable(metric, other))
    if kind == "years":
        return f"{d:.2f} years"
    if kind == "share":
        return f"{d * 100:.1f} percentage points"
    rel = d / abs(other)
    return f"{rel:.1%} relative to {relative_to}" if rel < 0.1 else f"{rel:.0%} relative to {relative_to}"
