"""Computed prose about runs: each note states figures and applies its thresholds, nothing typed in by hand."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..labels import AGE_SCALE
from ..models import ARTICLE
from ..runs import Run, select, values
from .tables import LOWER_IS_BETTER, METRICS, curve_summary, in_years

if TYPE_CHECKING:  # typing only: callers pass Experiment objects; this module never imports experiments
    from ..experiments import Experiment


def versus_article_note(exp: Experiment, runs: list[Run]) -> str:
    """Computed sentences: each of our means next to the article's figure, with the gap in the metric's own terms."""
    lines = []
    for v in exp.variants:
        for metric in exp.metrics:
            vals = values(runs, metric, v.label)
            art = v.article.get(metric)
            if not vals or art is None:
                continue
            mean = float(np.mean(vals))
            better = (mean < art) == (metric in LOWER_IS_BETTER)
            gap = f"{abs(mean - art) * AGE_SCALE:.2f} years" if metric == "age_mae" else f"{abs(mean - art) / art:.0%}"
            lines.append(f"{v.label}, {METRICS.get(metric, metric)}: ours {in_years(metric, mean)} (n = {len(vals)}) against "
                         f"{in_years(metric, art)} in the article: {'better' if better else 'worse'} by {gap}.")
    return "\n".join(lines) or "No stored run has a figure the article also reports."


def ranking_note(exp: Experiment, runs: list[Run], metric: str = "loss") -> str:
    """A computed sentence comparing our ranking of the variants with the article's (nothing typed in by hand)."""
    sign = 1 if metric in LOWER_IS_BETTER else -1
    ours = {v.label: np.mean(values(runs, metric, v.label) or [np.nan]) for v in exp.variants}
    ours = {k: v for k, v in ours.items() if np.isfinite(v)}
    art = {v.label: a for v in exp.variants if (a := v.article.get(metric)) is not None}
    if len(ours) < 2:
        return f"Not enough stored runs to rank the variants of '{exp.name}' yet ({len(ours)} of {len(exp.variants)} have runs)."
    order = sorted(ours, key=lambda k: sign * ours[k])
    text = f"By {METRICS.get(metric, metric)}, ours ranks: " + " < ".join(order) + " (best first)."
    if len(art) >= 2:
        art_order = sorted(art, key=lambda k: sign * art[k])
        same = order[0] == art_order[0]
        text += (f" The article ranks: {' < '.join(art_order)}. Best variant "
                 + ("agrees." if same else f"differs: ours is '{order[0]}', the article's '{art_order[0]}'."))
    n = min(len(select(runs, k)) for k in ours)
    text += _reference_range_note(exp, runs, metric)
    if n < 3:
        text += f" With as few as {n} seed(s) per variant, differences smaller than the seed-to-seed spread are not evidence."
    return text


def _reference_range_note(exp: Experiment, runs: list[Run], metric: str) -> str:
    """Which variants' mean falls outside the seed range of the table's article-network row (empty if it has < 2 seeds)."""
    ref = next((v.label for v in exp.variants if v.config == ARTICLE), None)
    ref_values = values(runs, metric, ref) if ref is not None else []
    if ref is None or len(ref_values) < 2:
        return ""
    lo, hi = min(ref_values), max(ref_values)
    outside = []
    for v in exp.variants:
        vals = values(runs, metric, v.label)
        if v.label != ref and vals and not lo <= np.mean(vals) <= hi:
            outside.append(f"'{v.label}' ({np.mean(vals):.4f}, {'below' if np.mean(vals) < lo else 'above'})")
    span = f" The article network's {len(ref_values)} seeds span {lo:.4f}–{hi:.4f}"
    if not outside:
        return span + ", and every variant falls inside that seed-to-seed spread."
    return span + "; variants outside that range: " + ", ".join(outside) + "."


def seed_spread_note(runs: list[Run], a: str, b: str, metric: str) -> str:
    """A plain sentence saying whether the difference between two variants exceeds their seed-to-seed spread."""
    va, vb = np.array(values(runs, metric, a)), np.array(values(runs, metric, b))
    if len(va) < 2 or len(vb) < 2:
        return f"Too few seeds to compare '{a}' and '{b}' on {metric} (n = {len(va)} and {len(vb)}; need 2 or more each)."
    diff = va.mean() - vb.mean()
    spread = np.sqrt(va.var(ddof=1) / len(va) + vb.var(ddof=1) / len(vb))
    verdict = "exceeds" if abs(diff) > 2 * spread else "does not exceed"
    return (f"{metric}: '{a}' {va.mean():.4f} vs '{b}' {vb.mean():.4f} (n = {len(va)}, {len(vb)}); the difference "
            f"{diff:+.4f} {verdict} twice its standard error ({2 * spread:.4f}), the seed-to-seed spread.")


