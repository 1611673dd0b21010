"""Any user photo -> UTKFace-like face crops: read it robustly, find the faces, crop each as UTKFace does.

The course's models were trained on UTKFace's "Aligned & Cropped Faces": 200x200 JPEGs with the face always in the same
place and at the same scale. A model shown a holiday photo, or a face cropped tighter or looser than that, is shown
something it never saw, so predictions on user photos go through three steps here:

* ``photos.read_image`` (or ``read_photo``) turns whatever the user gives (a path, a PIL image, an array) into one
  upright HxWx3 uint8 RGB array, or raises ``photos.ImageError`` naming the file and saying what to give instead.
* ``detect_faces`` finds frontal faces with OpenCV's bundled Haar cascade (works offline, no model download).
  Of the two frontal cascades compared on 1,000 real UTKFace crops
  (``python -m utils.use.faces calibrate --cascade both``), ``haarcascade_frontalface_alt2.xml`` is used: it found
  a face in more of them (98.0 % against 97.0 %), never two in one crop, and is as fast; see ``CASCADE``.
* ``utk_crop`` cuts a square around each detected face, centred and scaled by ``CROP`` so that the face sits where it
  sits in UTKFace's crops. ``CROP`` is not a guess: ``calibrate`` runs the same detector on real UTKFace crops and
  measures where the detector's box lies in them (``python -m utils.use.faces calibrate``).

Then ``like_training`` resizes a crop to a model's input size as the loader resized UTKFace's JPEGs; ``centre_square``
(a photo taken as one crop) and ``scaled_box`` (a box found in a reduced photo, in the original's pixels) are the rest
of the geometry ``predict`` needs.

Choices: where the square leaves the photo it is padded by *edge replication* (reflection would mirror half a face or
an extra eye into the crop, which a model could read as a feature); it is resized with PIL's LANCZOS filter (sharp
when enlarging, anti-aliased when shrinking). Haar cascades find frontal, upright faces only: a profile, a strongly
tilted head or a face under ``min_size`` pixels is not found, and occasionally a face-like texture is.
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..base.paths import DATA_DIR, shown
from .photos import as_rgb, read_image

if TYPE_CHECKING:
    import cv2  # imported where used: reading images (photos) needs only PIL

__all__ = [
    "CASCADE",
    "CROP",
    "Box",
    "calibrate",
    "detect_faces",
    "scaled_crop",
    "utk_crop",
]

CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")
CASCADE = CASCADES[1]
"""The cascade ``detect_faces`` uses: alt2, measured against default on the same 1,000 UTKFace crops (seed 0).

Edge-padded as ``calibrate`` does, alt2 found exactly one face in 98.0 % of them and default in 97.0 %, neither ever
found two; unpadded, 59.0 % against 56.9 %, with 0 against 3 crops holding two boxes. Both took about 45 ms a crop.
"""

# Measured 2026-11-29 by `python -m utils.use.faces calibrate --n 1000` (seed 0): haarcascade_frontalface_alt2.xml on
# 1,000 UTKFace crops edge-padded by 25 %, exactly one face in 980 (98.0 %), median box 202 px of the 200 px crop.
CROP: tuple[float, float, float] = (0.99, 0.005, 0.092)
"""(square side / box width, centre dx / box width, centre dy / box width): UTKFace's square around a detected face.

