"""Any user photo -> UTKFace-like face crops: read it robustly, find the faces, crop each as UTKFace does.

The course's models were trained on UTKFace's "Aligned & Cropped Faces": 200x200 JPEGs with the face always in the same
place and at the same scale. A model shown a holiday photo, or a face cropped tighter or looser than that, is shown
something it never saw, so predictions on user photos go through three steps here:

* ``read_image`` turns whatever the user gives (a path, a PIL image, an array) into one HxWx3 uint8 RGB array:
  EXIF rotation applied, transparency composited on white, greyscale/palette/CMYK/16-bit/float images converted, the
  first frame of an animation taken. Anything that is not a usable image raises ``ImageError`` naming the file and
  saying what to give instead; nothing is silently skipped. Only a regular file of at most ``MAX_PHOTO_BYTES`` (64 MiB)
  is opened: a FIFO, a device, a folder, a symlink loop or a bigger file is refused by name, never waited on.
  ``read_photo`` does the same but reduces a photo larger than ``DECODE_SIDE`` while decoding it (libjpeg's 1/2, 1/4,
  1/8 for a JPEG, a box-filter ``Image.reduce`` otherwise), so a 9400 x 9400 photo costs tens of MB, not gigabytes.
* ``detect_faces`` finds frontal faces with OpenCV's bundled Haar cascade (works offline, no model download).
  Of the two frontal cascades compared on 1,000 real UTKFace crops
  (``python -m utils.use.faces calibrate --cascade both``), ``haarcascade_frontalface_alt2.xml`` is used: it found
  a face in more of them (98.0 % against 97.0 %), never two in one crop, and is as fast; see ``CASCADE``.
* ``utk_crop`` cuts a square around each detected face, centred and scaled by ``CROP`` so that the face sits where it
  sits in UTKFace's crops. ``CROP`` is not a guess: ``calibrate`` runs the same detector on real UTKFace crops and
  measures where the detector's box lies in them (``python -m utils.use.faces calibrate``).

Choices: where the square leaves the photo it is padded by *edge replication* (reflection would mirror half a face or
an extra eye into the crop, which a model could read as a feature); it is resized with PIL's LANCZOS filter (sharp
when enlarging, anti-aliased when shrinking). Haar cascades find frontal, upright faces only: a profile, a strongly
tilted head or a face under ``min_size`` pixels is not found, and occasionally a face-like texture is.
"""

from __future__ import annotations

import argparse
import functools
import io
import random
import re
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..base import files
from ..base.paths import DATA_DIR, shown

if TYPE_CHECKING:
    import cv2  # imported where used: reading images needs only PIL

__all__ = [
    "CASCADE",
    "CROP",
    "DECODE_SIDE",
    "MAX_PHOTO_BYTES",
    "Box",
    "ImageError",
    "calibrate",
    "detect_faces",
    "read_image",
    "read_photo",
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

SCALE_FACTOR, MIN_NEIGHBOURS = 1.1, 5  # OpenCV's usual settings: 10 % steps between scales, 5 overlapping hits
OVERLAP = 0.5  # two boxes are one face when their intersection covers this share of the smaller one
HINT = "give a JPEG, PNG or WebP photo"

MAX_PHOTO_BYTES = 64 * 2**20
"""The largest photo file opened (64 MiB): a 100-megapixel camera JPEG is 30-50 MB. A bigger file, or one that is not
a regular file (FIFO, device, folder, symlink loop), is refused by name before anything is decoded."""

DECODE_SIDE = 4096
"""``read_photo`` reduces a photo whose longer side exceeds this many pixels by the smallest whole factor that brings it
to at most this, while decoding (JPEG: libjpeg's DCT scaling, as the loader reads UTKFace; other formats: PIL's
box-filter ``reduce``, as ``predict.like_training`` reduces a crop). The decoded photo's longer side then lies in
(2048, 4096]: more than the 1600 px ``detect_faces`` searches at, so the same faces are found, and its RGB array is at
most 48 MiB."""

ORIENTATION = 0x0112  # the EXIF tag saying how to turn a stored image upright
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}  # as ImageOps.exif_transpose turns them


class ImageError(ValueError):
    """A file or array that is not a usable image; the message names it and says what to give instead."""


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


# ----------------------------------------------------------------------------------------- reading


def _name(source: object) -> str:
    if isinstance(source, (str, Path)):
        try:
            return shown(source)
        except (RuntimeError, OSError):  # a symlink loop cannot be resolved: show the path as given
            return str(source)
    if isinstance(source, np.ndarray):
        return f"array of shape {source.shape} and dtype {source.dtype}"
    return f"PIL image ({getattr(source, 'mode', '?')}, {getattr(source, 'size', '?')})"


