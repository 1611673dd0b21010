"""A small lossy copy of the decoded faces, to carry to a machine without the data: every kept face as
``<original file name>.webp`` beside a manifest (``archive.REENCODED_MANIFEST``) from which the loader gives the copy
the source's identity and says how its pixels came (``UTKFace.encoding``); ``reencoded`` reads it back.

    python -m utils.data.reencode --size 128 --quality 80 --out .carry/utkface-128-webp
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ..base.paths import shown
from .archive import REENCODED_MANIFEST, DatasetNotFound
from .load import UTKFace, load_utkface
from .reencoded import REENCODED_FORMAT, REENCODED_SUFFIX
from .scan import _file_hash

QUALITY = 80
"""WebP quality: UTKFace's 128 px faces in ~38 MiB (``tests/test_reencode.py`` bounds the loss)."""
METHOD = 6  # libwebp's slowest and smallest setting: the time is spent once, here


def encoding_name(quality: int) -> str:
    """The record's name for pixels re-encoded at ``quality`` ('webp-q80')."""
    return f"webp-q{quality}"


def encode_face(image: np.ndarray, quality: int = QUALITY) -> bytes:
    """One face (uint8, S x S x 3) as WebP bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buf, "WEBP", quality=quality, method=METHOD)
    return buf.getvalue()


def _check_out(out: Path) -> None:
    """Refuse to replace a folder that is not an earlier copy (or empty): its files would be lost."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ValueError(f"{out} is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / REENCODED_MANIFEST).is_file():
        raise ValueError(f"{out} holds files but no {REENCODED_MANIFEST}: not a re-encoded copy; choose another --out")


def _manifest(data: UTKFace, quality: int, rows: list[list[str]], total: int) -> dict:
    report = data.report
    return {
        "format": REENCODED_FORMAT,
        "how": f"re-encoded WebP q{quality} from the decoded {data.size} px faces",
        "encoding": encoding_name(quality),
        "kind": data.kind,
        "fingerprint": data.fingerprint,
        "split_id": data.split_id,
        "image_size": data.size,
        "quality": quality,
        "count": len(rows),
        "total_bytes": total,
        "source": {
            "from": shown(report.source),
            "files": report.files,
            "loaded": report.loaded,
            "skipped": sum(report.skipped.values()),
        },
        "columns": ["file", "source_hash", "webp_hash"],
        "files": rows,
    }


def reencode(data: UTKFace, out: Path, quality: int = QUALITY) -> dict:
    """Write every face of ``data`` into ``out`` as ``<file>.webp`` with the manifest; return the manifest.

    The copy is written into a temporary folder beside ``out`` and renamed into place whole, so ``out`` holds the
    earlier copy or the new one, never half of one. Only original pixels are re-encoded (not a copy of a copy).
    """
    if data.encoding != "jpeg":
        raise ValueError(f"these faces are already re-encoded ({data.encoding}); re-encode from the original images")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be a whole number from 1 to 100, got {quality!r}")
    out = Path(out)
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.writing-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        rows, total = [], 0
        for i, (name, source_hash) in enumerate(zip(data.table.file, data.table.hash)):
            blob = encode_face(data.images[i], quality)
            (work / f"{name}{REENCODED_SUFFIX}").write_bytes(blob)
            rows.append([name, source_hash, _file_hash(blob)])
            total += len(blob)
        manifest = _manifest(data, quality, rows, total)
        (work / REENCODED_MANIFEST).write_bytes(gzip.compress(json.dumps(manifest).encode(), mtime=0))
        if out.exists():
            os.rename(out, old)
        os.rename(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Command line: load the real data at ``--size`` and write its re-encoded copy to ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m utils.data.reencode", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="the folder to write (an earlier copy is replaced)")
    parser.add_argument("--size", type=int, default=128, help="side of the faces in pixels (default 128)")
    parser.add_argument("--quality", type=int, default=QUALITY, help=f"WebP quality 1-100 (default {QUALITY})")
    parser.add_argument("--source", help="UTKFace folder or archive (default: $UTKFACE_DIR or data/)")
    args = parser.parse_args(argv)
    try:
        data = load_utkface(args.source, args.size)
        manifest = reencode(data, args.out, args.quality)
    except (DatasetNotFound, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{manifest['count']:,} faces, {manifest['how']}: {manifest['total_bytes'] / 2**20:.1f} MiB in "
        f"{shown(args.out)} (data set {manifest['fingerprint']}, split {manifest['split_id']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
