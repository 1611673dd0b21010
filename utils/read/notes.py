"""Computed prose about runs, in short plain sentences: each note states figures from the runs, nothing typed in by
hand.

A difference is called real only after a test that fits a handful of seeds: Welch's t-test when both sides have two
or more seeds, and a 95 % prediction interval of the reference's seeds when one side has a single run. Everything
else is reported as "not significant".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..base.stats import (
    ALPHA,
    SIMULATED_UP_TO,
    n_seeds,
    one_run_against,
    p_text,
    pooled_sd,
    prediction_interval,
    welch,
    welch_power,
)
from ..nets.models import ARTICLE
from ..train.runs import SUPERSEDED, Run, history_key, resolve, select, values
from .tables import LABELS, LOWER_IS_BETTER, article_setting_runs, curves, readable_name, weighted
from .units import display_scale, gap, in_units, welch_in_units
from .verdicts import welch_verdict, welch_verdicts

if TYPE_CHECKING:  # typing only: callers pass Experiment objects; this module never imports experiments
    from ..base.profiles import Profile
    from ..train.experiments import Experiment


def versus_article_note(exp: Experiment, runs: list[Run]) -> str:
    """One line per figure: our mean next to the article's, and the gap in years,
    percentage points or relative per cent."""
    lines = []
    for v in exp.rows(runs):
        for metric in exp.metrics:
            vals = values(runs, metric, v.label)
            art = v.article.get(metric)
            if not vals or art is None:
                continue
            mean = float(np.mean(vals))
            better = (mean < art) == (metric in LOWER_IS_BETTER)
            label = readable_name(metric)  # in the unit ``in_units`` prints
            lines.append(
                f"{v.label}, {label}: ours {in_units(metric, mean)} (n = {len(vals)}), "
                f"the article {in_units(metric, art)}. "
                f"Ours is {'better' if better else 'worse'} by {gap(metric, mean, art)}{_article_where(art, vals)}"
            )
    return "\n".join(lines) or "No stored run has a figure the article also reports."


def _article_where(article: float, ours: list[float]) -> str:
    """The article's figure (apparently one run) against our seeds' 95 % prediction interval (2+ seeds), as a clause."""
    if len(ours) < 2:
        return " (one seed: no interval to read the article's figure against)."
    if one_run_against(article, ours).inside:
        return "; the article's figure lies inside our seeds' 95 % prediction interval: no difference shown."
    return (
        "; the article's figure lies outside our seeds' 95 % prediction interval: a gap larger than our "
        "seed-to-seed scatter (the settings differ, so it does not say why)."
    )


def ranking_note(exp: Experiment, runs: list[Run], metric: str = "loss") -> str:
    """Short sentences: our best variant and the article's, then each variant against the article network with a
    test."""
    sign = 1 if metric in LOWER_IS_BETTER else -1
    name = readable_name(metric)
    rows = exp.rows(runs)
    ours = {v.label: float(np.mean(vals)) for v in rows if (vals := values(runs, metric, v.label))}
    art = {
        v.label.removesuffix(SUPERSEDED): a for v in rows if (a := v.article.get(metric)) is not None
    }  # the article's own labels
    if len(ours) < 2:
        return (
            f"Not enough stored runs to compare the variants of '{exp.name}' yet "
            f"({len(ours)} of {len(rows)} have runs)."
        )
    best = min(ours, key=lambda k: sign * ours[k])
    lines = [f"Our best by {name}: '{best}' ({in_units(metric, ours[best])})."]
    if len(art) >= 2:
        art_best = min(art, key=lambda k: sign * art[k])
        same = art_best == best.removesuffix(SUPERSEDED)
        lines.append(f"The article's best: '{art_best}'. " + ("Same choice." if same else "A different choice."))
    ref = next((v.label for v in rows if v.config == ARTICLE), None)
    ref_vals = values(runs, metric, ref) if ref else []
    if ref and len(ref_vals) >= 2:
        lo, hi = prediction_interval(ref_vals)
        lines.append(
            f"The article network ('{ref}') scores {in_units(metric, np.mean(ref_vals))} over {len(ref_vals)} seeds. "
            f"One more seed of it would land in {in_units(metric, lo)}–{in_units(metric, hi)} "
            "(95 % prediction interval)."
        )
        others = [label for label in ours if label != ref]
        pairs = [(values(runs, metric, label), ref_vals) for label in others]
        for label, (vals, _), verdict in zip(others, pairs, welch_verdicts(pairs, metric)):
            lines.append(f"'{label}' ({n_seeds(len(vals))}, {in_units(metric, ours[label])}): {verdict}.")
    elif ref:
        lines.append("The article network has fewer than 2 seeds: no test is possible.")
    return "\n".join(lines)


def difference_note(runs: list[Run], a: str, b: str, metric: str) -> str:
    """Two variants on one metric: their means, the difference with its interval, and Welch's t-test
    (``units.welch_in_units``), with a caution where the test passes with fewer than ``FEW_SEEDS`` seeds a side."""
    a, b = resolve(runs, a), resolve(runs, b)
    va, vb = values(runs, metric, a), values(runs, metric, b)
    line = welch_in_units(f"'{a}'", f"'{b}'", va, vb, metric)
    try:
        passed = welch(va, vb).significant
    except ValueError:  # no test: the line already says why
        passed = False
    if passed and min(len(va), len(vb)) < FEW_SEEDS:
        line += " With so few seeds, treat it as a first hint."
    return line


FEW_SEEDS = 5
"""Below this many seeds on either side, a significant Welch test is read as a first hint (``difference_note``)."""

seed_spread_note = difference_note  # the name notebook 05 calls


def remedy_note(runs: list[Run], baseline: str = "article network") -> str:
    """Per remedy: its validation jumpiness and test age error against the baseline's seeds, with a test that fits n."""
    table = curves(runs)
    if table.empty or baseline not in set(table.variant):
        return "No stored runs of the baseline yet."
    base = table[table.variant == baseline]
    jump, mae = "val_jump", "test_mae"
    lines = [
        f"{baseline} ({n_seeds(len(base))}): validation age MAE jumps {base[jump].mean():.2f} y per epoch; "
        f"test age MAE {base[mae].mean():.2f} y."
    ]
    groups = list(table[table.variant != baseline].groupby("variant", sort=False))
    pairs = [(list(g[col]), list(base[col])) for _, g in groups for col in (jump, mae)]  # one family: every test here
    said = iter(welch_verdicts(pairs, "age_mae_years"))
    for variant, g in groups:
        lines.append(
            f"{variant} ({n_seeds(len(g))}): jumps {g[jump].mean():.2f} y per epoch ({next(said)}); "
            f"test age MAE {g[mae].mean():.2f} y ({next(said)})."
        )
    return "\n".join(lines)