def _from_array(a: np.ndarray, name: str) -> np.ndarray:
    """HxW, HxWx1/3/4 arrays of uint8, or of floats in [0, 1] -> HxWx3 uint8 RGB (alpha composited on white)."""
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"{name}: not an image array; give HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA)")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"{name}: the image has no pixels; {HINT}")
    if a.dtype == np.uint8:  # in integers: no float copy of a big photo (the same values as the float path)
        if a.ndim == 2:
            return np.repeat(a[:, :, None], 3, axis=2)
        if a.shape[2] == 3:
            return np.array(a, order="C", copy=True)
        out = np.empty((*a.shape[:2], 3), np.uint8)
        for r in range(0, a.shape[0], 256):  # composite on white, rounded, a band of rows at a time
            rgb, alpha = a[r : r + 256, :, :3].astype(np.uint32), a[r : r + 256, :, 3:].astype(np.uint32)
            out[r : r + 256] = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
        return out
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ImageError(
                f"{name}: float pixels must lie in [0, 1] (found {np.nanmin(a):.3g}..{np.nanmax(a):.3g}, "
                "or NaN/inf); divide by 255, or give uint8"
            )
        f = a.astype(np.float32)
    else:
        raise ImageError(f"{name}: pixels must be uint8 (0..255) or float in [0, 1]; convert with .astype")
    if f.ndim == 2:
        f = np.repeat(f[:, :, None], 3, axis=2)
    elif f.shape[2] == 4:
        alpha = f[:, :, 3:]
        f = f[:, :, :3] * alpha + (1.0 - alpha)  # composite on white
    return np.ascontiguousarray(np.clip(np.rint(f * 255.0), 0, 255).astype(np.uint8))


def _from_pil(im: Image.Image, name: str) -> np.ndarray:
    """Any PIL mode -> HxWx3 uint8 RGB: alpha composited on white, wide modes rescaled by the image's own range."""
    if im.width == 0 or im.height == 0:
        raise ImageError(f"{name}: the image has no pixels; {HINT}")
    mode = im.mode
    if mode in ("RGB", "L", "1", "CMYK", "YCbCr", "LAB", "HSV") or (mode == "P" and "transparency" not in im.info):
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    if mode in ("RGBA", "LA", "PA", "P", "La", "RGBa", "RGBX"):
        return _from_array(np.asarray(im.convert("RGBA")), name)
    if mode.startswith("I") or mode == "F":  # I;16, I;16B, I;16L, I (32-bit), F (32-bit float)
        a = np.nan_to_num(np.asarray(im, dtype=np.float64))
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)  # a flat image becomes black
        return _from_array(a.astype(np.float32), name)
    try:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (ValueError, OSError) as exc:
        raise ImageError(f"{name}: PIL cannot convert mode {mode!r} to RGB ({exc}); {HINT}") from exc


def _photo_bytes(path: Path, name: str) -> bytes:
    """The bytes of a photo file: a regular file of 1 byte to ``MAX_PHOTO_BYTES``; otherwise ImageError saying why."""
    try:
        st = files.check_regular(path, None, "photo")
    except FileNotFoundError as exc:
        raise ImageError(f"{name}: no such file; check the path ({HINT})") from exc
    except files.UnsafeFile as exc:
        if path.is_dir():
            raise ImageError(f"{name}: is a folder, not an image file; give one photo inside it ({HINT})") from exc
        found = re.search(r" is (a symlink loop|a FIFO|not a regular file)", str(exc))
        kind = found.group(1) if found else "not a regular file"
        kind = "not a regular file (a device, socket or FIFO)" if kind == "not a regular file" else kind
        raise ImageError(f"{name}: {kind}, so it is not read; {HINT} (a regular file)") from exc
    except OSError as exc:
        raise ImageError(f"{name}: cannot be read ({exc.strerror or exc}); check its permissions ({HINT})") from exc
    if st.st_size == 0:
        raise ImageError(f"{name}: empty file (0 bytes); {HINT}")
    if st.st_size > MAX_PHOTO_BYTES:
        raise ImageError(
            f"{name}: {st.st_size:,} bytes, more than the {MAX_PHOTO_BYTES:,} ({MAX_PHOTO_BYTES / 2**20:g} "
            "MiB) a photo may have; give a smaller photo (save it as JPEG, or resize it first)"
        )
    try:
        return files.read_bytes(path, MAX_PHOTO_BYTES, "photo")
    except OSError as exc:  # it changed between the check and the read
        raise ImageError(f"{name}: cannot be read ({exc}); {HINT}") from exc


