"""Loading UTKFace: the scan and the decoded images cached by content, the split, and the load report."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..base import files as safe
from ..base.labels import parse_name
from ..base.paths import CACHE_DIR, SPLITS_DIR, shown
from . import cache
from .archive import HOW_TO_GET, DatasetNotFound, locate
from .decode import DECODE_VERSION, check_size, check_workers, decode_images
from .reencoded import REENCODED_SUFFIX, carried_from, check_identity, read_reencoded, reencoded_scan
from .scan import SCAN_VERSION, _key_hashes, duplicate_groups, scan
from .splits import load_split, split_id

SPLITS = ("train", "val", "test")


@dataclass
class LoadReport:
    """What happened while loading: every file is either loaded or skipped with a reason."""

    source: str
    folder: str
    files: int
    loaded: int
    skipped: dict[str, int]
    duplicate_groups: int
    split: dict[str, int]
    cache: str
    seconds: float
    from_cache: bool
    converted: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)  # groups of byte-identical images by outcome
    reencoded: str = ""  # how a re-encoded folder's pixels came (its manifest's "how"), "" for original images

    def as_json(self) -> str:
        """The machine-readable one-line summary (keys: files, loaded, skipped, duplicate_groups, split, cache,
        seconds)."""
        keys = ("files", "loaded", "skipped", "duplicate_groups", "split", "cache", "seconds")
        return json.dumps({k: getattr(self, k) for k in keys})

    def __str__(self) -> str:
        lines = [
            f"UTKFace from {shown(self.source)}",
            f"  image folder     {shown(self.folder)}",
            f"  files seen       {self.files:,}",
            f"  loaded           {self.loaded:,}",
            f"  skipped          {sum(self.skipped.values()):,}",
        ]
        lines += [f"    {n:>6,}  {reason}" for reason, n in sorted(self.skipped.items(), key=lambda kv: -kv[1])]
        lines += [f"  converted to RGB {n:>6,}  from {mode}" for mode, n in self.converted.items()]
        lines += [
            f"  duplicate groups {self.duplicate_groups:,} (byte-identical images)"
            + "".join(
                f"\n    {n:>6,}  {action}" for action, n in sorted(self.duplicates.items(), key=lambda kv: -kv[1])
            ),
            "  split            " + ", ".join(f"{k} {v:,}" for k, v in self.split.items()),
            f"  cache            {shown(self.cache)} ({'reused' if self.from_cache else 'written'})",
            f"  seconds          {self.seconds:.2f}",
        ]
        if self.reencoded:
            lines.insert(2, f"  pixels           {self.reencoded}")
        return "\n".join(lines)


@dataclass
class UTKFace:
    """Decoded faces (uint8, N x S x S x 3) with one table row per image: labels, hash and split."""

    images: np.ndarray
    table: pd.DataFrame
    files: pd.DataFrame  # every file seen, with the reason for each one skipped
    report: LoadReport
    size: int
    synthetic: bool
    fingerprint: str
    split_id: str
    encoding: str = "jpeg"  # how the pixels came: the original files, or re-encoded ("webp-q80": utils.data.reencode)

    def indices(self, split: str) -> np.ndarray:
        """Row indices of ``split`` ('train', 'val' or 'test') into ``images`` and ``table``."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return np.flatnonzero(self.table.split.to_numpy() == split)

    @property
    def kind(self) -> str:
        """'synthetic' or 'real', for labelling every table and plot."""
        return "synthetic" if self.synthetic else "real"


MANIFEST_DTYPES = {"file": str, "hash": str, "reason": str, "duplicate_of": str}
MANIFEST_COLUMNS = ["file", "age", "gender", "race", "hash", "reason", "duplicate_of"]


def _label_mismatches(files: pd.DataFrame) -> list[str]:
    """Files of the scan whose labels are not the ones their names give (or loaded without labels)."""
    wrong = []
    for name, age, gender, race, reason in zip(files.file, files.age, files.gender, files.race, files.reason):
        if age < 0 and gender < 0 and race < 0 and reason != "":
            continue  # skipped without labels (a bad name, not a .jpg, not a regular file): nothing to compare
        label, _why = parse_name(name)
        if label is None or (label.age, label.gender, label.race) != (age, gender, race):
            wrong.append(name)
    return wrong


def _read_manifest(path: Path) -> pd.DataFrame | None:
    """The cached scan ``files.csv``, checked against its record (``files.json``: bytes and checksum) and against the
    labels its file names give; None when there is none with a record (never completed, or an older cache: scanned
    again without alarm). Raises cache.CacheDamaged, naming it, when it was edited or damaged."""
    data = cache.read_recorded(path)
    if data is None:
        return None
    try:
        files = pd.read_csv(io.BytesIO(data), keep_default_na=False, dtype=MANIFEST_DTYPES)
        if list(files.columns) != MANIFEST_COLUMNS:
            raise ValueError(f"columns {list(files.columns)}")
        files[["age", "gender", "race"]] = files[["age", "gender", "race"]].astype(np.int64)
    except (ValueError, TypeError) as exc:
        raise cache.CacheDamaged(f"cache {path} cannot be read as the scan ({exc})") from exc
    wrong = _label_mismatches(files)
    if wrong:
        raise cache.CacheDamaged(
            f"cache {path} gives {len(wrong):,} file(s) other labels than their names (e.g. {wrong[0]})"
        )
    return files


