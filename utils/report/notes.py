"""Computed prose about runs, in short plain sentences: each note states figures from the runs, nothing typed in by hand.

A difference is called real only after a test that fits a handful of seeds: Welch's t-test when both sides have two
or more seeds, and a 95 % prediction interval of the reference's seeds when one side has a single run. Everything
else is reported as "not significant".
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..labels import AGE_SCALE
from ..models import ARTICLE
from ..runs import Run, select, values
from ..stats import welch as _welch
from .tables import LOWER_IS_BETTER, METRICS, curve_summary

if TYPE_CHECKING:  # typing only: callers pass Experiment objects; this module never imports experiments
    from ..experiments import Experiment

ALPHA = 0.05
"""The significance level of every test in the course's notes."""


def shown(metric: str, value: float) -> str:
    """A figure in the unit a reader thinks in: ages in years, accuracies in per cent, losses as they are."""
    if metric == "age_mae":
        return f"{value * AGE_SCALE:.2f} y"
    if metric.endswith("_years"):
        return f"{value:.2f} y"
    if metric.endswith("accuracy") or metric == "rank_consistency":
        return f"{value:.1%}"
    return f"{value:.5f}" if metric == "age_loss" else f"{value:.4f}"


def gap(metric: str, ours: float, other: float, relative_to: str = "the article's figure") -> str:
    """How far apart two figures are, saying which kind of difference: years, percentage points, or relative per cent."""
    d = abs(ours - other)
    if metric == "age_mae":
        return f"{d * AGE_SCALE:.2f} years"
    if metric.endswith("_years"):
        return f"{d:.2f} years"
    if metric.endswith("accuracy") or metric == "rank_consistency":
        return f"{d * 100:.1f} percentage points"
    return f"{d / abs(other):.0%} relative to {relative_to}"


def signed_difference(metric: str, a: float, b: float) -> str:
    """a − b with its sign and unit: years, percentage points, or the raw figure (with the relative change beside it)."""
    d = a - b
    sign = "+" if d >= 0 else "−"
    if metric in ("age_mae",) or metric.endswith("_years") or metric.endswith("accuracy") or metric == "rank_consistency":
        return sign + gap(metric, a, b)
    return f"{sign}{abs(d):.4f} ({d / abs(b):+.0%} relative)"


def welch(a, b) -> tuple[float, float, float]:
    """(t, degrees of freedom, two-sided p) of ``stats.welch``; with no spread at all, (±inf or 0, nan, 0 or 1)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    try:
        w = _welch(a, b)
    except ValueError:
        if len(a) < 2 or len(b) < 2:
            raise
        differ = a.mean() != b.mean()
        return (np.inf if differ else 0.0), np.nan, (0.0 if differ else 1.0)
    return w.t, w.df, w.p


def prediction_interval(ref, level: float = 0.95) -> tuple[float, float]:
    """Where one new run of the reference would fall with probability ``level`` (t-based; needs ≥ 2 reference runs)."""
    ref = np.asarray(ref, float)
    n = len(ref)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * ref.std(ddof=1) * np.sqrt(1 + 1 / n)
    return float(ref.mean() - half), float(ref.mean() + half)


def compare(vals, ref, metric: str) -> str:
    """A short verdict on one variant against a reference: a test that fits the number of seeds, or why none is possible."""
    vals, ref = list(vals), list(ref)
    if not vals or len(ref) < 2:
        return "too few seeds for a test"
    better = (np.mean(vals) < np.mean(ref)) == (metric in LOWER_IS_BETTER)
    word = "better" if better else "worse"
    if len(vals) == 1:
        lo, hi = prediction_interval(ref)
        if lo <= vals[0] <= hi:
            return "inside the reference's 95 % prediction interval: not significant"
        return f"outside the reference's 95 % prediction interval: significantly {word}"
    t, df, p = welch(vals, ref)
    verdict = f"significantly {word}" if p < ALPHA else "not significant"
    return f"Welch t = {t:.2f}, df ≈ {df:.1f}, p = {p:.2f}: {verdict}"


def versus_article_note(exp: Experiment, runs: list[Run]) -> str:
    """One line per figure: our mean next to the article's, and the gap in years, percentage points or relative per cent."""
    lines = []
    for v in exp.variants:
        for metric in exp.metrics:
            vals = values(runs, metric, v.label)
            art = v.article.get(metric)
            if not vals or art is None:
                continue
            mean = float(np.mean(vals))
            better = (mean < art) == (metric in LOWER_IS_BETTER)
            lines.append(f"{v.label}, {METRICS.get(metric, metric)}: ours {shown(metric, mean)} (n = {len(vals)}), "
                         f"the article {shown(metric, art)}. Ours is {'better' if better else 'worse'} by {gap(metric, mean, art)}.")
    return "\n".join(lines) or "No stored run has a figure the article also reports."


