"""UTKFace on disk: find it, unpack it, account for every file, decode in parallel, cache, split.

Run ``python -m utils.data --source PATH --size 128`` for a summary of what was loaded and skipped, and
``python -m utils.data --prune`` to delete cache folders that the data set loaded now does not use.
The cache itself (locking, checking, pruning) lives in ``utils.cache``, the splits in ``utils.splits``.
"""

from __future__ import annotations

import argparse
import errno
import glob
import gzip
import hashlib
import io
import json
import math
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import stat
import sys
import tarfile
import threading
import time
import zipfile
import zlib
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from . import cache
from . import files as safe
from .labels import parse_name
from .paths import CACHE_DIR, DATA_DIR, SPLITS_DIR, shown
from .splits import SplitFileError, load_split, make_split, split_id

__all__ = [
    "DatasetNotFound",
    "IncompleteArchive",
    "LoadReport",
    "SplitFileError",
    "UTKFace",
    "UnsafeArchive",
    "decode_images",
    "download_kaggle",
    "duplicate_groups",
    "extract_archive",
    "find_image_folder",
    "irregular_names",
    "load_utkface",
    "locate",
    "make_split",
    "prune_caches",
    "scan",
    "split_id",
]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
IMAGE_SUFFIXES = (".jpg", ".jpeg")
PREFERRED_FOLDERS = ("utkface", "crop_part1")  # Kaggle's jangedoo/utkface-new ships both; UTKFace is the whole set
SPLITS = ("train", "val", "test")
DECODE_VERSION = 1  # bump when decoding or resizing changes, so old caches are not reused
SCAN_VERSION = 2  # bump when the scan's rules (names, duplicates, reasons) change, so old manifests are not reused
CHUNK = 128  # most images one decode task holds
IMAGE_LIMIT = 16 * 2**20  # most bytes of one image read (UTKFace's are ~10 KB): a larger file is skipped, never read
ARCHIVE_MEMBER_LIMIT = 64 * 2**20  # most bytes of one archive member: a larger one refuses the whole archive
ARCHIVE_TOTAL_LIMIT = 4 * 2**30  # most bytes an archive may unpack to (the Kaggle zip unpacks to under 1 GB)
ARCHIVE_RATIO_LIMIT = 10  # ... and at most this many times its own size (JPEGs barely compress: UTKFace's is ~1.1)
EXTRACTED = ".extracted"  # under data/: one folder per archive content, <archive name>-<sha256 prefix>
MIN_SIZE, MAX_SIZE = 8, 512
DELAY_ENV = "UTKFACE_DECODE_DELAY_S"  # tests only: seconds each decode task sleeps, to make races reproducible

HOW_TO_GET = """\
How to get UTKFace ("Aligned & Cropped Faces", 23,708 JPEGs):
  * Kaggle: `kaggle datasets download -d jangedoo/utkface-new` (or the web page), or
  * the official page https://susanqq.github.io/UTKFace/ (UTKFace.tar.gz).
Then pass the archive or folder with --source / load_utkface(source=...), set UTKFACE_DIR,
or drop it into data/ (a folder, .tar.gz, .tgz or .zip). Without it the course runs on synthetic faces."""


class DatasetNotFound(FileNotFoundError):
    """Raised when no UTKFace images can be found; the message says how to get them."""


class IncompleteArchive(DatasetNotFound):
    """Raised when an archive cannot be read to its end (a truncated download, or not an archive at all)."""


class UnsafeArchive(ValueError):
    """Raised when an archive is refused before it is unpacked: members too large, escaping, links or devices."""


# ----------------------------------------------------------------------------------------- finding


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _safe_target(dest: Path, member: str) -> Path:
    target = (dest / member).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise UnsafeArchive(f"archive member {member!r} would be written outside {dest}; refusing to extract")
    return target


_UNREADABLE = (tarfile.ReadError, tarfile.CompressionError, EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile)


