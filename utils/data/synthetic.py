"""Synthetic UTKFace-like faces: real JPEG files named like UTKFace, whose look depends on age, gender and race.

They let the whole course (and CI) run without the real data. A model can learn from them: children have
round faces with large, low-set eyes; wrinkles and grey hair grow with age; women have long hair and men
short hair (with some beards); skin tone follows race. Results on them are always labelled synthetic.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..base.paths import DATA_DIR

VERSION = 2
SKIN = {0: (236, 200, 170), 1: (120, 80, 55), 2: (225, 190, 150), 3: (180, 130, 95), 4: (200, 160, 120)}
RACE_P = [0.42, 0.19, 0.15, 0.17, 0.07]  # roughly UTKFace's mix
HAIR = [(40, 30, 25), (90, 60, 30), (20, 20, 20), (150, 110, 60), (60, 40, 30)]


def sample_age(rng: np.random.Generator) -> int:
    """Draw an age from a UTKFace-like mix: many young adults, a peak of small children, a long tail."""
    u = rng.random()
    if u < 0.15:
        age = rng.integers(1, 11)
    elif u < 0.75:
        age = rng.normal(30, 9)
    else:
        age = rng.uniform(40, 95)
    return int(np.clip(round(float(age)), 1, 116))


def draw_face(age: int, gender: int, race: int, rng: np.random.Generator, size: int = 200) -> Image.Image:
    """Draw one face whose proportions, wrinkles, hair and skin depend on its labels."""
    s = size / 200
    bg = tuple(int(c) for c in rng.integers(60, 230, 3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    child = np.clip((14 - age) / 13, 0, 1)  # 1 for a baby, 0 from 14 years on
    old = np.clip((age - 30) / 50, 0, 1)  # 0 up to 30, 1 at 80
    grey = np.clip((age - 38) / 35, 0, 1)
    cx = 100 + rng.normal(0, 4)
    cy = 105 + rng.normal(0, 4)
    half_w = (52 + 10 * child) * (0.97 + 0.06 * rng.random())
    half_h = (70 - 8 * child + 4 * old) * (0.97 + 0.06 * rng.random())
    skin = np.array(SKIN[race]) * (0.9 + 0.2 * rng.random())
    skin_c = tuple(int(c) for c in np.clip(skin, 0, 255))
    hair = (1 - grey) * np.array(HAIR[race]) + grey * np.array([205, 205, 205])
    hair_c = tuple(int(c) for c in hair)

    def box(x0, y0, x1, y1):
        return [x0 * s, y0 * s, x1 * s, y1 * s]

    if gender == 1:  # long hair behind the face
        d.rounded_rectangle(
            box(cx - half_w - 14, cy - half_h - 10, cx + half_w + 14, cy + half_h + 35), 30 * s, fill=hair_c
        )
    d.ellipse(box(cx - half_w, cy - half_h, cx + half_w, cy + half_h), fill=skin_c)
    recede = 18 * old if gender == 0 else 0  # men's hairline recedes with age
    d.chord(
        box(cx - half_w - 2, cy - half_h - 6 + recede, cx + half_w + 2, cy - half_h * 0.2 + recede),
        180,
        360,
        fill=hair_c,
    )
    # eyes: larger and lower for children
    eye_y = cy - half_h * (0.05 - 0.22 * child)
    eye_r = 7 + 5 * child
    for side in (-1, 1):
        ex = cx + side * half_w * 0.42
        d.ellipse(box(ex - eye_r, eye_y - eye_r * 0.6, ex + eye_r, eye_y + eye_r * 0.6), fill=(245, 245, 245))
        d.ellipse(
            box(ex - eye_r * 0.45, eye_y - eye_r * 0.45, ex + eye_r * 0.45, eye_y + eye_r * 0.45), fill=(50, 35, 25)
        )
        if age > 40:  # crow's feet
            for k in range(int(1 + 3 * old)):
                d.line(
                    box(ex + side * (eye_r + 2), eye_y + k * 3 - 3, ex + side * (eye_r + 9), eye_y + k * 5 - 6),
                    fill=(90, 60, 50),
                    width=1,
                )
    # mouth: redder for women
    mouth_y = cy + half_h * (0.5 - 0.08 * child)
    lip = (190, 70, 80) if gender == 1 else (150, 90, 80)
    d.chord(box(cx - 16, mouth_y - 6, cx + 16, mouth_y + 8), 0, 180, fill=lip)
    # wrinkles on the forehead and from nose to mouth
    for k in range(int(round(5 * old))):
        y = cy - half_h * 0.45 + k * 6
        d.arc(box(cx - half_w * 0.55, y, cx + half_w * 0.55, y + 10), 200, 340, fill=(100, 70, 60), width=1)
    if age > 45:
        for side in (-1, 1):
            d.line(box(cx + side * 10, cy + 8, cx + side * 22, mouth_y + 4), fill=(110, 75, 65), width=2)
    if gender == 0 and age >= 18 and rng.random() < 0.35:  # some men have beards
        d.chord(box(cx - half_w * 0.85, cy + half_h * 0.2, cx + half_w * 0.85, cy + half_h * 1.02), 0, 180, fill=hair_c)
        d.chord(box(cx - 16, mouth_y - 6, cx + 16, mouth_y + 8), 0, 180, fill=lip)
    img = img.rotate(rng.normal(0, 5), resample=Image.Resampling.BILINEAR, fillcolor=bg)
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    arr = np.asarray(img, np.float32) * (0.85 + 0.3 * rng.random()) + rng.normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _name(age: int, gender: int, race: int | None, stamp: int) -> str:
    mid = f"{race}_" if race is not None else ""
    return f"{age}_{gender}_{mid}{20170101000000000 + stamp}.jpg.chip.jpg"


def make_synthetic(n: int = 600, seed: int = 0, root: Path | None = None, irregular: bool = True) -> Path:
    """Write ``n`` synthetic faces as UTKFace-named JPEGs (plus a few irregular files) and return the folder."""
    if n < 10:
        raise ValueError(f"n must be at least 10 synthetic faces, got {n}")
    folder = Path(root or DATA_DIR / "synthetic") / f"n{n}-seed{seed}-v{VERSION}" / "UTKFace"
    marker = folder.parent / ".complete"
    if marker.exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        age, gender = sample_age(rng), int(rng.integers(0, 2))
        race = int(rng.choice(5, p=RACE_P))
        name = _name(age, gender, race, i)
        draw_face(age, gender, race, rng).save(folder / name, quality=90)
        names.append((name, age, gender, race))
    if irregular:  # the kinds of oddities the real archive has, so the loader's accounting shows up
        _irregular_files(folder, names, rng, n)
    marker.write_text(f"{n} faces, seed {seed}\n")
    return folder


def _irregular_files(folder: Path, names: list[tuple[str, int, int, int]], rng: np.random.Generator, n: int) -> None:
    age, gender, race = 33, 1, 2
    draw_face(age, gender, race, rng).save(folder / _name(age, gender, None, n + 1), quality=90)  # no race field
    first = (folder / names[0][0]).read_bytes()
    (folder / _name(names[0][1], names[0][2], names[0][3], n + 2)).write_bytes(first)  # same image, same labels
    second = (folder / names[1][0]).read_bytes()
    (folder / _name(min(names[1][1] + 20, 116), names[1][2], names[1][3], n + 3)).write_bytes(second)  # conflicting
    (folder / _name(40, 0, 0, n + 4)).write_bytes(first[:300])  # truncated JPEG
    draw_face(50, 0, 0, rng).convert("L").save(folder / _name(50, 0, 0, n + 5), quality=90)  # greyscale
    draw_face(8, 1, 3, rng).convert("CMYK").save(folder / _name(8, 1, 3, n + 6), quality=90)  # CMYK
    draw_face(25, 0, 1, rng).save(folder / "face_without_labels.jpg", quality=90)  # unreadable name
    (folder / "notes.txt").write_text("not an image\n")