def ranking_note(exp: Experiment, runs: list[Run], metric: str = "loss") -> str:
    """Short sentences: our best variant and the article's, then each variant against the article network with a test."""
    sign = 1 if metric in LOWER_IS_BETTER else -1
    name = METRICS.get(metric, metric)
    ours = {v.label: float(np.mean(vals)) for v in exp.variants if (vals := values(runs, metric, v.label))}
    art = {v.label: a for v in exp.variants if (a := v.article.get(metric)) is not None}
    if len(ours) < 2:
        return f"Not enough stored runs to compare the variants of '{exp.name}' yet ({len(ours)} of {len(exp.variants)} have runs)."
    best = min(ours, key=lambda k: sign * ours[k])
    lines = [f"Our best by {name}: '{best}' ({shown(metric, ours[best])})."]
    if len(art) >= 2:
        art_best = min(art, key=lambda k: sign * art[k])
        lines.append(f"The article's best: '{art_best}'. " + ("Same choice." if art_best == best else "A different choice."))
    ref = next((v.label for v in exp.variants if v.config == ARTICLE), None)
    ref_vals = values(runs, metric, ref) if ref else []
    if ref and len(ref_vals) >= 2:
        lo, hi = prediction_interval(ref_vals)
        lines.append(f"The article network ('{ref}') scores {shown(metric, np.mean(ref_vals))} over {len(ref_vals)} seeds. "
                     f"One more seed of it would land in {shown(metric, lo)}–{shown(metric, hi)} (95 % prediction interval).")
        for label in ours:
            if label != ref:
                vals = values(runs, metric, label)
                seeds = f"{len(vals)} seed{'s' if len(vals) > 1 else ''}"
                lines.append(f"'{label}' ({seeds}, {shown(metric, ours[label])}): {compare(vals, ref_vals, metric)}.")
    elif ref:
        lines.append("The article network has fewer than 2 seeds: no test is possible.")
    return "\n".join(lines)


def difference_note(runs: list[Run], a: str, b: str, metric: str) -> str:
    """Two variants on one metric: their means, the difference, and Welch's t-test (fits a handful of seeds)."""
    va, vb = np.array(values(runs, metric, a)), np.array(values(runs, metric, b))
    name = METRICS.get(metric, metric)
    if len(va) < 2 or len(vb) < 2:
        return f"{name}: too few seeds to test '{a}' against '{b}' (n = {len(va)} and {len(vb)}; Welch's test needs 2 or more each)."
    t, df, p = welch(va, vb)
    verdict = (f"significant at the {ALPHA:.0%} level, but with so few seeds treat it as a first hint"
               if p < ALPHA else "not significant")
    return (f"{name}: '{a}' {shown(metric, va.mean())}, '{b}' {shown(metric, vb.mean())} (n = {len(va)} and {len(vb)}). "
            f"Difference {signed_difference(metric, va.mean(), vb.mean())}; Welch t = {t:.2f}, df ≈ {df:.1f}, "
            f"p = {p:.2f}: {verdict}.")


seed_spread_note = difference_note  # the name notebooks 04 and 06 call


