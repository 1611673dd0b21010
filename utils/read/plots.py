"""The course's plots: of the data (faces hidden when they must not be stored) and of runs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..base.labels import GENDERS, RACES
from ..train.runs import Run, frame, history_key


def _hide(data, faces: bool) -> bool:
    """True when real UTKFace faces must not be drawn (rendering the committed copy)."""
    return not data.synthetic and not faces


def _faces_hidden(data, what: str, faces: bool) -> plt.Figure | None:
    """A small notice instead of real faces when they must not be stored; None when faces may be drawn."""
    if data.synthetic or faces:
        return None
    fig, ax = plt.subplots(figsize=(6, 0.8))
    ax.text(
        0.5,
        0.5,
        f"{what}: UTKFace faces are not stored in the committed notebook; run it to see them.",
        ha="center",
        va="center",
        fontsize=9,
    )
    ax.axis("off")
    return fig


STAND_IN = "synthetic stand-in: UTKFace faces are not stored in the committed notebook; run it to see real ones"


def _stand_in_faces(n: int, seed: int = 0, size: int = 200) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
    """``n`` synthetic faces (``utils.data.synthetic``) with their (age, gender, race):
    shown where real faces must not be stored."""
    from ..data.synthetic import RACE_P, draw_face, sample_age

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        labels = (sample_age(rng), int(rng.integers(0, 2)), int(rng.choice(5, p=RACE_P)))
        out.append((np.asarray(draw_face(*labels, rng, size=size)), labels))
    return out


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
    if _hide(data, faces):  # real faces must not be stored: synthetic stand-ins, labelled so
        shown = [(img, lab) for img, lab in _stand_in_faces(n, seed, size=data.images.shape[1])]
    else:
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(data.table), size=min(n, len(data.table)), replace=False)
        shown = [
            (
                data.images[i],
                (int(data.table.age.iloc[i]), int(data.table.gender.iloc[i]), int(data.table.race.iloc[i])),
            )
            for i in idx
        ]
    cols = min(6, len(shown))
    rows = int(np.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for ax, (img, (age, gender, race)) in zip(np.ravel(axes), shown):
        ax.imshow(img)
        ax.set_title(f"{age} y, {GENDERS[gender]}\n{RACES[race]}", fontsize=8)
    for ax in np.ravel(axes):
        ax.axis("off")
    if _hide(data, faces):
        fig.suptitle(STAND_IN, fontsize=9)
    fig.tight_layout()
    return fig


def show_resize(data, sizes: tuple[int, ...] = (128, 64, 32), faces: bool = True) -> plt.Figure:
    """The first face of the set at its original size and at each profile's size."""
    import tempfile

    from PIL import Image

    from ..data.decode import decode_one

    stand_in = _hide(data, faces)
    with tempfile.TemporaryDirectory() as tmp:
        if stand_in:  # the same decoding step, on a synthetic 200×200 JPEG instead of a UTKFace face
            path = f"{tmp}/synthetic.jpg"
            Image.fromarray(_stand_in_faces(1, seed=3)[0][0]).save(path, quality=95)
        else:
            path = f"{data.report.folder}/{data.table.file.iloc[0]}"
        original = np.asarray(Image.open(path).convert("RGB"))
        panels = [(original, f"original {original.shape[1]}×{original.shape[0]}")]
        panels += [(decode_one(str(path), s)[0], f"{s}×{s}") for s in sizes]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.9 + 0.3 * stand_in))
    for ax, (img, title) in zip(axes, panels):
        ax.imshow(img)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    if stand_in:
        fig.suptitle(STAND_IN, fontsize=9)
    fig.tight_layout()
    return fig


def show_conflicting_duplicates(data, n: int = 4, faces: bool = True) -> plt.Figure:
    """Byte-identical images filed under different ages or genders: the same picture, two labels."""
    from PIL import Image

    if (hidden := _faces_hidden(data, "conflicting duplicates", faces)) is not None:
        return hidden
    files = data.files[data.files.hash != ""]
    groups = [
        g
        for _h, g in files.groupby("hash", sort=False)
        if len(g) > 1 and g[["age", "gender"]].drop_duplicates().shape[0] > 1
    ]
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