class _Budget:
    """The bytes an archive may still unpack to: ARCHIVE_MEMBER_LIMIT per member, and in all the smaller of
    ARCHIVE_TOTAL_LIMIT and ARCHIVE_RATIO_LIMIT times the archive's size (at least one member's cap)."""

    def __init__(self, archive: Path, archive_bytes: int):
        self.archive = archive
        self.archive_bytes = archive_bytes
        self.allowed = min(ARCHIVE_TOTAL_LIMIT, max(ARCHIVE_RATIO_LIMIT * archive_bytes, ARCHIVE_MEMBER_LIMIT))
        self.total = 0

    def member(self, name: str, size: int) -> None:
        if size > ARCHIVE_MEMBER_LIMIT:
            raise UnsafeArchive(
                f"archive member {name!r} in {self.archive} is {size:,} bytes, more than the {ARCHIVE_MEMBER_LIMIT:,} "
                f"allowed for one member (a UTKFace image is ~10 KB): refusing to extract {self.archive.name}; it is "
                f"not the UTKFace download, get it again.\n{HOW_TO_GET}"
            )
        self.total += size
        if self.total > self.allowed:
            raise UnsafeArchive(
                f"archive {self.archive} unpacks to more than {self.allowed:,} bytes "
                f"(the cap is {ARCHIVE_RATIO_LIMIT}x its {self.archive_bytes:,} bytes, "
                f"at most {ARCHIVE_TOTAL_LIMIT:,}): refusing to extract it; it is "
                f"not the UTKFace download, get it again.\n{HOW_TO_GET}"
            )


def _copy_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """Copy one member, counting: never more bytes than its header declared (nor than one member's cap)."""
    cap = min(info.file_size, ARCHIVE_MEMBER_LIMIT)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as src, open(target, "xb") as dst:  # checks the member's CRC at its end
        while chunk := src.read(2**20):
            written += len(chunk)
            if written > cap:
                raise UnsafeArchive(
                    f"archive member {info.filename!r} in {zf.filename} holds more than the {cap:,} "
                    "bytes its header declares: refusing to extract it"
                )
            dst.write(chunk)


def _extract_into(archive: Path, work: Path, archive_bytes: int) -> None:
    """Extract every member of ``archive`` into the empty folder ``work``, refusing the whole archive when a member
    escapes it, is a link or a device, or the members are larger than the caps (``_Budget``), before writing them."""
    budget = _Budget(archive, archive_bytes)
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                for info in infos:  # the central directory first: nothing is written when one member is refused
                    _safe_target(work, info.filename)
                    if stat.S_ISLNK(info.external_attr >> 16):
                        raise UnsafeArchive(
                            f"archive member {info.filename!r} in {archive} is a link; refusing to extract"
                        )
                    budget.member(info.filename, info.file_size)
                for info in infos:
                    target = _safe_target(work, info.filename)
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                    else:
                        _copy_zip_member(zf, info, target)
        else:
            with tarfile.open(archive) as tf:
                for m in tf:  # member by member, as the stream is read: a huge one is refused on its header
                    _safe_target(work, m.name)
                    if not (m.isreg() or m.isdir()) or m.issparse():
                        raise UnsafeArchive(
                            f"archive member {m.name!r} in {archive} is a link, a device or sparse; refusing to extract"
                        )
                    budget.member(m.name, m.size)
                    tf.extract(m, work, filter="data")
    except _UNREADABLE as exc:
        raise IncompleteArchive(
            f"incomplete archive {archive}: download it again ({type(exc).__name__}: {exc}); "
            f"it cannot be read to its end.\n{HOW_TO_GET}"
        ) from exc