def _checked_manifest(path: Path, verbose: bool) -> pd.DataFrame | None:
    """``_read_manifest``, or None after a warning naming it when it is damaged (checked again under its lock first:
    a writer may be between the table and its record)."""
    try:
        return _read_manifest(path)
    except cache.CacheDamaged:
        pass
    with cache.locked(path, verbose):
        try:
            return _read_manifest(path)
        except cache.CacheDamaged as exc:
            print(f"warning: {exc}; rebuilding it", file=sys.stderr)
            return None


def _scan_key(files: pd.DataFrame) -> str:
    return cache.content_key(files.file, _key_hashes(files), SCAN_VERSION)


def _scan_cached(folder: Path, root: Path, verbose: bool) -> tuple[pd.DataFrame, str]:
    """The scan of ``folder`` and its content key: reused while no entry's name, type, size, mtime or ctime moved,
    and while the cached scan matches its record and the labels of its names (a damaged one is named and rebuilt).

    When any of them moved, every file is hashed again; content that did not change still finds its cache.
    """
    skey = cache.stat_key(folder)
    ckey = cache.read_index(root, skey)
    if ckey is not None:
        files = _checked_manifest(root / ckey / "files.csv", verbose)
        if files is not None and _scan_key(files) == ckey:
            return files, ckey
    files = scan(folder)
    ckey = _scan_key(files)
    manifest = root / ckey / "files.csv"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    data = files.to_csv(index=False).encode()
    with cache.locked(manifest, verbose):
        try:
            saved = cache.read_recorded(manifest)
        except cache.CacheDamaged:
            saved = None
        if saved != data:
            cache.write_recorded(manifest, data)  # files.csv, then files.json: both atomic, the record last
    if cache.stat_key(folder) == skey:  # nothing changed while hashing
        cache.write_index(root, skey, ckey)
    return files, ckey


def _decode_to_cache(
    folder: Path,
    names: pd.Series,
    size: int,
    npy: Path,
    decode_csv: Path,
    meta: Path,
    workers: int | None,
    suffix: str = "",
) -> None:
    """Decode the images into ``npy`` (unreadable ones compacted away), write the decode table, then the record.

    Each is written through ``utils.base.files.atomic_path`` (a temporary file beside it, fsynced, renamed), the record
    last: a half-written array or table is never in place, and never trusted without its record.
    """
    compact = cache.tmp_name(npy)
    try:
        with safe.atomic_path(npy) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(names), size, size, 3))
            cache.preallocate(tmp)
            notes, ok = decode_images([folder / f"{f}{suffix}" for f in names], size, out, workers)
            out.flush()
            decode = pd.DataFrame({"file": names, "note": notes, "ok": ok})
            if not all(ok):  # compact away unreadable images so rows match the table
                keep = np.flatnonzero(decode.ok.to_numpy())
                small = np.lib.format.open_memmap(compact, mode="w+", dtype=np.uint8, shape=(len(keep), size, size, 3))
                cache.preallocate(compact)
                for i in range(0, len(keep), 1024):
                    small[i : i + 1024] = out[keep[i : i + 1024]]
                small.flush()
                del small
                os.replace(compact, tmp)
            del out
        cache.write_atomic(decode_csv, lambda t: decode.to_csv(t, index=False))
        record = cache.record(npy, decode_csv)
        cache.write_atomic(meta, lambda t: t.write_text(json.dumps(record) + "\n"))
    except OSError as exc:
        raise cache._disk_error(exc, npy) from exc
    finally:
        compact.unlink(missing_ok=True)


def _read_decode(decode_csv: Path) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(safe.read_bytes(decode_csv, cache.TABLE_LIMIT, "cache")), keep_default_na=False)


