"""The loader's disk cache: one folder per data set content, written under a lock, checked before it is trusted.

Layout under the cache folder (default data/cache/)::

    index/<stat key>                   the content key of a folder whose files had these names, sizes, mtimes, ctimes
    <content key>/files.csv            the scan: every file with its labels, content hash and the reason it is skipped
    <content key>/files.json           written after files.csv: its size and checksum, checked on every load
    <content key>/images-{S}px-v{V}.npy, decode-{S}px-v{V}.csv, images-{S}px-v{V}.json   decoded faces; the .json,
                                       written last, records shape, size and a checksum of sampled rows

Every file is written through ``utils.base.files.atomic_path`` (a temporary file of its own in the same folder, fsynced,
then renamed into place), while holding a lock (``filelock``) that every writer of that file takes; a crashed or killed
writer leaves no partial file that a later run would trust. Every file is read as a regular file with a size cap
(``utils.base.files``), so a FIFO or a device swapped in under one of these names never hangs or floods a reader.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from ..base import files

SAMPLED_ROWS = 256  # rows hashed to check a cached image array on every load (the whole array is hashed on writing)
TABLE_LIMIT = 256 * 2**20  # most bytes of a cached table (files.csv, decode-*.csv): the real one is ~2 MB
RECORD_LIMIT = 2**20  # most bytes of a record (.json) or an index entry


class CacheDamaged(Exception):
    """A cache file exists but is incomplete or does not match its record; the message names it."""


# ----------------------------------------------------------------------------------------- keys


def _stat_text(st: os.stat_result | None) -> str:
    if st is None:
        return "-"
    return f"{st.st_mode:o}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}"


def stat_key(folder: Path) -> str:
    """A fast key for a folder's entries: names, types, sizes, mtime_ns and ctime_ns (no file is read, none opened).

    Every entry counts, whatever it is: a symlink by its own stat and its target's (none when it dangles or loops), so
    a FIFO, a dangling link or a link loop changes the key but never fails or blocks it.
    """
    h = hashlib.blake2b(digest_size=8)
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        try:
            own = entry.stat(follow_symlinks=False)
        except OSError:
            own = None  # vanished while listing
        target = own
        if own is not None and entry.is_symlink():
            try:
                target = entry.stat()
            except OSError:
                target = None  # dangling, or a loop
        h.update(f"{entry.name}\0{_stat_text(own)}\0{_stat_text(target)}\n".encode())
    return h.hexdigest()


def content_key(names: Iterable[str], hashes: Iterable[str], version: int) -> str:
    """A key for a folder's content: every file name with the hash of its bytes, and the scan rules' version."""
    h = hashlib.blake2b(f"scan-v{version}\n".encode(), digest_size=8)
    for name, digest in sorted(zip(names, hashes)):
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


def read_index(cache_dir: Path, skey: str) -> str | None:
    """The content key recorded for a stat key, or None."""
    try:
        text = files.read_text(cache_dir / "index" / skey, RECORD_LIMIT, "cache index entry").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if len(text) == 16 and all(c in "0123456789abcdef" for c in text) else None


def write_index(cache_dir: Path, skey: str, ckey: str) -> None:
    """Record that folders with stat key ``skey`` hold content ``ckey``."""
    path = cache_dir / "index" / skey
    path.parent.mkdir(parents=True, exist_ok=True)
    files.remove_dead_writers_files(path)  # a writer killed while it wrote this entry left its temporary file
    write_atomic(path, lambda tmp: tmp.write_text(ckey + "\n"))


# ----------------------------------------------------------------------------------------- writing


def tmp_name(final: Path) -> Path:
    """A temporary name beside ``final`` that no other process uses: ``<name>.<pid>-<random>.tmp``."""
    return final.with_name(f"{final.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp")


def _disk_error(exc: OSError, final: Path) -> OSError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OSError(
            exc.errno,
            f"no space left to write {final}: free some disk space, or pass cache_dir= "
            f"(a folder on another disk) to load_utkface",
        )
    return exc


def write_atomic(final: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``final``, fsync it and rename it to ``final``
    (``utils.base.files.atomic_path``); on any failure the temporary file is removed and ``final`` keeps its old
    content."""
    try:
        with files.atomic_path(final) as tmp:
            write(tmp)
    except OSError as exc:
        raise _disk_error(exc, final) from exc