def archive_digest(archive: Path) -> str:
    """The SHA-256 of an archive's bytes (a regular file only): ~0.1 s for the 106 MB UTKFace.tar.gz."""
    safe.check_regular(archive, None, "archive")
    h = hashlib.sha256()
    fd = os.open(archive, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise safe.UnsafeFile(f"archive {archive} changed into something that is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            while chunk := f.read(2**20):
                h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


def _stat_id(st: os.stat_result) -> tuple[int, ...]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _flush_to_disk() -> None:
    """Put the extracted files on disk before their folder is renamed into place (one sync, not an fsync per file)."""
    if hasattr(os, "sync"):
        os.sync()


def extract_archive(archive: Path, dest: Path | None = None) -> Path:
    """Extract a .tar.gz/.tgz/.tar/.zip once per content; return the folder it was extracted into.

    The folder is ``dest/.extracted/<archive name>-<first 16 hex digits of its SHA-256>`` (``dest`` defaults to
    data/): an archive replaced by another, even of the same name, size and mtime, is extracted again, into a fresh
    empty folder, never merged into the old one. Members go to a private temporary folder first, which is renamed to
    that name (one atomic step) only when the whole archive was read and checked (``_extract_into``); so a failed or
    killed extraction is never taken as done. Older extractions of an archive of the same name are removed then.
    """
    archive = Path(archive)
    dest = Path(dest or DATA_DIR)
    before = safe.check_regular(archive, None, "archive")
    digest = archive_digest(archive)
    root = dest / EXTRACTED
    final = root / f"{archive.name}-{digest[:16]}"
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with cache.locked(final):
        if final.is_dir():  # another process extracted it while this one waited
            return final
        name = glob.escape(archive.name)
        for stale in root.glob(f".extracting-{name}-*"):  # left by a killed extraction (all under this lock's name)
            shutil.rmtree(stale, ignore_errors=True)
        work = root / f".extracting-{archive.name}-{os.getpid()}-{secrets.token_hex(3)}"
        work.mkdir()
        try:
            _extract_into(archive, work, before.st_size)
            if _stat_id(os.stat(archive)) != _stat_id(before):
                raise IncompleteArchive(
                    f"archive {archive} changed while it was being extracted: load again once it is complete"
                )
            _flush_to_disk()
            os.rename(work, final)  # the fresh folder appears whole, or not at all
            _flush_to_disk()
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for old in root.glob(f"{name}-*"):  # earlier contents of an archive of this name
            if old != final and old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
    return final


def find_image_folder(root: Path) -> Path:
    """Return the folder under ``root`` holding the UTKFace images (handles Kaggle's nested layouts)."""
    counts: dict[Path, int] = {}
    for folder, _dirs, files in os.walk(root):
        n = sum(1 for f in files if ".jpg" in f.lower())
        if n:
            counts[Path(folder)] = n
    if not counts:
        raise DatasetNotFound(f"no .jpg images found under {root}.\n{HOW_TO_GET}")
    for name in PREFERRED_FOLDERS:
        named = [p for p in counts if p.name.lower() == name]
        if named:
            return min(named, key=lambda p: (len(p.parts), -counts[p]))
    return max(counts, key=lambda p: counts[p])


def locate(source: str | Path | None = None, extract_to: Path | None = None) -> Path:
    """Find the image folder from an explicit path, $UTKFACE_DIR, or data/ (extracting archives once)."""
    tried = []
    candidates = [source] if source is not None else [os.environ.get("UTKFACE_DIR")]
    for cand in candidates:
        if not cand:
            continue
        path = Path(cand).expanduser()
        tried.append(str(path))
        if _is_archive(path):
            return find_image_folder(extract_archive(path, extract_to))
        if path.is_dir():
            return find_image_folder(path)
        raise DatasetNotFound(f"{path} is neither a folder nor a .tar.gz/.tgz/.zip archive.\n{HOW_TO_GET}")
    # data/: an extracted folder first, then an archive to extract
    data = Path(extract_to or DATA_DIR)
    for sub in sorted(data.iterdir()) if data.is_dir() else []:
        if sub.is_dir() and sub.name not in ("cache", "splits", "synthetic") and not sub.name.startswith("."):
            try:
                return find_image_folder(sub)
            except DatasetNotFound:
                continue
    for sub in sorted(data.iterdir()) if data.is_dir() else []:
        if _is_archive(sub):
            return find_image_folder(extract_archive(sub, data))
    tried.append(f"{data}/")
    raise DatasetNotFound(f"UTKFace was not found (looked in: {', '.join(tried)}).\n{HOW_TO_GET}")


KAGGLE_DATASET = "jangedoo/utkface-new"


def download_kaggle(dest: Path | None = None) -> Path:
    """Download UTKFace from Kaggle (needs the `kaggle` package and ~/.kaggle/kaggle.json); return the archive."""
    dest = Path(dest or DATA_DIR)
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "utkface-new.zip"
    if archive.exists():
        return archive
    try:
        import kaggle  # authenticates on import: raises without credentials
    except ImportError as exc:
        raise DatasetNotFound(f"the Kaggle client is not installed (`pip install kaggle`).\n{HOW_TO_GET}") from exc
    except (OSError, ValueError) as exc:  # missing or unreadable kaggle.json
        raise DatasetNotFound(
            f"Kaggle credentials not found ({exc}); put kaggle.json in ~/.kaggle/ "
            f"or set KAGGLE_USERNAME and KAGGLE_KEY.\n{HOW_TO_GET}"
        ) from exc
    try:
        kaggle.api.dataset_download_files(KAGGLE_DATASET, path=str(dest), quiet=False)
    except Exception as exc:  # the client raises plain HTTP/connection errors when offline
        raise DatasetNotFound(
            f"could not download {KAGGLE_DATASET} from Kaggle ({type(exc).__name__}: {exc}); "
            f"are you offline?\n{HOW_TO_GET}"
        ) from exc
    return archive


# ----------------------------------------------------------------------------------------- scanning


def _file_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def entry_problem(path: Path) -> str:
    """Why the entry ``path`` cannot be an image (its reason to be skipped), or "" for a regular file within
    IMAGE_LIMIT bytes (a symlink to one is fine). Nothing is opened: a FIFO or a device is never read."""
    try:
        own = os.lstat(path)
    except OSError as exc:
        return f"vanished while the folder was read ({exc.strerror})"
    st = own
    link = stat.S_ISLNK(own.st_mode)
    if link:
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "symlink loop"
            if exc.errno == errno.ENOENT:
                return "dangling symlink (its target does not exist)"
            return f"symlink that cannot be followed ({exc.strerror})"
        except RuntimeError:  # a symlink loop on some Pythons
            return "symlink loop"
    if not stat.S_ISREG(st.st_mode):
        return f"symlink to {_kind(st.st_mode)}" if link else f"not a regular file: {_kind(st.st_mode)}"
    if st.st_size > IMAGE_LIMIT:
        return f"larger than the {IMAGE_LIMIT // 2**20} MiB cap for one image"
    return ""


def scan(folder: Path) -> pd.DataFrame:
    """List every entry in ``folder`` with its labels and content hash, or the reason it is skipped.

    Only regular files (or symlinks to them) of at most IMAGE_LIMIT bytes are read; every other entry (a folder, a
    FIFO, a device, a dangling symlink, a symlink loop, a huge file) is listed with its reason, never read.
    """
    rows = []
    for name in sorted(entry.name for entry in os.scandir(folder)):
        path = Path(folder) / name
        row = {"file": name, "age": -1, "gender": -1, "race": -1, "hash": "", "reason": "", "duplicate_of": ""}
        problem = entry_problem(path)
        if problem:
            row["reason"] = problem
        elif not name.lower().endswith(IMAGE_SUFFIXES):
            row["reason"] = "not a .jpg file"
        else:
            label, why = parse_name(name)
            if label is None:
                row["reason"] = f"unreadable name: {why}"
            else:
                row.update(age=label.age, gender=label.gender, race=label.race)
            try:
                row["hash"] = _file_hash(safe.read_bytes(path, IMAGE_LIMIT, "image"))
            except safe.UnsafeFile:
                row.update(
                    age=-1,
                    gender=-1,
                    race=-1,
                    reason="changed while it was read (not a regular file any more, or larger than the cap)",
                )
            except OSError as exc:
                row.update(age=-1, gender=-1, race=-1, reason=f"cannot be read ({exc.strerror or exc})")
        rows.append(row)
    table = pd.DataFrame(rows, columns=["file", "age", "gender", "race", "hash", "reason", "duplicate_of"])
    return _mark_duplicates(table)


def _key_hashes(files: pd.DataFrame) -> list[str]:
    """What the content key hashes per file: the content hash, or for an entry that was not read, why not (so a FIFO
    that becomes a dangling symlink gets another key); plain "not a .jpg file" rows keep "" as before."""
    return [h if h or r in ("", "not a .jpg file") else f"!{r}" for h, r in zip(files.hash, files.reason)]


SAME_LABELS = "duplicate image, same labels"
RACE_DIFFERS = "duplicate image, same age and gender, race differs"
CONFLICT = "duplicate image, conflicting labels"


def _mark_duplicates(table: pd.DataFrame) -> pd.DataFrame:
    """Byte-identical images: keep one copy when all copies agree on age and gender, drop all when they conflict.

    Only files whose names gave labels take part. Copies that agree on age and gender but not on race keep one copy
    (the first by name) too; the others are skipped as "same age and gender, race differs", so the report says so.
    """
    ok = table[(table.reason == "") & (table.hash != "")]
    for _h, group in ok.groupby("hash"):
        if len(group) < 2:
            continue
        agree = group[["age", "gender"]].drop_duplicates().shape[0] == 1
        same_race = group.race.nunique() == 1
        first = group.file.iloc[0]
        for idx in group.index:
            if agree and table.at[idx, "file"] == first:
                continue
            table.at[idx, "reason"] = (SAME_LABELS if same_race else RACE_DIFFERS) if agree else CONFLICT
            table.at[idx, "duplicate_of"] = (
                first if agree else ";".join(f for f in group.file if f != table.at[idx, "file"])
            )
    return table


def irregular_names(files: pd.DataFrame) -> pd.DataFrame:
    """Files whose names bend the documented pattern, with what became of each (loaded, or why skipped)."""
    from .labels import is_canonical

    odd = files[~files.file.map(is_canonical)]
    return odd.assign(outcome=odd.reason.where(odd.reason != "", "loaded"))[
        ["file", "age", "gender", "race", "outcome"]
    ]


def duplicate_groups(table: pd.DataFrame) -> pd.DataFrame:
    """One row per group of byte-identical images among the files whose names gave labels: labels and outcome.

    Files already skipped for their name (or for not being a .jpg) take no part, as in the deduplication itself.
    ``action`` says what happened, from the files' reasons: "one copy kept" (all labels agree), "one copy kept,
    race differs" (age and gender agree), "all dropped (labels conflict)" (age or gender differ) or
    "all dropped (unreadable image)" (the kept copy could not be decoded).
    """
    labelled = table[(table.hash != "") & (table.age >= 0)]
    sizes = labelled.groupby("hash").file.transform("size")
    dup = labelled[sizes > 1]
    rows = []
    for h, g in dup.groupby("hash", sort=False):
        kept = int((g.reason == "").sum())
        if (g.reason == CONFLICT).any():
            action = "all dropped (labels conflict)"
        elif kept == 0:
            action = "all dropped (unreadable image)"
        else:
            action = "one copy kept, race differs" if (g.reason == RACE_DIFFERS).any() else "one copy kept"
        rows.append(
            {
                "hash": h,
                "files": len(g),
                "labels (age_gender)": ", ".join(f"{a}_{s}" for a, s in zip(g.age, g.gender)),
                "labels (age_gender_race)": ", ".join(f"{a}_{s}_{r}" for a, s, r in zip(g.age, g.gender, g.race)),
                "kept": kept,
                "action": action,
            }
        )
    return pd.DataFrame(
        rows, columns=["hash", "files", "labels (age_gender)", "labels (age_gender_race)", "kept", "action"]
    )


# ----------------------------------------------------------------------------------------- decoding


def _decode_one(path: str, size: int) -> tuple[np.ndarray | None, str]:
    """Decode one image to an RGB uint8 square of ``size``; return (None, reason) when it cannot be read.

    The file is read as a regular file of at most IMAGE_LIMIT bytes: one swapped for a FIFO or a device after the scan
    is skipped, never blocks or floods a worker.
    """
    try:
        data = safe.read_bytes(path, IMAGE_LIMIT, "image")
    except safe.UnsafeFile:
        return None, "changed after the scan (not a regular file any more, or larger than the cap)"
    except OSError:
        return None, "corrupt or unreadable image"
    try:
        with Image.open(io.BytesIO(data)) as img:
            mode = img.mode
            if img.format == "JPEG":
                img.draft("RGB", (size, size))  # let libjpeg downscale by 1/2, 1/4 or 1/8 while decoding
            img = img.convert("RGB")
            w, h = img.size
            if w != h:
                side = min(w, h)
                img = img.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
            img = img.resize((size, size), Image.Resampling.LANCZOS)
            note = "" if mode == "RGB" else f"converted from {mode}"
            return np.asarray(img, dtype=np.uint8), note
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        return None, "corrupt or unreadable image"


def _decode_chunk(args: tuple[list[str], int]) -> tuple[np.ndarray, list[str], list[bool]]:
    paths, size = args
    if delay := float(os.environ.get(DELAY_ENV) or 0):
        time.sleep(delay)
    out = np.zeros((len(paths), size, size, 3), np.uint8)
    notes, ok = [], []
    for i, p in enumerate(paths):
        arr, note = _decode_one(p, size)
        ok.append(arr is not None)
        notes.append(note)
        if arr is not None:
            out[i] = arr
    return out, notes, ok


def _worker_init(parent: int) -> None:
    """In each decode worker: leave Ctrl-C to the parent, and exit as soon as the parent is gone (even kill -9)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # the parent held signals back while it started us: take SIGTERM again
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def check_workers(workers: int | None) -> None:
    """Raise ValueError unless ``workers`` is None (all cores) or a whole number of processes >= 1."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(
            f"workers must be a whole number of decode processes >= 1 (or None for all "
            f"{os.cpu_count() or 1} cores), got {workers!r}"
        )


_POOL_RUNNING = threading.Event()
_STOP_REQUEST: dict[str, int | None] = {"signal": None}


def _on_stop_signal(signum: int, _frame: object) -> None:
    """The command line's Ctrl-C and SIGTERM: while decode workers run, ask the decode loop to stop (it checks between
    results, outside multiprocessing's own code); otherwise stop at once."""
    if _POOL_RUNNING.is_set():
        _STOP_REQUEST["signal"] = signum
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _results_until_stopped(results):
    """The pool's results in order, checking every 0.2 s whether the command line was asked to stop."""
    while True:
        try:
            yield results.next(timeout=0.2)
        except StopIteration:
            return
        except mp.TimeoutError:
            pass
        signum = _STOP_REQUEST["signal"]
        if signum is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)