def _cached_images(
    folder: Path, names: pd.Series, size: int, cache_root: Path, workers: int | None, verbose: bool, suffix: str = ""
) -> tuple[np.ndarray, pd.DataFrame, bool, Path]:
    """The decoded images and decode table from a checked cache, or decoded now (under the cache's lock); each file is
    ``folder / (name + suffix)`` (a re-encoded folder's ``.webp``)."""
    npy = cache_root / f"images-{size}px-v{DECODE_VERSION}.npy"
    decode_csv = cache_root / f"decode-{size}px-v{DECODE_VERSION}.csv"
    meta = cache_root / f"images-{size}px-v{DECODE_VERSION}.json"
    with cache.locked(npy, verbose, also=(decode_csv, meta)):
        try:
            images = cache.open_checked(npy, decode_csv, meta)
        except cache.CacheDamaged as exc:
            print(f"warning: {exc}; rebuilding it", file=sys.stderr)
            images = None
        if images is not None:
            decode = _read_decode(decode_csv)
            if len(decode) == len(names) and (decode.file.to_numpy() == names.to_numpy()).all():
                return images, decode, True, npy
            print(f"warning: cache {decode_csv} lists other files than {folder}; rebuilding it", file=sys.stderr)
        meta.unlink(missing_ok=True)  # from here until the new record, the old files are not trusted
        _decode_to_cache(folder, names, size, npy, decode_csv, meta, workers, suffix)
        images = np.load(npy, mmap_mode="r")
        return images, _read_decode(decode_csv), False, npy


def load_utkface(
    source: str | Path | None = None,
    size: int = 128,
    *,
    synthetic: bool = False,
    cache_dir: Path | None = None,
    split_file: Path | None | str = "auto",
    split_seed: int = 0,
    workers: int | None = None,
    extract_to: Path | None = None,
    verbose: bool = True,
) -> UTKFace:
    """Load UTKFace (or a synthetic set written in its format) as uint8 arrays, with a split and a full report.

    A folder re-encoded by ``utils.data.reencode`` loads as the data set it came from (same fingerprint and split
    id), at the size it was written at, checked against its manifest; ``UTKFace.encoding`` then says so.
    """
    t0 = time.perf_counter()
    check_size(size)
    check_workers(workers)
    folder = locate(source, extract_to)
    root = Path(cache_dir or CACHE_DIR)
    manifest = read_reencoded(folder)
    if manifest is None:
        files, ckey = _scan_cached(folder, root, verbose)
    else:
        files, ckey = reencoded_scan(folder, manifest, size, synthetic)
    cache_root = root / ckey
    candidates = files[files.reason == ""].reset_index(drop=True)
    images, decode, from_cache, image_cache = _cached_images(
        folder, candidates.file, size, cache_root, workers, verbose, "" if manifest is None else REENCODED_SUFFIX
    )

    bad = decode[~decode.ok.astype(bool)]
    if len(bad):
        idx = files.file.isin(bad.file)
        files.loc[idx, "reason"] = files.loc[idx, "file"].map(dict(zip(bad.file, bad.note)))
    table = files[files.reason == ""].drop(columns=["reason", "duplicate_of"]).reset_index(drop=True)
    if len(table) != len(images):
        raise RuntimeError(
            f"cache {image_cache} has {len(images)} images but {len(table)} are expected; "
            f"delete {cache_root} and reload"
        )
    if len(table) == 0:
        raise DatasetNotFound(f"none of the {len(files)} files in {folder} could be loaded.\n{HOW_TO_GET}")

    fingerprint = hashlib.blake2b("".join(sorted(table.hash)).encode(), digest_size=6).hexdigest()
    if split_file == "auto":
        split_file = cache_root / "split.csv" if synthetic else SPLITS_DIR / "utkface.csv"
    split = load_split(table, Path(split_file) if split_file else None, split_seed, fingerprint, cache_root, verbose)
    table["split"] = split.to_numpy()
    if manifest is not None:
        check_identity(folder, manifest, fingerprint, split_id(table), files)

    skipped = files.reason[files.reason != ""]
    converted = Counter(n.removeprefix("converted from ") for n in decode.note if n.startswith("converted"))
    groups = duplicate_groups(files)
    report = LoadReport(
        source=str(source or os.environ.get("UTKFACE_DIR") or folder),
        folder=str(folder),
        files=len(files),
        loaded=len(table),
        skipped=dict(Counter(skipped)),
        duplicate_groups=int(len(groups)),
        split={s: int((table.split == s).sum()) for s in SPLITS},
        cache=str(image_cache),
        seconds=round(time.perf_counter() - t0, 3),
        from_cache=from_cache,
        converted=dict(converted),
        duplicates=dict(Counter(groups.action)),
        reencoded="" if manifest is None else carried_from(manifest),
    )
    assert report.loaded + sum(report.skipped.values()) == report.files
    encoding = "jpeg" if manifest is None else manifest["encoding"]
    ds = UTKFace(images, table, files, report, size, synthetic, fingerprint, split_id(table), encoding)
    if verbose:
        print(report)
    return ds


def prune_caches(
    keep: list[UTKFace] | tuple[UTKFace, ...] = (), cache_dir: Path | None = None
) -> list[tuple[Path, int]]:
    """Delete the cache folders (all image sizes) of data sets other than ``keep``; return (folder, bytes) removed.

    Folders a loader is writing into right now are left alone.
    """
    root = Path(cache_dir or CACHE_DIR)
    return cache.prune(root, [Path(ds.report.cache).parent.name for ds in keep])