def run_length_note(table: pd.DataFrame, metric: str = "test_loss") -> str:
    """Do the runs that early stopping let train longer score better? Spearman's rank correlation of the best epoch
    with ``metric`` (a column of ``tables.run_lengths``) and its p-value."""
    label = LABELS.get(metric, metric)
    if len(table) < 4:
        return f"Too few runs ({len(table)}) to relate training length to {label}."
    if table["best_epoch"].nunique() < 2 or table[metric].nunique() < 2:
        return f"{len(table)} runs, but all kept the same epoch or scored alike: no rank correlation to measure."
    rho, p = stats.spearmanr(table["best_epoch"], table[metric])
    direction = "better" if rho < 0 else "worse"
    text = (
        f"{len(table)} runs; the best epoch ranged {table['best_epoch'].min()}–{table['best_epoch'].max()}. "
        f"Spearman's rank correlation with the {label}: {rho:+.2f} ({p_text(p, 2)}). "
    )
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
            lines.append(
                f"{variant}: {zero:.0%} of test faces predicted exactly 0 years ({n_seeds(len(preds))})"
                + (" — the output is dead: its ReLU passes neither values nor gradients." if zero > 0.99 else ".")
            )
            if zero > 0.99:
                lines.append(_flat_training(select(runs, variant)))
    return "\n".join(line for line in lines if line) or "No stored age predictions."