def plot_augmented(image: np.ndarray, config=None, n: int = 8, seed: int = 0, title: str = "") -> plt.Figure:
    """``image`` (uint8) and ``n`` random draws of the course's augmentation block on it (``augment.augmentation``)."""
    from ..nets.augment import augmentation

    layer = augmentation(config, seed=seed)
    x = np.repeat(image[None].astype("float32") / 255.0, n, axis=0)
    out = np.clip(np.asarray(layer(x, training=True)), 0, 1)
    fig, axes = plt.subplots(1, n + 1, figsize=(1.6 * (n + 1), 2.0))
    axes[0].imshow(image)
    axes[0].set_title("original", fontsize=9)
    for i, (ax, img) in enumerate(zip(axes[1:], out), 1):
        ax.imshow(img)
        ax.set_title(f"draw {i}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def show_augmentations(data, n: int = 8, seed: int = 0, faces: bool = True) -> plt.Figure:
    """The first training face and ``n`` random augmentations of it, as the training pipeline makes them."""
    stand_in = _hide(data, faces)
    if stand_in:  # the same augmentation, on a synthetic face at the profile's size
        image = _stand_in_faces(1, seed=seed, size=data.images.shape[1])[0][0]
    else:
        image = np.asarray(data.images[data.indices("train")[0]])
    return plot_augmented(image, n=n, seed=seed, title=STAND_IN if stand_in else "")


CURVE_NAMES = {
    "loss": ("loss", "loss (lower is better)"),
    "age_mae_years": ("age MAE", "age MAE (years)"),
    "mae_years": ("age MAE", "age MAE (years)"),
    "gender_accuracy": ("gender accuracy", "accuracy"),
    "accuracy": ("gender accuracy", "accuracy"),
}


def plot_history(
    runs: list[Run],
    keys: tuple[str, ...] = ("loss", "age_mae_years", "gender_accuracy"),
    title: str = "",
    by_variant: bool = False,
) -> plt.Figure:
    """Training (dashed) and validation (solid) curves of each run; a dot marks the epoch early stopping kept.

    ``by_variant``: one row per variant, every row on the same axes, so that two variants can be compared by eye.
    """
    from matplotlib.ticker import MaxNLocator

    keys = [k for k in keys if any(history_key(r, k) for r in runs)]
    groups = list(dict.fromkeys(r.variant for r in runs)) if by_variant else [None]
    fig, axes = plt.subplots(
        len(groups), len(keys), figsize=(4.6 * len(keys), 3.3 * len(groups)), squeeze=False, sharex=True, sharey="col"
    )
    labels = list(dict.fromkeys(f"{r.variant}, seed {r.seed}" if not by_variant else f"seed {r.seed}" for r in runs))
    palette = dict(zip(labels, sns.color_palette("tab10", len(labels))))
    for row, group in zip(axes, groups):
        mine = [r for r in runs if group is None or r.variant == group]
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
        ax.plot(
            ep, age_weight * np.asarray(h["age_loss"]), "-", color=color, label=f"{age_weight:g}·age MSE, s{r.seed}"
        )
        ax.plot(ep, h["gender_loss"], ":", color=color, label=f"gender BCE, s{r.seed}")
    ax.set(yscale="log", xlabel="epoch", ylabel="training loss", title="the two parts of the loss")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_bn_probe(runs: list[Run]) -> plt.Figure:
    """Per probed run: validation age MAE per epoch scored with BatchNorm's moving averages and with re-measured
    statistics."""
    runs = [r for r in runs if r.probes.get("bn")]
    cols = min(max(len(runs), 1), 2)
    rows = -(-max(len(runs), 1) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(5 * cols, 3.3 * rows), squeeze=False, sharey=True)
    axes = list(grid.ravel())
    styles = {
        "moving": ("moving averages (as Keras scores)", "tab:red", "-"),
        "precise_train": ("re-measured, training regime", "tab:blue", "-"),
        "precise_inference": ("re-measured, inference regime", "tab:blue", ":"),
    }
    for ax, r in zip(axes, runs):
        probe = r.probes["bn"]
        for key, (label, color, line) in styles.items():
            ep = np.arange(1, len(probe[key]) + 1)
            ax.plot(ep, probe[key], line, color=color, marker=".", label=label)
        ax.axvline(r.best_epoch, color="grey", lw=0.8)
        ax.set(xlabel="epoch (grey: the epoch early stopping kept)", title=f"{r.variant}, seed {r.seed}")
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
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(labels) + 1.4))
    kinds = sorted({r.data.get("kind", "") for r in runs} - {""}) or ["?"]
    where = f"{profile.name}, {profile.image_size} px, " if profile is not None else ""
    legend = {
        "article": "article (one run, 128 px)",
        "ours": f"ours ({where}{'/'.join(kinds)}): mean ± std, dots = seeds",
    }
    from ..nets.models import ARTICLE
    from .notes import prediction_interval

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
    if handles:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def plot_photo_faces(image: np.ndarray, faces: list, title: str = "") -> plt.Figure:
    """A photo with a box and the models' answer over each face (``predict.Face`` list)."""
    h, w = image.shape[:2]
    fig, ax = plt.subplots(figsize=(6, 6 * h / w))
    ax.imshow(image)
    for i, f in enumerate(faces, 1):
        if f.box is None:
            continue
        ax.add_patch(plt.Rectangle((f.box.x, f.box.y), f.box.w, f.box.h, fill=False, lw=2, color="yellow"))
        parts = [f"{i}"]
        if f.age is not None:
            parts.append(f"{f.age:.0f} y" + (f" ({f.age_low:.0f}–{f.age_high:.0f})" if f.age_low is not None else ""))
        if f.female is not None:
            parts.append(f"P(female) {f.female:.2f}")
        ax.text(
            f.box.x,
            f.box.y - 4,
            " · ".join(parts),
            color="black",
            fontsize=9,
            va="bottom",
            bbox=dict(facecolor="yellow", alpha=0.8, lw=0, pad=1.5),
        )
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    return fig


