"""The course's plots: of the data (faces hidden when they must not be stored) and of runs."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..labels import GENDERS, RACES
from ..runs import Run, frame, history_key


def _faces_hidden(data, what: str, faces: bool) -> plt.Figure | None:
    """A small notice instead of real faces when they must not be stored; None when faces may be drawn."""
    if data.synthetic or faces:
        return None
    fig, ax = plt.subplots(figsize=(6, 0.8))
    ax.text(0.5, 0.5, f"{what}: UTKFace faces are not stored in the committed notebook; run it to see them.",
            ha="center", va="center", fontsize=9)
    ax.axis("off")
    return fig


def plot_label_distributions(data) -> plt.Figure:
    """Age histogram by gender, and gender and race counts."""
    t = data.table.assign(gender=data.table.gender.map(GENDERS), race_name=data.table.race.map(RACES))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), gridspec_kw={"width_ratios": [2.2, 1, 1.4]})
    sns.histplot(t, x="age", hue="gender", bins=range(0, 118, 2), multiple="stack", ax=axes[0])
    axes[0].set_title("age (years)")
    sns.countplot(t, x="gender", ax=axes[1])
    axes[1].set_title("gender")
    sns.countplot(t, x="race_name", order=[r for r in RACES.values() if r in set(t.race_name)], ax=axes[2])
    axes[2].set_title("race")
    for ax in axes[1:]:
        ax.set_xlabel("")
    axes[2].tick_params(axis="x", rotation=30)
    fig.suptitle(f"{len(t):,} {data.kind} faces", y=1.02)
    fig.tight_layout()
    return fig


def show_samples(data, n: int = 12, seed: int = 0, faces: bool = True) -> plt.Figure:
    """A grid of faces with their labels."""
    if (hidden := _faces_hidden(data, "sample faces", faces)) is not None:
        return hidden
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(data.table), size=min(n, len(data.table)), replace=False)
    cols = min(6, len(idx))
    rows = int(np.ceil(len(idx) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows))
    for ax, i in zip(np.ravel(axes), idx):
        r = data.table.iloc[i]
        ax.imshow(data.images[i])
        ax.set_title(f"{r.age} y, {GENDERS[r.gender]}\n{RACES[r.race]}", fontsize=8)
    for ax in np.ravel(axes):
        ax.axis("off")
    fig.tight_layout()
    return fig


def show_resize(data, sizes: tuple[int, ...] = (128, 64, 32), faces: bool = True) -> plt.Figure:
    """The first face of the set at its original size and at each profile's size."""
    from PIL import Image

    if (hidden := _faces_hidden(data, "the resize step", faces)) is not None:
        return hidden
    path = f"{data.report.folder}/{data.table.file.iloc[0]}"
    from ..data import _decode_one

    original = np.asarray(Image.open(path).convert("RGB"))
    panels = [(original, f"original {original.shape[1]}×{original.shape[0]}")]
    panels += [(_decode_one(str(path), s)[0], f"{s}×{s}") for s in sizes]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.9))
    for ax, (img, title) in zip(axes, panels):
        ax.imshow(img)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def show_conflicting_duplicates(data, n: int = 4, faces: bool = True) -> plt.Figure:
    """Byte-identical images filed under different ages or genders: the same picture, two labels."""
    from PIL import Image

    if (hidden := _faces_hidden(data, "conflicting duplicates", faces)) is not None:
        return hidden
    files = data.files[data.files.hash != ""]
    groups = [g for _h, g in files.groupby("hash", sort=False) if len(g) > 1 and g[["age", "gender"]].drop_duplicates().shape[0] > 1]
    groups = groups[:n]
    fig, axes = plt.subplots(1, max(len(groups), 1), figsize=(2.6 * max(len(groups), 1), 3.0), squeeze=False)
    for ax, g in zip(axes[0], groups):
        ax.imshow(Image.open(f"{data.report.folder}/{g.file.iloc[0]}").convert("RGB"))
        ax.set_title("\n".join(f"{a} y, {GENDERS[s]}" for a, s in zip(g.age, g.gender)), fontsize=8)
    for ax in axes[0]:
        ax.axis("off")
    fig.suptitle("one image, several labels", fontsize=10, y=1.04)
    fig.tight_layout()
    return fig