def _flat_training(runs: list[Run]) -> str:
    """The training-mode evidence for a dead output: a training age MAE that no longer moves after epoch 1."""
    curves = [r.history["age_mae_years"][1:] for r in runs if len(r.history.get("age_mae_years", [])) > 1]
    if not curves:
        return ""
    lo, hi = min(min(c) for c in curves), max(max(c) for c in curves)
    if hi - lo >= 0.5:
        return f"  its training age MAE still moved after epoch 1 ({lo:.2f}–{hi:.2f} y): dead at test, not in training."
    return (
        f"  Training mode agrees: its training age MAE stayed at {lo:.2f}–{hi:.2f} y from epoch 2 on in "
        f"{n_seeds(len(curves))}, flat: no gradient reached the output in training either."
    )


def fit_note(table: pd.DataFrame) -> str:
    """Per variant, from ``tables.curves``: train and validation age MAE at the kept epoch — over- or underfitting?"""
    if table.empty:
        return "No runs with an age curve yet."
    lines = []
    for variant, g in table.groupby("variant", sort=False):
        tr, va = g["train_mae"], g["val_mae"]
        gap_y = float((va - tr).mean())
        kind = (
            "Validation more than 1.5 y above training: overfitting (the course's rule of thumb, not a test)."
            if gap_y > 1.5
            else "Validation below training: the training figure, measured in training mode (dropout on, and "
            "augmentation where the variant has it), runs high, so no sign of overfitting, but the gap cannot say how "
            "well the network fits its training faces."
            if gap_y < -1.0
            else "The two are close: no sign of overfitting (the training-mode figure runs high, so a small gap "
            "can hide)."
        )
        seed_gaps = (va - tr).to_numpy()
        if gap_y <= 1.5 and len(g) > 1 and seed_gaps.max() > 1.5:  # the mean hides one run that did overfit
            which = f"seed {g['seed'].to_numpy()[seed_gaps.argmax()]}" if "seed" in g else "one run"
            kind += (
                f" Except {which}: validation {seed_gaps.max():+.2f} y from training at its kept epoch, one run's gap: "
                "read its curves to tell overfitting (validation rising while training falls) from a noisy epoch."
            )
        lines.append(
            f"{variant} ({n_seeds(len(g))}): train age MAE {tr.min():.2f}–{tr.max():.2f} y, validation "
            f"{va.min():.2f}–{va.max():.2f} y (mean gap {gap_y:+.2f} y). {kind}"
        )
    return "\n".join(lines)


def loss_share_note(runs: list[Run], reference: str | None = None) -> str:
    """How much of the test loss (weighted age loss + gender loss, each head's own) is age, for the reference variant
    (default: the article network), and which variant the loss and the age MAE each rank first: does the loss rank
    age at all?"""
    ref = reference or next((r.variant for r in runs if r.config == ARTICLE), None)
    ages, genders = values(runs, "age_loss", ref), values(runs, "gender_loss", ref)
    if ref is None or not ages or not genders:  # values() of no variant would read every run
        return f"No stored run of '{ref or 'the article network'}' with both losses."
    config = next(r.config for r in runs if r.variant == ref)
    heads = {h.output: h for h in config.heads}
    (wa, wg), (ha, hg) = config.loss_weights, (heads["age"], heads["gender"])
    age, gender = wa * float(np.mean(ages)), wg * float(np.mean(genders))
    text = (
        f"'{ref}' ({n_seeds(len(ages))}): {weighted(wa, ha.loss_label)}(age) = {age:.4f} against "
        f"{weighted(wg, hg.loss_label)}(gender) = {gender:.4f}, so age is "
        f"{age / (age + gender):.0%} of its test loss and gender {gender / (age + gender):.0%}."
    )
    means = {
        v: (float(np.mean(values(runs, "loss", v))), float(np.mean(values(runs, "age_mae_years", v))))
        for v in dict.fromkeys(r.variant for r in runs)
        if values(runs, "age_mae_years", v)
    }
    if len(means) >= 2:
        by_loss = min(means, key=lambda v: means[v][0])
        rank = sorted(means, key=lambda v: means[v][1]).index(by_loss) + 1
        text += (
            f" Lowest test loss: '{by_loss}' ({means[by_loss][0]:.4f}); its age MAE {means[by_loss][1]:.2f} y ranks "
            f"{rank} of {len(means)} (1 = best)."
        )
    return text