@contextmanager
def _signals_held():
    """Hold Ctrl-C and SIGTERM back in the main thread while the block runs; they arrive when it ends."""
    main = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask")
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM}) if main else None
    try:
        yield
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def decode_images(
    paths: list[Path], size: int, out: np.ndarray, workers: int | None = None
) -> tuple[list[str], list[bool]]:
    """Decode ``paths`` into the preallocated ``out`` array on all cores; return per-file notes and success flags.

    Workers ignore Ctrl-C and are terminated at once when the parent is interrupted or fails, and exit on their own
    when the parent dies.
    """
    check_workers(workers)
    workers = workers or os.cpu_count() or 1
    step = CHUNK if workers == 1 else max(8, min(CHUNK, math.ceil(len(paths) / (4 * workers))))
    chunks = [([str(p) for p in paths[i : i + step]], size) for i in range(0, len(paths), step)]
    notes: list[str] = []
    ok: list[bool] = []
    pool = None
    try:
        if workers == 1 or len(chunks) == 1:
            results = map(_decode_chunk, chunks)
        else:
            with (
                _signals_held()
            ):  # an interrupt while the workers start arrives once `pool` is set, so it is terminated
                pool = mp.get_context("spawn").Pool(
                    min(workers, len(chunks)), initializer=_worker_init, initargs=(os.getpid(),)
                )
                _STOP_REQUEST["signal"] = None
                _POOL_RUNNING.set()
            results = _results_until_stopped(pool.imap(_decode_chunk, chunks))
        for i, (arr, n, k) in enumerate(results):
            out[i * step : i * step + len(arr)] = arr
            notes += n
            ok += k
    except BaseException:
        if pool is not None:
            pool.terminate()
        raise
    finally:
        _POOL_RUNNING.clear()
        if pool is not None:
            pool.close()
            pool.join()
    return notes, ok


