"""The course's plots of runs: learning curves, predictions, probes, ordinal heads and the article's figures beside
ours (figures that show faces are in ``face_plots``)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..base.labels import GENDERS
from ..train.runs import Run, frame, history_key
from .tables import weighted
from .tidy import age_bands

CURVE_NAMES = {
    "loss": ("loss", "loss (lower is better)"),
    "age_mae_years": ("age MAE", "age MAE (years)"),
    "mae_years": ("age MAE", "age MAE (years)"),
    "gender_accuracy": ("gender accuracy", "accuracy"),
    "accuracy": ("gender accuracy", "accuracy"),
}


def line_colors(n: int) -> list:
    """``n`` colours for curves that stay apart for colour-blind readers too (the course's one line palette)."""
    return sns.color_palette("colorblind", n)


def plot_history(
    runs: list[Run],
    keys: tuple[str, ...] = ("loss", "age_mae_years", "gender_accuracy"),
    title: str = "",
    by_variant: bool = False,
) -> plt.Figure | None:
    """Training (dashed) and validation (solid) curves of each run; a dot marks the epoch early stopping kept (None,
    with a line saying so, when no run has them).

    ``by_variant``: one row per variant, every row on the same axes, so that two variants can be compared by eye.
    """
    from matplotlib.ticker import MaxNLocator

    keys = [k for k in keys if any(history_key(r, k) for r in runs)]
    if not keys:
        print("nothing to plot: no stored run here has these curves (TRAIN = True trains them)")
        return None
    groups = list(dict.fromkeys(r.variant for r in runs)) if by_variant else [None]
    wrap = len(keys) == 1 and len(groups) > 2  # one curve a variant: the variants side by side, two a row
    nrows, ncols = (-(-len(groups) // 2), 2) if wrap else (len(groups), len(keys))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.6 * ncols, 3.3 * nrows), squeeze=False, sharex=True, sharey="all" if wrap else "col"
    )
    panels = iter(axes.flat)
    labels = list(dict.fromkeys(f"{r.variant}, seed {r.seed}" if not by_variant else f"seed {r.seed}" for r in runs))
    palette = dict(zip(labels, line_colors(len(labels))))  # told apart with colour blindness too
    for group in groups:
        mine = [r for r in runs if group is None or r.variant == group]
        row = [next(panels) for _ in keys]
        for ax, key in zip(row, keys):
            short, ylabel = CURVE_NAMES.get(key, (key.replace("_", " "), key.replace("_", " ")))
            for r in mine:
                hk = history_key(r, key)
                if hk is None:
                    continue
                train, val = r.history[hk], r.history[f"val_{hk}"]
                ep = np.arange(1, len(train) + 1)
                label = f"seed {r.seed}" if by_variant else f"{r.variant}, seed {r.seed}"
                color = palette[label]
                ax.plot(ep, train, "--", color=color, alpha=0.6)
                ax.plot(ep, val, "-", color=color, label=label)
                ax.plot(r.best_epoch, val[r.best_epoch - 1], "o", color=color)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set(xlabel="epoch", ylabel=ylabel)
            ax.set_title(short if group is None else f"{group}: {short}", fontsize=10)
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=8, title="solid: validation\ndashed: training\ndot: kept epoch", title_fontsize=8)
    for ax in panels:  # an odd number of variants leaves one panel empty
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_loss_balance(runs: list[Run]) -> plt.Figure:
    """Per epoch, the weighted age loss and the gender loss on the training set (each run's own weights and heads'
    losses): which task the shared layers serve."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3.2))
    age_color, gender_color = line_colors(2)  # colour: the part of the loss; line style: the seed
    both = [r for r in runs if "age_loss" in r.history and "gender_loss" in r.history]
    for task, color, col in (("age", age_color, 0), ("gender", gender_color, 1)):  # legend: a column per part
        for style, r in zip(["-", "--", "-.", ":"] * len(both), both):
            head = next(h for h in r.config.heads if h.output == task)
            weight = r.config.loss_weights[col]
            loss = weight * np.asarray(r.history[f"{task}_loss"])
            label = f"{weighted(weight, task + ' ' + head.loss_label)}, seed {r.seed}"
            ax.plot(np.arange(1, len(loss) + 1), loss, style, color=color, label=label)
    ax.set(yscale="log", xlabel="epoch", ylabel="training loss (log scale)", title="the two parts of the loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _plain_log_ticks(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def _plain_log_ticks(ax: plt.Axes) -> None:
    """A log y axis read as plain numbers (0.03, 0.1, 2, 5) at 1, 2, 3 and 5 times each power of ten."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 3, 5)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_gradient_ratios(ratio: pd.DataFrame, title: str = "") -> plt.Figure:
    """Gender's gradient norm over age's, per shared layer (columns) and epoch (index; 0: untrained), on a log axis
    with the line where the two are equal."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for layer, color in zip(ratio.columns, sns.color_palette("tab20", len(ratio.columns))):
        ax.plot(ratio.index, ratio[layer], marker=".", color=color, label=layer)
    ax.axhline(1, color="k", lw=0.8)
    ax.set(yscale="log", xlabel="epoch (0: untrained)", ylabel="gender / age (log scale)")
    ax.set_title(title or "gender / age gradient norm per shared layer", fontsize=10)
    _plain_log_ticks(ax)
    ax.grid(alpha=0.3)
    ax.legend(title="layer", ncol=2, fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig


def plot_age_predictions(run: Run) -> plt.Figure:
    """Predicted against true age on the test set, and the error by age band."""
    p = run.predictions
    t, y = np.asarray(p["age_true"]), np.asarray(p["age_pred"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    hb = axes[0].hexbin(t, y, gridsize=40, mincnt=1, cmap="viridis", bins="log")
    fig.colorbar(hb, ax=axes[0], label="test faces per hexagon (log scale)")
    lim = [0, max(t.max(), y.max()) + 2]
    axes[0].plot(lim, lim, "w--", lw=1)
    axes[0].set(
        xlabel="true age (years)", ylabel="predicted age (years)", title=f"test set, MAE {np.mean(np.abs(y - t)):.2f} y"
    )
    err = pd.DataFrame({"band": age_bands(t), "abs error": np.abs(y - t)})
    sns.barplot(err, x="band", y="abs error", ax=axes[1], errorbar=None, color="tab:blue")
    axes[1].set(xlabel="true age band", ylabel="MAE (years)", title="error by age")
    axes[1].tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig


def plot_gender_confusion(run: Run) -> plt.Figure:
    """Confusion matrix of the gender head on the test set (threshold 0.5)."""
    p = run.predictions
    t, y = np.asarray(p["gender_true"]), (np.asarray(p["gender_prob"]) > 0.5).astype(int)
    cm = pd.crosstab(pd.Series(t, name="true").map(GENDERS), pd.Series(y, name="predicted").map(GENDERS))
    fig, ax = plt.subplots(figsize=(3.6, 3))
    sns.heatmap(cm, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
    ax.set_title(f"gender, accuracy {np.mean(t == y):.3f}")
    fig.tight_layout()
    return fig


def plot_extended_labels(ages: tuple[int, ...] = (5, 30, 70), age_range: tuple[int, int] = (1, 116)) -> plt.Figure:
    """The K-1 binary 'older than rank k?' labels of a few ages, one row each."""
    from ..nets.ordinal import extend_labels

    k = age_range[1] - age_range[0] + 1
    levels = extend_labels(np.asarray(ages) - age_range[0], k)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(ages) + 1.1))
    ax.imshow(levels, aspect="auto", cmap="Greens", vmin=0, vmax=1.4, interpolation="nearest")
    ax.hlines(np.arange(len(ages) - 1) + 0.5, -0.5, k - 1.5, color="white", lw=4)
    ax.set_yticks(range(len(ages)), [f"{a} years" for a in ages])
    ticks = np.arange(0, k - 1, 10)
    ax.set_xticks(ticks, [f"> {age_range[0] + t}" for t in ticks], fontsize=7)
    ax.set_xlabel(f"task k: is the age above {age_range[0]} + k?  (dark: yes, light: no; K - 1 = {k - 1} tasks)")
    fig.tight_layout()
    return fig


def plot_rank_consistency(runs: list[Run]) -> plt.Figure:
    """Share of test faces whose P(age > k) never increases with k, per ordinal method: mean bar, seeds as dots,
    value labels."""
    tidy = frame(runs)
    df = tidy[tidy.metric == "rank_consistency"].rename(columns={"variant": "method", "value": "consistent"})
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    if len(df):
        order = list(dict.fromkeys(df.method))
        means = df.groupby("method", sort=False).consistent.mean().reindex(order)
        ax.bar(range(len(order)), means.values, color="tab:green", alpha=0.7)
        for i, m in enumerate(order):
            seeds = df.consistent[df.method == m].values
            ax.plot(np.full(len(seeds), i), seeds, "o", color="black", ms=4, zorder=3)
            ax.text(i, means[m] + 0.03, f"{means[m]:.0%}\n(n = {len(seeds)})", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(order)), order)
    else:
        ax.text(0.5, 0.5, "no stored rank-consistency figures", ha="center", va="center", transform=ax.transAxes)
    ax.set(
        ylim=(0, 1.25),
        ylabel="share of test faces rank-consistent",
        title="rank consistency on the test set (bar: mean; dots: seeds)",
    )
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"])
    fig.tight_layout()
    return fig


def plot_versus_article(exp, runs: list[Run], metric: str = "loss", profile=None) -> plt.Figure:
    """One row per variant: the article's figure (open diamond) beside ours (mean ± std over seeds, each seed a dot)."""
    from .tables import METRICS

    rows = exp.rows(runs)
    labels = [v.label for v in rows]
    height = 0.55 * len(labels) + 1.4 + LEGEND_BELOW
    fig, ax = plt.subplots(figsize=(7.5, height))
    kinds = sorted({r.data.get("kind", "") for r in runs} - {""}) or ["?"]
    where = f"{profile.name}, {profile.image_size} px, " if profile is not None else ""
    legend = {
        "article": "article (one run, 128 px)",
        "ours": f"ours ({where}{'/'.join(kinds)}): mean ± std, dots = seeds",
    }
    from ..base.stats import prediction_interval
    from ..nets.models import ARTICLE

    ref = next((v.label for v in rows if v.config == ARTICLE), None)
    ref_vals = [r.metrics[metric] for r in runs if r.variant == ref and metric in r.metrics]
    if len(ref_vals) >= 2:  # the interval the notes test a single run against
        lo, hi = prediction_interval(ref_vals)
        ax.axvspan(lo, hi, color="tab:blue", alpha=0.08, label=f"95 % prediction interval of one more seed of '{ref}'")
    for i, v in enumerate(rows):
        if (art := v.article.get(metric)) is not None:
            ax.plot(art, i + 0.15, "D", mfc="none", mec="tab:red", ms=7, label=legend.pop("article", None))
        vals = np.asarray([r.metrics[metric] for r in runs if r.variant == v.label and metric in r.metrics])
        if len(vals):
            ax.plot(vals, np.full(len(vals), i - 0.15), "o", color="tab:blue", alpha=0.35, ms=4)
            ax.errorbar(
                vals.mean(),
                i - 0.15,
                xerr=vals.std(ddof=1) if len(vals) > 1 else None,
                fmt="o",
                color="tab:blue",
                capsize=4,
                label=legend.pop("ours", None),
            )
            ax.annotate(
                f"n = {len(vals)}", (vals.max(), i - 0.15), xytext=(6, -3), textcoords="offset points", fontsize=7
            )
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    left, right = ax.get_xlim()
    ax.set_xlim(left - 0.04 * (right - left), right + 0.12 * (right - left))  # room for the edge points and 'n = '
    ax.set_xlabel(
        METRICS.get(metric, metric)
        + ("  (lower is better)" if metric in ("loss", "age_loss", "gender_loss", "age_mae") else "")
    )
    ax.set_title(exp.title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    if handles:  # below the axes, where it hides no row
        fig.legend(handles, names, fontsize=7, loc="lower left", bbox_to_anchor=(0.01, 0.01), frameon=False)
    fig.tight_layout(rect=(0, LEGEND_BELOW / height, 1, 1))
    return fig


LEGEND_BELOW = 0.6
"""Inches under the axes of ``plot_versus_article`` for its legend (three entries at most)."""