def remedy_note(runs: list[Run], baseline: str = "article network") -> str:
    """Per remedy: its validation jumpiness and test age error against the baseline's seeds, with a test that fits n."""
    table = curve_summary(runs)
    if table.empty or baseline not in set(table.variant):
        return "No stored runs of the baseline yet."
    base = table[table.variant == baseline]
    jump, mae = "val jump per epoch (y)", "test age MAE (y)"
    lines = [f"{baseline} ({len(base)} seed(s)): validation age MAE jumps {base[jump].mean():.2f} y per epoch; "
             f"test age MAE {base[mae].mean():.2f} y."]
    for variant, g in table[table.variant != baseline].groupby("variant", sort=False):
        lines.append(f"{variant} ({len(g)} seed(s)): jumps {g[jump].mean():.2f} y per epoch "
                     f"({compare(g[jump], base[jump], 'age_mae_years')}); test age MAE {g[mae].mean():.2f} y "
                     f"({compare(g[mae], base[mae], 'age_mae_years')}).")
    return "\n".join(lines)


def run_length_note(table: pd.DataFrame, metric: str = "test loss") -> str:
    """Do the runs that early stopping let train longer score better? Spearman's rank correlation and its p-value."""
    if len(table) < 4:
        return f"Too few runs ({len(table)}) to relate training length to {metric}."
    rho, p = stats.spearmanr(table["best epoch"], table[metric])
    direction = "better" if rho < 0 else "worse"
    text = (f"{len(table)} runs; the best epoch ranged {table['best epoch'].min()}–{table['best epoch'].max()}. "
            f"Spearman's rank correlation with the {metric}: {rho:+.2f} (p = {p:.2f}). ")
    if p < ALPHA:
        return text + f"Significant: runs that trained longer tended to score {direction}."
    return text + f"Not significant: the runs that trained longer did not clearly score {direction}."


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
    """Per variant, from ``curve_summary``: train and validation age MAE at the kept epoch — over- or underfitting?"""
    if table.empty:
        return "No runs with an age curve yet."
    lines = []
    for variant, g in table.groupby("variant", sort=False):
        tr, va = g["train age MAE (y)"], g["val age MAE (y)"]
        gap_y = float((va - tr).mean())
        kind = ("Validation well above training: overfitting." if gap_y > 1.5 else
                "Validation below training (training is measured with augmentation and dropout on): no overfitting; "
                "it is limited by how well it fits its training faces." if gap_y < -1.0 else
                "The two are close: no overfitting; it is limited by how well it fits its training faces.")
        lines.append(f"{variant} ({len(g)} run(s)): train age MAE {tr.min():.2f}–{tr.max():.2f} y, validation "
                     f"{va.min():.2f}–{va.max():.2f} y (mean gap {gap_y:+.2f} y). {kind}")
    return "\n".join(lines)


def time_note(results: dict[str, list[Run]], profile_name: str = "laptop") -> str:
    """How long the stored runs of a notebook took to train, and what the other profiles cost (README, Performance)."""
    seen, walls, epochs = set(), [], []
    for runs in results.values():
        for r in runs:
            if (r.config, r.seed) not in seen and r.wall_seconds:
                seen.add((r.config, r.seed))
                walls.append(r.wall_seconds)
                epochs.append(r.epochs_run)
    lines = ["smoke: 600 synthetic faces at 32 px, 2 epochs per run: a few seconds per run; the whole course about 2.6 min "
             "(README, Performance)."]
    if walls:
        lines.append(f"{profile_name}: the {len(walls)} stored runs this notebook reads took {sum(walls) / 3600:.1f} h of "
                     f"training in all: {np.mean(walls) / 60:.1f} min and {np.mean(epochs):.0f} epochs per run on average, "
                     f"{sum(walls) / sum(epochs):.0f} s per epoch as stored (a 2-core CPU with bfloat16, sometimes shared; alone it "
                     "takes 23–24 s). Without AVX-512 an epoch takes about 5.5 min (README, Performance). Showing the stored "
                     "runs takes seconds.")
    else:
        lines.append(f"{profile_name}: no stored runs yet.")
    lines.append("full: 128 px, up to 90 epochs: no stored runs. About 82 s per epoch on the same CPU (README, "
                 "Performance); meant for a GPU.")
    return "\n".join(lines)