# ----------------------------------------------------------------------------------------- loading


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
    folder: Path, names: pd.Series, size: int, npy: Path, decode_csv: Path, meta: Path, workers: int | None
) -> None:
    """Decode the images into ``npy`` (unreadable ones compacted away), write the decode table, then the record.

    Each is written through ``utils.files.atomic_path`` (a temporary file beside it, fsynced, renamed), the record
    last: a half-written array or table is never in place, and never trusted without its record.
    """
    compact = cache.tmp_name(npy)
    try:
        with safe.atomic_path(npy) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(names), size, size, 3))
            cache.preallocate(tmp)
            notes, ok = decode_images([folder / f for f in names], size, out, workers)
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
    folder: Path, names: pd.Series, size: int, cache_root: Path, workers: int | None, verbose: bool
) -> tuple[np.ndarray, pd.DataFrame, bool, Path]:
    """The decoded images and decode table from a checked cache, or decoded now (under the cache's lock)."""
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
        _decode_to_cache(folder, names, size, npy, decode_csv, meta, workers)
        images = np.load(npy, mmap_mode="r")
        return images, _read_decode(decode_csv), False, npy


def check_size(size: int) -> None:
    """Raise ValueError unless ``size`` is a whole number of pixels between MIN_SIZE and MAX_SIZE."""
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be a whole number of pixels between {MIN_SIZE} and {MAX_SIZE}, got {size!r}")


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
    """Load UTKFace (or a synthetic set written in its format) as uint8 arrays, with a split and a full report."""
    t0 = time.perf_counter()
    check_size(size)
    check_workers(workers)
    folder = locate(source, extract_to)
    root = Path(cache_dir or CACHE_DIR)
    files, ckey = _scan_cached(folder, root, verbose)
    cache_root = root / ckey
    candidates = files[files.reason == ""].reset_index(drop=True)
    images, decode, from_cache, image_cache = _cached_images(
        folder, candidates.file, size, cache_root, workers, verbose
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
    )
    assert report.loaded + sum(report.skipped.values()) == report.files
    ds = UTKFace(images, table, files, report, size, synthetic, fingerprint, split_id(table))
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


def _check_args(args: argparse.Namespace) -> str | None:
    """The first problem with the command-line arguments, as one line, or None."""
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        return f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {args.size}"
    if args.workers is not None and args.workers < 1:
        return f"--workers must be at least 1 (leave it out to use all {os.cpu_count() or 1} cores), got {args.workers}"
    if args.synthetic is not None and args.synthetic < 10:
        return f"--synthetic must be at least 10 faces, got {args.synthetic}"
    if args.synthetic is not None and args.source:
        return "give --source or --synthetic, not both"
    return None


def main(argv: list[str] | None = None) -> int:
    """Command line: load a dataset, print a readable summary and one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m utils.data", description=__doc__)
    parser.add_argument("--source", help="folder or archive (.tar.gz/.tgz/.zip); default $UTKFACE_DIR or data/")
    parser.add_argument("--size", type=int, default=128, help="side of the square images in pixels (default 128)")
    parser.add_argument("--synthetic", type=int, metavar="N", help="use N synthetic faces instead of UTKFace")
    parser.add_argument("--workers", type=int, help="decoding processes (default: all cores)")
    parser.add_argument("--cache-dir", type=Path, help="where decoded arrays are kept (default data/cache)")
    parser.add_argument(
        "--download", action="store_true", help=f"download {KAGGLE_DATASET} from Kaggle into data/ first"
    )
    parser.add_argument("--prune", action="store_true", help="after loading, delete cache folders of other data sets")
    args = parser.parse_args(argv)
    if (problem := _check_args(args)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_stop_signal)
        signal.signal(signal.SIGINT, _on_stop_signal)  # also when started with Ctrl-C ignored (a background job)
    try:
        if args.download:
            args.source = args.source or download_kaggle()
        if args.synthetic is not None:
            from .synthetic import make_synthetic

            ds = load_utkface(
                make_synthetic(n=args.synthetic),
                args.size,
                synthetic=True,
                workers=args.workers,
                cache_dir=args.cache_dir,
            )
        else:
            ds = load_utkface(args.source, args.size, workers=args.workers, cache_dir=args.cache_dir)
        if args.prune:
            removed = prune_caches([ds], args.cache_dir)
            freed = sum(n for _f, n in removed)
            print(f"pruned {len(removed)} cache folder(s), {freed / 2**20:,.1f} MiB freed")
    except (DatasetNotFound, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(ds.report.as_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