def plot_age_distributions(faces: list, truth: list[float] | None = None, title: str = "") -> plt.Figure:
    """Each face's age distribution read from the ordinal head, with its interval shaded and the predicted age
    marked."""
    from ..base.labels import age_distribution

    faces = [f for f in faces if f.age_above is not None]
    if not faces:
        raise ValueError("no face has ordinal probabilities (age_above): the model's age head is not ordinal")
    fig, axes = plt.subplots(len(faces), 1, figsize=(8, 2.2 * len(faces)), squeeze=False)
    for i, (ax, f) in enumerate(zip(axes[:, 0], faces)):
        dist = age_distribution(f.age_above)
        ages = f.min_age + np.arange(len(dist))
        ax.bar(ages, dist, width=1.0, color="tab:blue", alpha=0.7)
        ax.axvspan(
            f.age_low - 0.5,
            f.age_high + 0.5,
            color="tab:orange",
            alpha=0.2,
            label=f"{f.interval:.0%} interval (the model puts {f.interval_mass:.0%} in it)",
        )
        ax.axvline(f.age, color="black", lw=1.5, label=f"predicted age {f.age:.0f}")
        if truth is not None:
            ax.axvline(truth[i], color="tab:red", lw=1.5, ls="--", label=f"true age {truth[i]:.0f}")
        ax.set_xlim(ages[0] - 1, ages[-1] + 1)
        ax.set_ylabel("P(age)")
        ax.legend(fontsize=8, loc="upper right")
        ax.set_title(f"face {i + 1}" + (f" · {title}" if title else ""), fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("age (years)")
    fig.tight_layout()
    return fig


def plot_grad_cam(crop: np.ndarray, maps: dict[str, np.ndarray], title: str = "") -> plt.Figure:
    """The model's input crop, then each Grad-CAM map laid over it."""
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(3 * (1 + len(maps)), 3.2))
    axes[0].imshow(crop)
    axes[0].set_title("what the model sees", fontsize=9)
    for ax, (name, cam) in zip(axes[1:], maps.items()):
        ax.imshow(crop)
        ax.imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(f"Grad-CAM: {name}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
