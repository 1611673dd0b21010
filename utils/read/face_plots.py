"""Figures that show faces: the data's (label distributions, samples, resizing, duplicates), the augmentation block's
draws (on ``photo``, a public-domain portrait), and a user's photo with its faces, age distributions and Grad-CAM maps.
Real UTKFace faces are never drawn in the committed copy of a notebook: a figure that would show them draws synthetic
stand-ins or a notice instead."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from ..base.labels import GENDERS, RACES


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
    """Age histogram by gender, and gender and race counts (each bar labelled with its count)."""
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
        ax.bar_label(ax.containers[0], fmt="{:,.0f}", fontsize=7)  # a bar too small to see still says its count
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
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.4 * rows), squeeze=False)
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


def photo(size: int = 64) -> np.ndarray:
    """Grace Hopper's portrait (US Navy, public domain), shipped with matplotlib: a face the committed notebooks may
    show. Centre-cropped to a square and resized to ``size`` px, uint8 RGB."""
    from matplotlib import cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        w, h = im.size
        side = min(w, h)
        top = max(0, (h - side) // 4)  # a little above the centre: the face, not the uniform
        im = im.convert("RGB").crop(((w - side) // 2, top, (w - side) // 2 + side, top + side))
        return np.asarray(im.resize((size, size), Image.BILINEAR), np.uint8)


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
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(3 * (1 + len(maps)) + 0.8, 3.4), layout="constrained")
    axes[0].imshow(crop)
    axes[0].set_title("what the model sees", fontsize=9)
    for ax, (name, cam) in zip(axes[1:], maps.items()):
        ax.imshow(crop)
        shown = ax.imshow(cam, cmap="inferno", alpha=0.5, vmin=0, vmax=1)  # brighter: more weight
        ax.set_title(f"Grad-CAM: {name}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    if maps:
        bar = fig.colorbar(shown, ax=list(axes[1:]), shrink=0.8)
        bar.set_label("weight, each map scaled to its own maximum", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig
