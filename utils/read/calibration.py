"""Is P(female) honest? Calibration (reliability, ECE), the decision threshold, per model and age group (notebook 08),
on the tidy predictions frame (``tidy``), and temperature scaling (``tempered``, its solutions)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def expected_calibration_error(prob: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """ECE: the face-weighted mean gap between predicted probability and observed frequency over equal-width bins."""
    prob, truth = np.asarray(prob, dtype=float), np.asarray(truth, dtype=float)
    idx = np.clip((prob * bins).astype(int), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(prob[m].mean() - truth[m].mean())
    return float(ece)


def ece_floor(prob: np.ndarray, bins: int = 10, draws: int = 200, seed: int = 0) -> tuple[float, float]:
    """The ECE a perfectly calibrated head would still score with these probabilities on this many faces, as (mean,
    95th percentile) over ``draws`` sets of labels drawn as Bernoulli(prob): a finite test set never shows exactly 0."""
    prob = np.asarray(prob, dtype=float)
    rng = np.random.default_rng(seed)
    eces = [expected_calibration_error(prob, rng.random(len(prob)) < prob, bins) for _ in range(draws)]
    return float(np.mean(eces)), float(np.quantile(eces, 0.95))


def table(frame: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Reliability data per model (seeds pooled): bin, mean P(female), observed share of females and faces."""
    g = frame[frame.gender_prob.notna()]
    g = g.assign(bin=np.clip((g.gender_prob * bins).astype(int), 0, bins - 1))
    return (
        g.groupby(["model", "bin"], observed=True)
        .agg(predicted=("gender_prob", "mean"), observed=("gender", "mean"), faces=("file", "size"))
        .reset_index()
    )


SUMMARY_LABELS = {
    "accuracy_sd": "accuracy sd",
    "ece": "ECE",
    "ece_sd": "ECE sd",
    "ece_floor": "ECE if calibrated",
    "ece_floor_hi": "ECE if calibrated, 95 % below",
    "above_floor": "seeds above it",
    "mean_p_female": "mean P(female)",
    "share_female": "share female",
}
"""The reader's names of ``summary``'s columns."""