def write_recorded(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` atomically, then its record (``<stem>.json``: bytes and checksum), atomically,
    last."""
    rec = {"file": final.name, "bytes": len(data), "blake2b": hashlib.blake2b(data, digest_size=12).hexdigest()}
    write_atomic(final, lambda tmp: tmp.write_bytes(data))
    write_atomic(final.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(rec) + "\n"))


def read_recorded(final: Path, limit: int = TABLE_LIMIT) -> bytes | None:
    """The bytes of a file written by ``write_recorded``, checked against its record; None when it has no record
    (never completed, or written by an older version: rebuild without alarm).

    Raises CacheDamaged, naming the file, when it is missing, not a regular file, or differs from its record (edited,
    truncated or overwritten after it was written).
    """
    meta = final.with_suffix(".json")
    try:
        rec = json.loads(files.read_text(meta, RECORD_LIMIT, "cache record"))
        size, digest = int(rec["bytes"]), str(rec["blake2b"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CacheDamaged(f"cache record {meta} is unreadable ({exc})") from exc
    try:
        data = files.read_bytes(final, limit, "cache file")
    except OSError as exc:
        raise CacheDamaged(f"cache {final} cannot be read ({exc})") from exc
    if len(data) != size or hashlib.blake2b(data, digest_size=12).hexdigest() != digest:
        raise CacheDamaged(
            f"cache {final} does not match its checksum (it was edited, truncated or overwritten after it was written)"
        )
    return data


def preallocate(path: Path) -> None:
    """Reserve the disk blocks of ``path`` now, so a full disk fails here with ENOSPC rather than later in a memmap."""
    if hasattr(os, "posix_fallocate"):
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            # EOPNOTSUPP/EINVAL: the file system cannot preallocate; go on without
        finally:
            os.close(fd)


@contextlib.contextmanager
def locked(final: Path, verbose: bool = True, also: Iterable[Path] = ()) -> Iterator[None]:
    """Hold the lock of ``final`` (a file beside it) and remove temporary files that dead writers of it (and of the
    files in ``also``, written under the same lock, and of its record ``<stem>.json``) left."""
    lock = FileLock(str(final.with_name(f".{final.name}.lock")))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if verbose:
            print(f"waiting for another process that is writing {final} ...", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        for path in {final, final.with_suffix(".json"), *also}:
            name = glob.escape(path.name)  # only holders of this lock write these: tmp_name's and atomic_path's
            for stale in [*path.parent.glob(f"{name}.*.tmp"), *path.parent.glob(f".{name}.*.tmp")]:
                if stale.is_file() and not stale.is_symlink():
                    stale.unlink(missing_ok=True)
        yield
    finally:
        lock.release()


# ----------------------------------------------------------------------------------------- image arrays


def _sample_digest(images: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=12)
    if len(images):
        rows = np.unique(np.linspace(0, len(images) - 1, min(len(images), SAMPLED_ROWS)).astype(np.int64))
        h.update(np.ascontiguousarray(images[rows]).tobytes())
    return h.hexdigest()


def _full_digest(images: np.ndarray, step: int = 1024) -> str:
    h = hashlib.blake2b(digest_size=12)
    for i in range(0, len(images), step):
        h.update(np.ascontiguousarray(images[i : i + step]).tobytes())
    return h.hexdigest()


def file_digest(path: Path, limit: int = TABLE_LIMIT) -> str:
    """A short hash of a whole file's bytes (a regular file of at most ``limit`` bytes; else UnsafeFile)."""
    return hashlib.blake2b(files.read_bytes(path, limit, "cache file"), digest_size=12).hexdigest()


def record(npy: Path, decode_csv: Path) -> dict:
    """The record written after an image array and its decode table: shape, bytes and checksums."""
    images = np.load(npy, mmap_mode="r")
    return {
        "shape": list(images.shape),
        "dtype": str(images.dtype),
        "bytes": npy.stat().st_size,
        "sampled": _sample_digest(images),
        "full": _full_digest(images),
        "decode_csv": file_digest(decode_csv),
    }


def open_checked(npy: Path, decode_csv: Path, meta: Path) -> np.ndarray | None:
    """Memory-map a cached image array after checking it against its record; None when there is no complete cache.

    Raises CacheDamaged when the array or its decode table is there but truncated or does not match the record.
    """
    if not meta.exists() and not meta.is_symlink():
        return None  # never completed (its writer died, or an older cache format): rebuild without alarm
    try:
        rec = json.loads(files.read_text(meta, RECORD_LIMIT, "cache record"))
        expected = (tuple(rec["shape"]), rec["dtype"], int(rec["bytes"]), rec["sampled"], rec["decode_csv"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CacheDamaged(f"cache record {meta} is unreadable ({exc})") from exc
    shape, dtype, size, sampled, decode_digest = expected
    if not npy.exists() or not decode_csv.exists():
        raise CacheDamaged(f"cache {npy.parent} lacks {npy.name if not npy.exists() else decode_csv.name}")
    try:
        actual = files.check_regular(npy, None, "cache").st_size
        files.check_regular(decode_csv, TABLE_LIMIT, "cache")
    except OSError as exc:
        raise CacheDamaged(str(exc)) from exc
    if actual != size:
        raise CacheDamaged(f"cache {npy} has {actual:,} bytes where {size:,} were written (truncated or overwritten)")
    try:
        images = np.load(npy, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise CacheDamaged(f"cache {npy} cannot be read ({exc})") from exc
    if images.shape != shape or str(images.dtype) != dtype:
        raise CacheDamaged(f"cache {npy} holds {images.shape} {images.dtype}, its record says {shape} {dtype}")
    if _sample_digest(images) != sampled:
        raise CacheDamaged(f"cache {npy} does not match its checksum (its content changed after it was written)")
    try:
        decode_ok = file_digest(decode_csv) == decode_digest
    except OSError as exc:
        raise CacheDamaged(f"cache {decode_csv} cannot be read ({exc})") from exc
    if not decode_ok:
        raise CacheDamaged(f"cache {decode_csv} does not match its checksum")
    return images


def verify_full(npy: Path, meta: Path) -> bool:
    """Hash every row of a cached array and compare with its record (slow: reads the whole file)."""
    rec = json.loads(files.read_text(meta, RECORD_LIMIT, "cache record"))
    return _full_digest(np.load(npy, mmap_mode="r")) == rec["full"]


# ----------------------------------------------------------------------------------------- pruning


def prune(cache_dir: Path, keep: Iterable[str] = ()) -> list[tuple[Path, int]]:
    """Delete cache folders other than ``keep`` (content keys) that no process is writing; return (folder, bytes)."""
    cache_dir = Path(cache_dir)
    keep = set(keep)
    removed = []
    for folder in sorted(cache_dir.iterdir()) if cache_dir.is_dir() else []:
        if not folder.is_dir() or folder.name == "index" or folder.name in keep:
            continue
        held = []
        try:
            for path in folder.glob(".*.lock"):
                lk = FileLock(str(path))
                lk.acquire(timeout=0)
                held.append(lk)
        except Timeout:
            for lk in held:
                lk.release()
            continue  # a loader is writing into it right now
        size = files.folder_bytes(folder)
        shutil.rmtree(folder, ignore_errors=True)
        for lk in held:
            lk.release()
        removed.append((folder, size))
    index = cache_dir / "index"
    for entry in index.iterdir() if index.is_dir() else []:
        target = read_index(cache_dir, entry.name)
        if entry.name.endswith(".tmp") or target is None or not (cache_dir / target).is_dir():
            entry.unlink(missing_ok=True)
    return removed