def remedy_note(runs: list[Run], baseline: str = "article network") -> str:
    """Computed sentences: each remedy's validation jumpiness and test age error against the range of the baseline's seeds."""
    table = curve_summary(runs)
    if table.empty or baseline not in set(table.variant):
        return "No stored runs of the baseline yet."
    base = table[table.variant == baseline]
    cols = {"jump": "val jump per epoch (y)", "mae": "test age MAE (y)"}

    def where(value: float, col: str) -> str:
        lo, hi = base[col].min(), base[col].max()
        if len(base) < 2:
            return "lower than the baseline" if value < lo else "not lower than the baseline"
        return "below the baseline seeds' range" if value < lo else "above it" if value > hi else "within the baseline seeds' range"

    lines = [f"{baseline} ({len(base)} seed(s)): validation age MAE jumps {base[cols['jump']].mean():.2f} y per epoch "
             f"(seeds {base[cols['jump']].min():.2f}–{base[cols['jump']].max():.2f}); test age MAE {base[cols['mae']].mean():.2f} y "
             f"(seeds {base[cols['mae']].min():.2f}–{base[cols['mae']].max():.2f})."]
    for variant, g in table[table.variant != baseline].groupby("variant", sort=False):
        jump, mae = g[cols["jump"]].mean(), g[cols["mae"]].mean()
        lines.append(f"{variant} ({len(g)} seed(s)): jumps {jump:.2f} y per epoch, {where(jump, cols['jump'])}; "
                     f"test age MAE {mae:.2f} y, {where(mae, cols['mae'])}.")
    return "\n".join(lines)


def run_length_note(table: pd.DataFrame, metric: str = "test loss") -> str:
    """A computed sentence: do the runs that early stopping let train longer score better (Spearman's rank correlation)?"""
    if len(table) < 4:
        return f"Too few runs ({len(table)}) to relate training length to {metric}."
    rho = table["best epoch"].rank().corr(table[metric].rank())  # Spearman = Pearson on ranks
    strength = "strongly" if abs(rho) >= 0.6 else "moderately" if abs(rho) >= 0.3 else "hardly"
    return (f"Across {len(table)} runs, the best epoch ranged {table['best epoch'].min()}–{table['best epoch'].max()} and "
            f"Spearman's rank correlation between it and the {metric} is {rho:+.2f}: runs that trained longer "
            + (f"{strength} tended to score {'better' if rho < 0 else 'worse'}." if strength != "hardly" else "hardly scored differently."))


def dead_output_note(runs: list[Run]) -> str:
    """Per variant: the share of test faces whose predicted age is exactly 0, the mark of a ReLU output that died."""
    lines = []
    for variant in dict.fromkeys(r.variant for r in runs):
        preds = [np.asarray(r.predictions["age_pred"]) for r in select(runs, variant) if "age_pred" in r.predictions]
        if preds:
            zero = float(np.mean([np.mean(p == 0) for p in preds]))
            lines.append(f"{variant}: {zero:.0%} of test faces predicted exactly 0 years ({len(preds)} run(s))"
                         + (" — the output is dead: its ReLU passes neither values nor gradients." if zero > 0.99 else "."))
    return "\n".join(lines) or "No stored age predictions."


def fit_note(table: pd.DataFrame) -> str:
    """Computed sentences from ``curve_summary``: per variant, train and validation age MAE at the kept epoch — under- or overfitting?"""
    if table.empty:
        return "No runs with an age curve yet."
    lines = []
    for variant, g in table.groupby("variant", sort=False):
        tr, va = g["train age MAE (y)"], g["val age MAE (y)"]
        gap = float((va - tr).mean())
        kind = ("validation error well above the training error: overfitting" if gap > 1.5 else
                "validation error below the training error (which is measured with augmentation and dropout on): no sign "
                "of overfitting; what limits it is how well it fits its training faces" if gap < -1.0 else
                "training and validation errors close: no sign of overfitting; what limits it is how well it fits its "
                "training faces")
        lines.append(f"{variant} ({len(g)} run(s)): train age MAE {tr.min():.2f}–{tr.max():.2f} y, validation "
                     f"{va.min():.2f}–{va.max():.2f} y at the kept epoch (mean gap {gap:+.2f} y): {kind}.")
    return "\n".join(lines)