def _reduced(im: Image.Image, max_side: int | None) -> Image.Image:
    """``im`` reduced by the smallest whole factor that brings its longer side to at most ``max_side`` (a box
    filter)."""
    factor = -(-max(im.size) // max_side) if max_side else 1
    if factor <= 1:
        return im
    if im.mode in ("1", "P", "PA") or im.mode.startswith("I;16"):  # modes reduce cannot average (palette indices)
        im = im.convert(
            "L"
            if im.mode == "1"
            else "I"
            if im.mode.startswith("I")
            else "RGBA"
            if im.mode == "PA" or "transparency" in im.info
            else "RGB"
        )
    return im.reduce(factor)


def _upright(
    im: Image.Image, full: tuple[int, int], max_side: int | None, name: str
) -> tuple[np.ndarray, tuple[float, float]]:
    """Reduced to ``max_side``, turned upright per EXIF, as RGB; and the scale (x, y) back to the ``full``-size
    photo."""
    small = _reduced(im, max_side)
    before = small.size
    small = ImageOps.exif_transpose(small)
    if small.size != before:  # turned by 90 degrees: the original's upright size is the stored one swapped
        full = full[::-1]
    rgb = _from_pil(small, name)
    return rgb, (full[0] / rgb.shape[1], full[1] / rgb.shape[0])


def _open(path: Path, max_side: int | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    name = _name(path)
    data = _photo_bytes(path, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                im.seek(0)  # animations (GIF, WebP, APNG): the first frame
                full = im.size
                if max_side and im.format == "JPEG" and max(full) > max_side:
                    factor = -(-max(full) // max_side)  # libjpeg decodes at 1/2, 1/4 or 1/8, never below this size
                    im.draft(None, (-(-full[0] // factor), -(-full[1] // factor)))
                im.load()  # decode now, so a truncated or corrupt file fails here, inside this try
                return _upright(im, full, max_side, name)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise ImageError(
            f"{name}: {pixels}, over PIL's decompression-bomb limit of {Image.MAX_IMAGE_PIXELS:,}; "
            "give a smaller photo (resize it first)"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name}: not an image file PIL can read ({exc}); {HINT}") from exc
    except ImageError:
        raise
    except MemoryError as exc:
        raise ImageError(
            f"{name}: too big to decode in this machine's memory; give a smaller photo (resize it first)"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:  # what PIL's decoders raise on bad data
        raise ImageError(
            f"{name}: truncated or corrupt image ({type(exc).__name__}: {exc}); download or export it again ({HINT})"
        ) from exc


def read_image(source: str | Path | np.ndarray | Image.Image) -> np.ndarray:
    """Any photo (path, PIL image or array) as an HxWx3 uint8 RGB array, upright per EXIF, alpha composited on white."""
    if isinstance(source, (str, Path)):
        return _open(Path(source))[0]
    if isinstance(source, np.ndarray):
        return _from_array(source, _name(source))
    if isinstance(source, Image.Image):
        return _from_pil(ImageOps.exif_transpose(source), _name(source))
    raise ImageError(f"{type(source).__name__}: not an image; give a file path, a PIL image or a numpy array")


def read_photo(
    source: str | Path | np.ndarray | Image.Image, max_side: int | None = None
) -> tuple[np.ndarray, tuple[float, float]]:
    """``read_image`` for predicting: a file or PIL image whose longer side exceeds ``max_side`` (default
    ``DECODE_SIDE``) is reduced while decoding, and the scale (x, y) from the returned array's pixels to the original
    upright photo's pixels comes with it (1.0, 1.0 when nothing was reduced; arrays are never reduced, they are already
    in memory)."""
    side = DECODE_SIDE if max_side is None else max_side
    if isinstance(source, (str, Path)):
        return _open(Path(source), side)
    if isinstance(source, Image.Image):
        if source.width == 0 or source.height == 0:
            raise ImageError(f"{_name(source)}: the image has no pixels; {HINT}")
        return _upright(source, source.size, side, _name(source))
    return read_image(source), (1.0, 1.0)


def _rgb(image: np.ndarray | Image.Image | str | Path) -> np.ndarray:
    """``image`` itself when it already is HxWx3 uint8 (a photo read once is not converted again),
    else ``read_image``."""
    if (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.size
        and image.flags.c_contiguous
    ):
        return image
    return read_image(image)


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

    rgb = _rgb(image)
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
    rgb = _rgb(image)
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