The square is about as wide as the detector's box and its centre lies 9 % of a box width below the box's centre
(UTKFace's crops hold the chin and less forehead than the Haar box does); dx is ~0, faces are centred left to right.
"""


@contextmanager
def scaled_crop(scale: float) -> Iterator[tuple[float, float, float]]:
    """``CROP`` with its side times ``scale`` inside a ``with`` block; the calibrated one is back after it, also when
    the block fails."""
    global CROP
    saved = CROP
    CROP = (saved[0] * scale, *saved[1:])
    try:
        yield CROP
    finally:
        CROP = saved


SCALE_FACTOR, MIN_NEIGHBOURS = 1.1, 5  # OpenCV's usual settings: 10 % steps between scales, 5 overlapping hits
OVERLAP = 0.5  # two boxes are one face when their intersection covers this share of the smaller one


@dataclass(frozen=True)
class Box:
    """A face's box in the original image's pixel coordinates (after EXIF rotation): left x, top y, width, height."""

    x: int
    y: int
    w: int
    h: int

    def to_dict(self) -> dict[str, int]:
        """The box as a plain dict (for JSON)."""
        return asdict(self)


# ----------------------------------------------------------------------------------------- detecting


@functools.cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    import cv2

    path = Path(cv2.data.haarcascades) / name
    classifier = cv2.CascadeClassifier(str(path))
    if classifier.empty():
        raise RuntimeError(
            f"OpenCV cannot load the face cascade {path}; install opencv-python-headless>=4.9,<5 "
            "(OpenCV 5 no longer ships the Haar cascades)"
        )
    return classifier


def _merge(boxes: list[Box], hits: list[int]) -> list[Box]:
    """Overlapping boxes (one covering half of another) are one face: keep the one the most windows agreed on."""
    kept: list[Box] = []
    for _, b in sorted(zip(hits, boxes), key=lambda t: (-t[0], -t[1].w * t[1].h)):
        if all(_overlap(b, k) < OVERLAP for k in kept):
            kept.append(b)
    return kept


def _overlap(a: Box, b: Box) -> float:
    iw = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    ih = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    return max(iw, 0) * max(ih, 0) / min(a.w * a.h, b.w * b.h)


def detect_faces(image: np.ndarray, min_size: int = 20, max_side: int = 1600, cascade: str = CASCADE) -> list[Box]:
    """Frontal faces of at least ``min_size`` pixels, as boxes in ``image``'s coordinates, sorted left to right."""
    import cv2

    rgb = as_rgb(image)
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))  # large photos are searched at max_side: faster, same faces
    small = (
        rgb
        if scale == 1.0
        else cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    )
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    side = max(1, int(min_size * scale))
    found, hits = _cascade(cascade).detectMultiScale2(
        grey, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBOURS, minSize=(side, side)
    )
    boxes = []
    for bx, by, bw, bh in np.asarray(found).reshape(-1, 4):
        x0, y0 = max(0, round(bx / scale)), max(0, round(by / scale))
        x1, y1 = min(w, round((bx + bw) / scale)), min(h, round((by + bh) / scale))
        boxes.append(Box(int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
    counts = [int(n) for n in np.asarray(hits).reshape(-1)]
    kept = [b for b in _merge(boxes, counts) if b.w >= min_size and b.h >= min_size]
    return sorted(kept, key=lambda b: (b.x, b.y))


# ----------------------------------------------------------------------------------------- cropping


def utk_crop(image: np.ndarray, box: Box, size: int = 200) -> np.ndarray:
    """The square around ``box`` that frames the face as UTKFace does, edge-padded where it leaves the photo,
    size x size."""
    rgb = as_rgb(image)
    if box.w <= 0 or box.h <= 0:
        raise ValueError(f"box {box} has no area; give a box from detect_faces")
    if size < 1:
        raise ValueError(f"size={size}: give a positive number of pixels (UTKFace's crops are 200)")
    ratio, dx, dy = CROP
    side = max(1, round(ratio * box.w))
    cx, cy = box.x + box.w / 2 + dx * box.w, box.y + box.h / 2 + dy * box.w
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    x1, y1 = x0 + side, y0 + side
    h, w = rgb.shape[:2]
    inside = rgb[max(y0, 0) : max(min(y1, h), 0), max(x0, 0) : max(min(x1, w), 0)]
    if inside.size == 0:
        raise ValueError(f"box {box} lies outside the {w}x{h} image; give a box from detect_faces on this image")
    pad = ((max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w)), (0, 0))
    square = np.pad(inside, pad, mode="edge")
    return np.asarray(Image.fromarray(square).resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def scaled_box(box: Box, sx: float, sy: float, width: int, height: int) -> Box:
    """A box found in a reduced photo, in the original photo's pixels."""
    x0, y0 = min(width, round(box.x * sx)), min(height, round(box.y * sy))
    x1, y1 = min(width, round((box.x + box.w) * sx)), min(height, round((box.y + box.h) * sy))
    return Box(int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def centre_square(image: np.ndarray) -> np.ndarray:
    """The largest square at the photo's centre (what a photo without a detected box is taken as)."""
    h, w = image.shape[:2]
    side = min(h, w)
    return image[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]


def like_training(crop: np.ndarray, size: int) -> np.ndarray:
    """A square uint8 crop resized to ``size`` as the loader resized UTKFace's JPEGs: libjpeg's 1/2, 1/4 or 1/8
    reduction while decoding (a box filter here), then LANCZOS."""
    img = Image.fromarray(np.asarray(crop, np.uint8))
    factor = 1
    while factor < 8 and img.width // (factor * 2) >= size:
        factor *= 2
    if factor > 1:
        img = img.reduce(factor)
    return np.asarray(img.resize((size, size), Image.Resampling.LANCZOS))


# ----------------------------------------------------------------------------------------- calibrating


def calibrate(images: Iterable[np.ndarray], cascade: str = CASCADE, min_size: int = 20, pad: float = 0.25) -> dict:
    """Where the detector's box lies in UTKFace-style square crops: the ``CROP`` constants and the counts behind them.

    Each crop is first edge-padded by ``pad`` times its side on every side (as ``utk_crop`` pads): UTKFace's faces
    fill the frame, and unpadded the cascade finds only the faces whose box fits inside it (59 % of them, the smaller
    ones), which would bias the constants towards loose crops. Offsets are measured in the unpadded crop's coordinates.
    """
    n = detected = several = 0
    widths, ratios, dxs, dys = [], [], [], []
    for image in images:
        rgb = read_image(image)
        h, w = rgb.shape[:2]
        py, px = round(pad * h), round(pad * w)
        n += 1
        boxes = detect_faces(np.pad(rgb, ((py, py), (px, px), (0, 0)), mode="edge"), min_size=min_size, cascade=cascade)
        detected += bool(boxes)
        several += len(boxes) > 1
        if len(boxes) == 1:
            (b,) = boxes
            widths.append(b.w)
            ratios.append(w / b.w)  # = 200 / box width for UTKFace's 200x200 crops
            dxs.append((w / 2 - (b.x - px + b.w / 2)) / b.w)
            dys.append((h / 2 - (b.y - py + b.h / 2)) / b.w)
    one = len(widths)
    crop = tuple(round(float(np.median(v)), 3) for v in (ratios, dxs, dys)) if one else None
    return {
        "cascade": cascade,
        "pad": pad,
        "images": n,
        "detected": detected,
        "one_face": one,
        "several": several,
        "median_box": float(np.median(widths)) if one else None,
        "crop": crop,
    }


def _sample(folder: Path, n: int, seed: int) -> list[Path]:
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise SystemExit(
            f"no UTKFace JPEGs in {shown(folder)}; give --source FOLDER (python -m utils.data shows how "
            "to get the data)"
        )
    return random.Random(seed).sample(files, min(n, len(files)))


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.use.faces calibrate [--n 1000]``: measure ``CROP`` on real UTKFace crops and print it."""
    parser = argparse.ArgumentParser(
        prog="python -m utils.use.faces", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["calibrate"])
    parser.add_argument("--n", type=int, default=1000, help="how many UTKFace images to sample (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    parser.add_argument("--source", type=Path, default=DATA_DIR / "UTKFace", help="folder of UTKFace JPEGs")
    parser.add_argument(
        "--cascade",
        choices=["default", "alt2", "both"],
        default="alt2",
        help="which bundled cascade to measure (default alt2, the one detect_faces uses; both compares)",
    )
    parser.add_argument(
        "--pad",
        type=float,
        default=0.25,
        help="edge padding per side, as a share of the side (default 0.25; 0 measures the unpadded crops)",
    )
    args = parser.parse_args(argv)
    files = _sample(args.source, args.n, args.seed)
    names = CASCADES if args.cascade == "both" else [c for c in CASCADES if f"_{args.cascade}." in c]
    print(f"{len(files)} images from {shown(args.source)} (seed {args.seed}), edge-padded by {args.pad:g} of the side")
    images = [read_image(f) for f in files]
    for name in names:
        start = time.perf_counter()
        r = calibrate(images, cascade=name, pad=args.pad)
        n = r["images"]
        print(f"\n{name}: {time.perf_counter() - start:.1f} s")
        print(
            f"  >=1 face {r['detected']}/{n} ({r['detected'] / n:.1%}), exactly one {r['one_face']}/{n} "
            f"({r['one_face'] / n:.1%}), several {r['several']}/{n}"
        )
        print(f"  median box width {r['median_box']} px; CROP = {r['crop']}  # (side, dx, dy) / box width")
    return 0


if __name__ == "__main__":
    sys.exit(main())
