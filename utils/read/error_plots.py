"""Who the model gets wrong, as figures (notebooks 07 and 08): error curves against true age, age band × race
heatmaps, the faces a model gets most wrong, and the data's imbalance. They draw the tables ``errors`` and ``tidy``
compute.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .plots import line_colors
from .tidy import with_groups


def plot_error_curves(curve: pd.DataFrame, min_faces: int = 10) -> plt.Figure:
    """Mean prediction, MAE and bias against true age, one line per model, with 95 % bands."""
    c = curve[curve.faces >= min_faces]
    c = c if len(c) else curve
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    groups = list(c.groupby("model", observed=True))
    styles = zip(line_colors(len(groups)), ["o", "s", "^", "D", "v", "P"] * len(groups))
    for (model, g), (color, marker) in zip(groups, styles):  # colour and marker: told apart with colour blindness too
        for ax, stat in zip(axes, ("predicted", "MAE", "bias")):
            ax.plot(g.age_bin, g[stat], marker=marker, ms=3, color=color, label=str(model))
            ax.fill_between(g.age_bin, g[f"{stat} lo"], g[f"{stat} hi"], color=color, alpha=0.2)
    top = c.age_bin.max() + 5
    axes[0].plot([0, top], [0, top], "k--", lw=1, label="perfect")
    axes[0].axhline(0, color="grey", lw=0.8)
    axes[2].axhline(0, color="k", lw=0.8)
    axes[0].set(title="mean predicted age", ylabel="years")
    axes[1].set(title="MAE", ylabel="years")
    axes[2].set(title="bias (predicted − true)", ylabel="years")
    for ax in axes:
        ax.set_xlabel("true age (years)")
    axes[0].legend(fontsize=7)
    width = curve.attrs.get("width", 5)
    fig.suptitle(
        f"bins of {width:g} years with ≥ {min_faces} faces; bands: 95 % bootstrap over faces and seeds",
        y=1.02,
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def plot_band_race_heatmaps(
    table: pd.DataFrame, models: list[str], stat: str = "MAE", min_faces: int = 10
) -> plt.Figure:
    """Seaborn heatmaps of a stat by age band × race, one per model, each cell annotated with its face count; cells with
    fewer than `min_faces` test faces are greyed out (their count still shown)."""
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models) + 1, 4.2), squeeze=False)
    vmax = table[table.model.isin(models)][stat].max()
    for ax, model in zip(axes[0], models):
        t = table[table.model == model]
        values = t.pivot_table(index="age_band", columns="race_name", values=stat, observed=False)
        counts = t.pivot_table(index="age_band", columns="race_name", values="faces", observed=False)
        few = counts.fillna(0) < min_faces
        annot = values.round(1).astype(str).where(~few, "–") + "\n(" + counts.fillna(0).astype(int).astype(str) + ")"
        ax.set_facecolor("#d9d9d9")
        sns.heatmap(
            values.where(~few),
            annot=annot,
            fmt="",
            cmap="rocket_r",
            vmin=0,
            vmax=vmax,
            ax=ax,
            cbar=ax is axes[0][-1],
            annot_kws={"fontsize": 7},
            cbar_kws={"label": f"{stat} (years)"},
        )
        for i, j in zip(*np.nonzero(few.to_numpy())):  # seaborn writes nothing in a masked cell: its count, by hand
            ax.text(j + 0.5, i + 0.5, annot.iloc[i, j], ha="center", va="center", fontsize=7, color="#333333")
        ax.set(title=str(model), xlabel="race", ylabel="true age band")
    fig.suptitle(
        f"{stat} (y) by age band × race (mean over seeds; test faces in brackets; grey: fewer than {min_faces})",
        y=1.02,
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def show_faces(data, files: list[str], show: bool, titles: list[str] | None = None) -> plt.Figure | None:
    """The faces of the given files from a loaded data set; real faces only when `show` is on (else a printed
    notice)."""
    if not data.synthetic and not show:
        print(
            f"{len(files)} faces not shown: UTKFace faces are never stored in the committed notebook "
            "(set SHOW_FACES = True and run it to see them)."
        )
        return None
    index = pd.Series(np.arange(len(data.table)), index=data.table.file)
    fig, axes = plt.subplots(1, len(files), figsize=(1.6 * len(files), 2.0), squeeze=False)
    for i, (ax, f) in enumerate(zip(axes[0], files)):
        ax.imshow(data.images[index[f]])
        ax.set_title(titles[i] if titles else f.split("_20")[0], fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_imbalance(table: pd.DataFrame) -> plt.Figure:
    """Faces by race and gender, and by age band and race (a table with age, gender and race columns)."""
    t = with_groups(table.assign(age_true=table.age, age_pred=table.age))
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), gridspec_kw={"width_ratios": [1, 1.8]})
    sns.countplot(t, x="race_name", hue="gender_name", ax=axes[0])
    axes[0].set(xlabel="", title="faces by race and gender")
    if axes[0].get_legend() is not None:
        axes[0].get_legend().set_title("gender")
    by_race = pd.crosstab(t.age_band, t.race_name)
    colors = sns.color_palette("Set2", by_race.shape[1])  # not the gender panel's colours: another variable
    by_race.plot.bar(stacked=True, ax=axes[1], width=0.85, color=colors)
    axes[1].legend(title="race", fontsize=8)
    axes[1].set(xlabel="age band", ylabel="faces", title="faces by age band and race")
    axes[1].tick_params(axis="x", rotation=0)
    fig.tight_layout()
    return fig
