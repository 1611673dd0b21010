"""Reading a user's photo robustly: any path, PIL image or array -> one upright HxWx3 uint8 RGB array.

``read_image`` applies the EXIF rotation, composites transparency on white, converts greyscale/palette/CMYK/16-bit/
float images and takes the first frame of an animation. Anything that is not a usable image raises ``ImageError``
naming the file and saying what to give instead; nothing is silently skipped. Only a regular file of at most
``MAX_PHOTO_BYTES`` (64 MiB) is opened: a FIFO, a device, a folder, a symlink loop or a bigger file is refused by name,
never waited on. ``read_photo`` does the same but reduces a photo larger than ``DECODE_SIDE`` while decoding it
(libjpeg's 1/2, 1/4, 1/8 for a JPEG, a box-filter ``Image.reduce`` otherwise), so a 9400 x 9400 photo costs tens of
MB, not gigabytes. ``faces`` finds and crops the faces in what these return. ``demo_photo`` is the course's
public-domain demo portrait (scikit-image's astronaut).
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..base import files
from ..base.paths import shown

__all__ = [
    "DECODE_SIDE",
    "HINT",
    "MAX_PHOTO_BYTES",
    "ImageError",
    "as_rgb",
    "demo_photo",
    "demo_photo_path",
    "read_image",
    "read_photo",
]

HINT = "give a JPEG, PNG or WebP photo"

MAX_PHOTO_BYTES = 64 * 2**20
"""The largest photo file opened (64 MiB): a 100-megapixel camera JPEG is 30-50 MB. A bigger file, or one that is not
a regular file (FIFO, device, folder, symlink loop), is refused by name before anything is decoded."""

DECODE_SIDE = 4096
"""``read_photo`` reduces a photo whose longer side exceeds this many pixels by the smallest whole factor that brings it
to at most this, while decoding (JPEG: libjpeg's DCT scaling, as the loader reads UTKFace; other formats: PIL's
box-filter ``reduce``, as ``faces.like_training`` reduces a crop). The decoded photo's longer side then lies in
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


def as_rgb(image: np.ndarray | Image.Image | str | Path) -> np.ndarray:
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


def demo_photo() -> np.ndarray:
    """A public-domain photo with one face: NASA's portrait of astronaut Eileen Collins, shipped with scikit-image."""
    try:
        from skimage import data
    except ImportError:
        raise ImportError(
            "the demo photo comes with scikit-image: pip install scikit-image (or give a photo of your own)"
        ) from None
    return data.astronaut()


def demo_photo_path() -> Path:
    """The demo photo written once as a PNG under build/, for the command line."""
    from PIL import Image

    from ..base.files import atomic_path
    from ..base.paths import BUILD_DIR

    path = BUILD_DIR / "astronaut.png"
    try:
        with Image.open(path) as im:  # a file a killed write left half-done is not reused
            im.verify()
    except (OSError, SyntaxError):
        with atomic_path(path) as tmp:
            Image.fromarray(demo_photo()).save(tmp, format="PNG")
    return path