def power_note(runs: list[Run], a: str, b: str, metric: str, difference: float, unit: str = " y") -> str:
    """The pooled seed spread of two variants and the power of Welch's test with as many seeds on each side as the
    smaller one has, to detect `difference`."""
    a, b = resolve(runs, a), resolve(runs, b)
    va, vb = np.array(values(runs, metric, a)), np.array(values(runs, metric, b))
    if len(va) < 2 or len(vb) < 2:
        return "Too few seeds to estimate a spread."
    sd = pooled_sd(va, vb) * display_scale(metric)
    n = min(len(va), len(vb))
    power = welch_power(sd, n, difference)
    each = (
        f"{n} seeds each" if len(va) == len(vb) else f"{n} seeds each (the smaller side; {len(va)} and {len(vb)} here)"
    )
    return (
        f"Seed-to-seed sd (pooled over '{a}' and '{b}'): {sd:.2f}{unit}. With {each}, Welch's test at 5 % would "
        f"detect a true difference of {difference:.2f}{unit} with probability {power:.0%}"
        + (" (simulated)." if n <= SIMULATED_UP_TO else " (pooled t, exact).")
    )


def undertrained_note(runs: list[Run]) -> str:
    """Per variant: the best epochs, whether the training age MAE was still falling after them,
    and the validation jumps."""
    table = curves(runs)
    if table.empty:
        return "No runs with an age curve yet."
    lines = []
    for variant, g in table.groupby("variant", sort=False):
        falling = 0
        for r in runs:
            if r.variant != variant:
                continue
            key = history_key(r, "mae_years")
            if key is not None and r.history[key][-1] < r.history[key][r.best_epoch - 1]:
                falling += 1
        jumps = g["val_jump"]
        lines.append(
            f"{variant} ({n_seeds(len(g))}): kept epochs {g['best_epoch'].min()}–{g['best_epoch'].max()}; training "
            f"age MAE still lower at the last epoch than at the kept one in {falling} of {len(g)} runs; validation "
            f"age MAE moved {jumps.min():.2f}–{jumps.max():.2f} y per epoch on average."
        )
    return "\n".join(lines)


def article_gap(exp: Experiment, metric: str, a: str, b: str) -> float:
    """|a − b| of the article's own figures for two variants, in the unit the notes show (years, points, raw)."""
    art = {label: exp.article(label).get(metric) for label in (a, b)}
    if art.get(a) is None or art.get(b) is None:
        return float("nan")
    return abs(art[a] - art[b]) * display_scale(metric)


def article_setting_note(exp: Experiment, runs: list[Run], profile: Profile, metric: str, a: str, b: str) -> str:
    """Rows ``a`` and ``b`` of ``exp`` compared on ``metric`` at the article's setting (profile 'full', 128 px, the
    data and split of ``runs``): both means, n, and Welch's test where each side has two runs or more; one run against
    two or more of the other side is read against their 95 % prediction interval (as the claims table does)."""
    full = runs if profile.name == "full" else article_setting_runs(exp, runs, profile)
    where = "At the article's setting (profile 'full', 128 px, same data and split)"
    if not full:
        return f"{where}: no runs of this experiment are stored for this data yet."
    va, vb = values(full, metric, a), values(full, metric, b)
    if not va or not vb:
        n = ", ".join(f"'{label}' {n_seeds(len(v))}" for label, v in ((a, va), (b, vb)))
        return f"{where}: {readable_name(metric)} cannot be compared yet: {n} stored."
    text = f"{where}: {welch_in_units(a, b, va, vb, metric)}"
    if sorted((len(va), len(vb)))[0] == 1 < max(len(va), len(vb)):
        (one, single), (many, row) = ((va, a), (vb, b)) if len(va) == 1 else ((vb, b), (va, a))
        read = one_run_against(one[0], many)
        text += (
            f" Instead, the single run of {single} against where one more run of {row} would land, "
            f"{in_units(metric, read.lo)} to {in_units(metric, read.hi)} (95 % prediction interval, {read.n} seeds): "
            f"{welch_verdict(one, many, metric)}."
        )
    return text