def summary(frame: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Per gender model (the index): seeds, accuracy and ECE (mean and sd over seeds), the ECE a calibrated head would
    score on as many faces (``ece_floor``) and how many seeds score above its 95th percentile, and the mean P(female)
    against the share of females (unrounded; ``summary_table`` labels them)."""
    g = frame[frame.gender_prob.notna()]
    rows = []
    for (model, seed), r in g.groupby(["model", "seed"], observed=True):
        ece, (floor, floor_hi) = (
            expected_calibration_error(r.gender_prob, r.gender, bins),
            ece_floor(r.gender_prob, bins),
        )
        rows.append(
            {
                "model": model,
                "seed": seed,
                "accuracy": ((r.gender_prob >= 0.5) == (r.gender == 1)).mean(),
                "ece": ece,
                "ece_floor": floor,
                "ece_floor_hi": floor_hi,
                "above_floor": ece > floor_hi,  # this seed's ECE is unlikely for a calibrated head
                "mean_p_female": r.gender_prob.mean(),
                "share_female": r.gender.mean(),
            }
        )
    return (
        pd.DataFrame(rows)
        .groupby("model", observed=True)
        .agg(
            seeds=("seed", "size"),
            accuracy=("accuracy", "mean"),
            accuracy_sd=("accuracy", "std"),
            ece=("ece", "mean"),
            ece_sd=("ece", "std"),
            ece_floor=("ece_floor", "mean"),
            ece_floor_hi=("ece_floor_hi", "mean"),
            above_floor=("above_floor", "sum"),
            mean_p_female=("mean_p_female", "mean"),
            share_female=("share_female", "mean"),
        )
    )


def summary_table(frame: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """``summary`` for a reader: labelled columns, 4 decimals."""
    return summary(frame, bins).round(4).rename(columns=SUMMARY_LABELS)


def plot_reliability(frame: pd.DataFrame, bins: int = 10) -> plt.Figure:
    """Reliability diagram of P(female) (seeds pooled) and the histogram of the probabilities."""
    bins_table = table(frame, bins)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for model, t in bins_table.groupby("model", observed=True):
        axes[0].plot(t.predicted, t.observed, marker="o", label=str(model))
    axes[0].plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    axes[0].set(
        xlabel="mean predicted P(female) in the bin", ylabel="share of females in the bin", title="reliability diagram"
    )
    axes[0].legend(fontsize=7)
    g = frame[frame.gender_prob.notna()]
    sns.histplot(g, x="gender_prob", hue="gender_name", bins=20, ax=axes[1], element="step")
    if axes[1].get_legend() is not None:
        axes[1].get_legend().set_title("true gender")
    pooled = g.groupby(["model", "seed"], observed=True).ngroups if len(g) else 0
    ylabel = f"test predictions ({pooled} run{'s' * (pooled != 1)} pooled; log scale)"
    axes[1].set(xlabel="predicted P(female)", ylabel=ylabel, title="how confident the head is", yscale="log")
    fig.tight_layout()
    return fig


def threshold_table(
    frame: pd.DataFrame, thresholds: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7), young: int = 10
) -> pd.DataFrame:
    """Gender accuracy (mean over seeds) at several thresholds: overall, males, females, and ages below `young`."""
    g = frame[frame.gender_prob.notna()]
    rows = []
    for model, m in g.groupby("model", observed=True):
        for t in thresholds:
            correct = (m.gender_prob >= t).astype(int) == m.gender
            parts = {
                "all": correct,
                "males": correct[m.gender == 0],
                "females": correct[m.gender == 1],
                f"ages 0–{young - 1}": correct[m.age_true < young],
            }
            rows.append(
                {
                    "model": model,
                    "threshold": t,
                    **{k: v.groupby(m.seed[v.index]).mean().mean() for k, v in parts.items()},
                }
            )
    return pd.DataFrame(rows).round(3)


def note(summary: pd.DataFrame) -> str:
    """``summary`` in one sentence per model."""
    lines = []
    for model, r in summary.iterrows():
        lines.append(
            f"{model} ({int(r.seeds)} seeds): ECE {r.ece:.3f} ± {r.ece_sd:.3f} (a perfectly calibrated head would "
            f"still score about {r.ece_floor:.3f} on as many faces, 95 % of the time below {r.ece_floor_hi:.3f}: the "
            f"labels are a sample; {int(r.above_floor)} of {int(r.seeds)} seeds above that); mean "
            f"P(female) {r.mean_p_female:.3f} against a true share of {r.share_female:.3f}; accuracy "
            f"{r.accuracy:.1%}."
        )
    return "\n".join(lines)


def children_gender_note(
    frame: pd.DataFrame, acc_band: pd.DataFrame, kids: pd.DataFrame, model: str = "article network"
) -> str:
    """Gender accuracy under 10 and under 3, each against the accuracy of always answering that group's majority
    gender."""
    g = frame[(frame.model == model) & frame.gender_prob.notna()]
    under10 = g[g.age_true < 10].drop_duplicates("file")
    acc10 = float(kids.loc[kids.under_10, "accuracy"].iloc[0])
    acc3 = acc_band[(acc_band.model == model) & (acc_band.age_band == "0–2")]
    acc3 = float(acc3.accuracy.iloc[0]) if len(acc3) else float("nan")

    def majority(faces: pd.DataFrame) -> str:
        male = float((faces.gender == 0).mean()) if len(faces) else float("nan")
        return f"'{'male' if male >= 0.5 else 'female'}' scores {max(male, 1 - male):.1%}" if len(faces) else "–"

    return (
        f"{model}: gender accuracy {acc10:.1%} under 10 and {acc3:.1%} under 3 years. Always answering the "
        f"majority gender: under 10 {majority(under10)}, under 3 {majority(under10[under10.age_true < 3])}."
    )


def tempered(p: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities with their logits divided by ``temperature`` (above 1: less confident; the 0.5 side is kept)."""
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return 1 / (1 + np.exp(-np.log(p / (1 - p)) / temperature))