def show_augmentations(data, n: int = 8, seed: int = 0, faces: bool = True) -> plt.Figure:
    """The first training face and ``n`` random augmentations of it, as the training pipeline makes them."""
    from ..augment import augmentation

    if (hidden := _faces_hidden(data, "augmented faces", faces)) is not None:
        return hidden
    image = np.asarray(data.images[data.indices("train")[0]])
    layer = augmentation(seed=seed)
    x = np.repeat(image[None].astype("float32") / 255.0, n, axis=0)
    out = np.clip(np.asarray(layer(x, training=True)), 0, 1)
    fig, axes = plt.subplots(1, n + 1, figsize=(1.7 * (n + 1), 2.0))
    axes[0].imshow(image)
    axes[0].set_title("original", fontsize=8)
    for ax, img in zip(axes[1:], out):
        ax.imshow(img)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_history(runs: list[Run], keys: tuple[str, ...] = ("loss", "age_mae_years", "gender_accuracy"), title: str = "") -> plt.Figure:
    """Training and validation curves of each run; a dot marks the epoch early stopping kept."""
    keys = [k for k in keys if any(history_key(r, k) for r in runs)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.3 * len(keys), 3.2), squeeze=False)
    palette = sns.color_palette("tab10", len(runs))
    for ax, key in zip(axes[0], keys):
        for color, r in zip(palette, runs):
            hk = history_key(r, key)
            train, val = r.history[hk], r.history[f"val_{hk}"]
            ep = np.arange(1, len(train) + 1)
            label = f"{r.variant} s{r.seed}".strip()
            ax.plot(ep, train, "--", color=color, alpha=0.6)
            ax.plot(ep, val, "-", color=color, label=label)
            ax.plot(r.best_epoch, val[r.best_epoch - 1], "o", color=color)
        ax.set_xlabel("epoch")
        ax.set_title(key.replace("_", " ") + " (dashed: train, solid: val)", fontsize=9)
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_loss_balance(runs: list[Run], age_weight: float = 2.0) -> plt.Figure:
    """Per epoch, the weighted age loss and the gender loss on the training set: which task the shared layers serve."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for color, r in zip(sns.color_palette("tab10", len(runs)), runs):
        h = r.history
        if "age_loss" not in h or "gender_loss" not in h:
            continue
        ep = np.arange(1, len(h["age_loss"]) + 1)
        ax.plot(ep, age_weight * np.asarray(h["age_loss"]), "-", color=color, label=f"{age_weight:g}·age MSE, s{r.seed}")
        ax.plot(ep, h["gender_loss"], ":", color=color, label=f"gender BCE, s{r.seed}")
    ax.set(yscale="log", xlabel="epoch", ylabel="training loss", title="the two parts of the loss")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_bn_probe(runs: list[Run]) -> plt.Figure:
    """Per probed run: validation age MAE per epoch scored with BatchNorm's moving averages and with re-measured statistics."""
    runs = [r for r in runs if r.probes.get("bn")]
    cols = min(max(len(runs), 1), 2)
    rows = -(-max(len(runs), 1) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(5 * cols, 3.3 * rows), squeeze=False, sharey=True)
    axes = list(grid.ravel())
    styles = {"moving": ("moving averages (as Keras scores)", "tab:red", "-"),
              "precise_train": ("re-measured, training regime", "tab:blue", "-"),
              "precise_inference": ("re-measured, inference regime", "tab:blue", ":")}
    for ax, r in zip(axes, runs):
        probe = r.probes["bn"]
        for key, (label, color, line) in styles.items():
            ep = np.arange(1, len(probe[key]) + 1)
            ax.plot(ep, probe[key], line, color=color, marker=".", label=label)
        ax.axvline(r.best_epoch, color="grey", lw=0.8)
        ax.set(xlabel="epoch (grey: the epoch early stopping kept)", title=f"{r.variant}, seed {r.seed}")
    for ax in axes[len(runs):] if runs else []:
        ax.set_visible(False)
    for ax in grid[:, 0]:
        ax.set_ylabel("validation age MAE (years)")
    if runs:
        axes[0].legend(fontsize=7)
    else:
        axes[0].text(0.5, 0.5, "no probed runs stored yet", ha="center", va="center", transform=axes[0].transAxes)
    fig.tight_layout()
    return fig


def plot_age_predictions(run: Run) -> plt.Figure:
    """Predicted against true age on the test set, and the error by age band."""
    p = run.predictions
    t, y = np.asarray(p["age_true"]), np.asarray(p["age_pred"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].hexbin(t, y, gridsize=40, mincnt=1, cmap="viridis", bins="log")
    lim = [0, max(t.max(), y.max()) + 2]
    axes[0].plot(lim, lim, "w--", lw=1)
    axes[0].set(xlabel="true age (years)", ylabel="predicted age (years)", title=f"test set, MAE {np.mean(np.abs(y - t)):.2f} y")
    bands = pd.cut(t, [0, 3, 10, 20, 30, 40, 50, 60, 70, 120], right=False)
    err = pd.DataFrame({"band": bands, "abs error": np.abs(y - t)})
    sns.barplot(err, x="band", y="abs error", ax=axes[1], errorbar=None, color="tab:blue")
    axes[1].set(xlabel="true age band", ylabel="MAE (years)", title="error by age")
    axes[1].tick_params(axis="x", rotation=45, labelsize=7)
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
    from ..heads import extend_labels

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
    """Share of test faces whose P(age > k) never increases with k, per ordinal method."""
    tidy = frame(runs)
    df = tidy[tidy.metric == "rank_consistency"].rename(columns={"variant": "method", "value": "consistent"})
    fig, ax = plt.subplots(figsize=(6, 3))
    if len(df):
        sns.barplot(df, x="method", y="consistent", ax=ax, errorbar=("pi", 100), color="tab:green")
    ax.set(ylim=(0, 1.05), ylabel="share rank-consistent", title="rank consistency on the test set")
    fig.tight_layout()
    return fig
