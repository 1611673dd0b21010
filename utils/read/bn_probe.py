"""Reading the BatchNorm probe (``train.probes.BNProbe``, appendix A1): per probed run and way of scoring the
validation faces (BatchNorm's moving averages, or statistics re-measured in the training or inference regime), how
much the validation age MAE jumps from epoch to epoch, and where early stopping acted on it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..train.runs import Run, epoch_jumps

STYLES = {"moving": ("tab:red", "-"), "precise_train": ("tab:blue", "-"), "precise_inference": ("tab:blue", ":")}
"""Colour and line of each curve in ``plot``: re-measured statistics in blue, the inference regime dotted."""
SCORINGS = {
    "moving": "moving averages (Keras)",
    "precise_train": "re-measured, training regime",
    "precise_inference": "re-measured, inference regime",
}
"""The probe's three curves (its record's keys) and their names for a reader."""

LABELS = {
    "statistics": "BatchNorm statistics",
    "mean_jump": "mean jump (y)",
    "median_jump": "median jump (y)",
    "level": "mean val age MAE after epoch 1 (y)",
    "at_best": "at the kept epoch (y)",
    "lowest": "lowest (y)",
}
"""The reader's names of ``frame``'s columns."""


def frame(runs: list[Run]) -> pd.DataFrame:
    """Per probed run and way of scoring (``statistics``, a key of ``SCORINGS``): how much the validation age MAE
    jumps per epoch (mean and median), its mean level after epoch 1, at the kept epoch and its lowest (years,
    unrounded; ``table`` labels them)."""
    rows = []
    for r in runs:
        p = r.probes.get("bn")
        if not p:
            continue
        for key in SCORINGS:
            curve = np.asarray(p[key], np.float64)
            steps = epoch_jumps(curve)
            rows.append(
                {
                    "variant": r.variant,
                    "seed": r.seed,
                    "statistics": key,
                    "mean_jump": float(np.mean(steps)),
                    "median_jump": float(np.median(steps)),
                    "level": float(np.mean(curve[1:])) if len(curve) > 1 else float("nan"),
                    "at_best": float(curve[r.best_epoch - 1]),
                    "lowest": float(curve.min()),
                }
            )
    return pd.DataFrame(rows, columns=["variant", "seed", *LABELS])


def table(runs: list[Run]) -> pd.DataFrame:
    """``frame`` for a reader: the ways of scoring named, columns labelled, years to 2 decimals."""
    f = frame(runs)
    f["statistics"] = f.statistics.map(SCORINGS)
    return f.round(2).rename(columns=LABELS)


def verdicts(runs: list[Run]) -> pd.DataFrame:
    """Per probed run, for a reader: the median jump under each way of scoring, which one is calmest, and where early
    stopping acted (it watches the moving-average curve): the kept epoch and its score, the epoch it stopped at, and
    the lower re-measured score at that last epoch."""
    median = frame(runs).pivot_table(index=["variant", "seed"], columns="statistics", values="median_jump", sort=False)
    rows = []
    for r in runs:
        p = r.probes.get("bn")
        if not p:
            continue
        med = median.loc[(r.variant, r.seed)]
        rows.append(
            {
                "variant": r.variant,
                "seed": r.seed,
                **{f"median jump, {SCORINGS[k]} (y)": round(float(med[k]), 2) for k in SCORINGS},
                "calmest": SCORINGS[min(SCORINGS, key=lambda k: med[k])],
                "kept epoch": r.best_epoch,
                "val age MAE there, moving (y)": round(float(p["moving"][r.best_epoch - 1]), 2),
                "stopped at epoch": r.epochs_run,
                "val age MAE at the stop, re-measured (y)": round(
                    min(float(p["precise_train"][-1]), float(p["precise_inference"][-1])), 2
                ),
            }
        )
    return pd.DataFrame(rows)


def plot(runs: list[Run]) -> plt.Figure:
    """Per probed run: validation age MAE per epoch under each way of scoring, and the epoch early stopping kept."""
    runs = [r for r in runs if r.probes.get("bn")]
    cols = min(max(len(runs), 1), 2)
    rows = -(-max(len(runs), 1) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(5 * cols, 3.3 * rows), squeeze=False, sharey=True)
    axes = list(grid.ravel())
    for ax, r in zip(axes, runs):
        probe = r.probes["bn"]
        for key, label in SCORINGS.items():
            color, line = STYLES[key]
            ax.plot(np.arange(1, len(probe[key]) + 1), probe[key], line, color=color, marker=".", label=label)
        ax.axvline(r.best_epoch, color="grey", lw=0.8)
        ax.set(xlabel="epoch (grey: the epoch early stopping kept)", title=f"{r.variant}, seed {r.seed}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[len(runs) :] if runs else []:
        ax.set_visible(False)
    for ax in grid[:, 0]:
        ax.set_ylabel("validation age MAE (years)")
    if runs:
        axes[0].legend(fontsize=7)
    else:
        axes[0].text(0.5, 0.5, "no probed runs stored yet", ha="center", va="center", transform=axes[0].transAxes)
    fig.tight_layout()
    return fig
