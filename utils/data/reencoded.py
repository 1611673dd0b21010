"""Reading a re-encoded folder (written by ``reencode``: ``<original file name>.webp`` beside a gzipped manifest): the
manifest and its fields, the folder's scan as the source's (original names, labels and content hashes, each file checked
against the manifest), and the checks that it loads whole, at its own size, as the data set it came from."""

from __future__ import annotations

import json
import os
import sys
import zlib
from pathlib import Path

import pandas as pd

from ..base import files as safe
from ..base.labels import parse_name
from . import cache
from .archive import REENCODED_MANIFEST
from .scan import IMAGE_LIMIT, SCAN_VERSION, _file_hash

REENCODED_SUFFIX = ".webp"  # a re-encoded face is <original file name>.webp
REENCODED_FORMAT = 1  # bump when the manifest's fields change
MANIFEST_LIMIT = 64 * 2**20  # most bytes of a manifest, gzipped and unpacked (UTKFace's: ~1 MB and ~2.3 MB)
MANIFEST_FIELDS = {
    "format": int,
    "how": str,
    "encoding": str,
    "kind": str,
    "fingerprint": str,
    "split_id": str,
    "image_size": int,
    "quality": int,
    "count": int,
    "total_bytes": int,
    "files": list,
}


class ReencodedMismatch(ValueError):
    """A re-encoded folder whose manifest is unreadable or disagrees with its files; the message says how to fix it."""


def _rewrite_hint(folder: Path) -> str:
    return f"write it again: python -m utils.data.reencode --out {folder}"


def read_reencoded(folder: Path) -> dict | None:
    """The manifest of a re-encoded folder, its fields checked; None when ``folder`` holds none (original images)."""
    path = Path(folder) / REENCODED_MANIFEST
    if not (path.exists() or path.is_symlink()):
        return None
    try:
        unpack = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip
        text = unpack.decompress(safe.read_bytes(path, MANIFEST_LIMIT, "manifest"), MANIFEST_LIMIT)
        if unpack.unconsumed_tail or not unpack.eof:
            raise ValueError(f"not a whole gzip stream of at most {MANIFEST_LIMIT:,} bytes")
        manifest = json.loads(text)
    except (OSError, ValueError, zlib.error) as exc:
        raise ReencodedMismatch(f"manifest {path} cannot be read ({exc}); {_rewrite_hint(folder)}") from exc
    if not isinstance(manifest, dict):
        raise ReencodedMismatch(f"manifest {path} is not a JSON object; {_rewrite_hint(folder)}")
    bad = [k for k, kind in MANIFEST_FIELDS.items() if not isinstance(manifest.get(k), kind)]
    if bad or manifest["format"] != REENCODED_FORMAT:
        raise ReencodedMismatch(
            f"manifest {path} lacks or mistypes {bad or ['format']} (format {manifest.get('format')!r}, this code "
            f"reads {REENCODED_FORMAT}); {_rewrite_hint(folder)}"
        )
    return manifest


def _examples(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def scan_reencoded(folder: Path, manifest: dict) -> tuple[pd.DataFrame, list[str]]:
    """The scan of a re-encoded folder, as ``scan`` gives it for the source: original names, labels from them and the
    source's content hashes (so the data set keeps its identity), with each WebP file's own hash.

    Every file must be one the manifest lists, unchanged (its hash), and every listed file present: otherwise
    ReencodedMismatch names what differs. The manifest itself is the one entry that is not a face.
    """
    folder = Path(folder)
    try:
        listed = {f"{name}{REENCODED_SUFFIX}": (name, src, own) for name, src, own in manifest["files"]}
    except (TypeError, ValueError) as exc:
        raise ReencodedMismatch(f"the manifest of {folder} lists files badly ({exc}); {_rewrite_hint(folder)}") from exc
    present = sorted(e.name for e in os.scandir(folder) if e.name != REENCODED_MANIFEST)
    missing = sorted(set(listed) - set(present))
    extra = sorted(set(present) - set(listed))
    changed, unlabelled, total, rows, hashes = [], [], 0, [], []
    for entry in sorted(set(present) & set(listed), key=lambda e: listed[e][0]):  # in the source's order
        name, src, own = listed[entry]
        try:
            data = safe.read_bytes(folder / entry, IMAGE_LIMIT, "image")
        except OSError:
            changed.append(entry)
            continue
        total += len(data)
        if _file_hash(data) != own:
            changed.append(entry)
            continue
        label, _why = parse_name(name)
        if label is None:
            unlabelled.append(entry)
            continue
        rows.append((name, label.age, label.gender, label.race, src, "", ""))
        hashes.append(own)
    problems = [
        f"{len(names):,} {what} (e.g. {_examples(names)})"
        for names, what in (
            (missing, "listed but missing"),
            (extra, "present but not listed"),
            (changed, "changed or unreadable"),
            (unlabelled, "named without labels"),
        )
        if names
    ]
    if not problems and (manifest["count"] != len(rows) or manifest["total_bytes"] != total):
        problems.append(
            f"{len(rows):,} files of {total:,} bytes where it records {manifest['count']:,} of "
            f"{manifest['total_bytes']:,}"
        )
    if problems:
        raise ReencodedMismatch(
            f"re-encoded folder {folder} disagrees with its manifest: {'; '.join(problems)}; {_rewrite_hint(folder)}"
        )
    columns = ["file", "age", "gender", "race", "hash", "reason", "duplicate_of"]
    return pd.DataFrame(rows, columns=columns), hashes


def reencoded_scan(folder: Path, manifest: dict, size: int, synthetic: bool) -> tuple[pd.DataFrame, str]:
    """A re-encoded folder's scan and content key (of its WebP files), after checking it is loaded as it was written."""
    if size != manifest["image_size"]:
        raise ValueError(
            f"{folder} holds faces re-encoded at {manifest['image_size']} px: load it at that size (another size "
            "would rescale lossy pixels under the source's identity), or load the original images"
        )
    if manifest["kind"] != ("synthetic" if synthetic else "real"):
        raise ReencodedMismatch(
            f"{folder} holds {manifest['kind']} faces: load it with synthetic={manifest['kind'] == 'synthetic'}"
        )
    files, hashes = scan_reencoded(folder, manifest)
    return files, cache.content_key(files.file + REENCODED_SUFFIX, hashes, SCAN_VERSION)


def carried_from(manifest: dict) -> str:
    """A re-encoded folder's line in the report: how, and the source's own count (its skipped files stay counted)."""
    src = manifest.get("source", {})
    if not isinstance(src, dict) or not {"files", "loaded", "skipped"} <= set(src):
        return manifest["how"]
    return (
        f"{manifest['how']} of {src.get('from', 'the source')} ({src['files']:,} files there: "
        f"{src['loaded']:,} loaded, {src['skipped']:,} skipped)"
    )


def check_identity(folder: Path, manifest: dict, fingerprint: str, split: str, files: pd.DataFrame) -> None:
    """A re-encoded folder must load whole, as the data set it came from; a changed split file is only noted."""
    if fingerprint != manifest["fingerprint"]:
        bad = list(files.file[files.reason != ""][:3])
        raise ReencodedMismatch(
            f"{folder} loaded as data set {fingerprint}, not {manifest['fingerprint']} as written: "
            f"{int((files.reason != '').sum()):,} face(s) could not be decoded (e.g. {bad}); "
            f"write it again: python -m utils.data.reencode --out {folder}"
        )
    if split != manifest["split_id"]:
        print(
            f"note: {folder} was re-encoded under split {manifest['split_id']}; the split file now gives {split}",
            file=sys.stderr,
        )
