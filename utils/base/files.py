"""Files the course writes and reads, safely: atomic writes (a temporary file in the same folder, fsync, rename, as
git and SQLite do), and reads of regular files only, with a size cap, so a FIFO, a device or a huge file named like
one of ours never hangs or floods a reader."""

from __future__ import annotations

import glob
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".tmp"


class UnsafeFile(OSError):
    """A path that is not a regular file, or is larger than its reader allows; the message says which and what to do."""


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it is fsynced and renamed over ``path``.

    On any error (a full disk, a kill signal raised as an exception) the temporary file is removed and ``path`` keeps
    its old content: a reader sees the whole old file or the whole new one, never half of either.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def remove_dead_writers_files(path: Path | str) -> list[Path]:
    """Remove the temporary files ``atomic_path`` left beside ``path`` for writers that no longer run (killed -9)."""
    path, removed = Path(path), []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*{TMP_SUFFIX}"):
        pid = tmp.name[len(path.name) + 2 : -len(TMP_SUFFIX)]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see ``atomic_path``)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see ``atomic_path``)."""
    return write_bytes(path, text.encode("utf-8"))


def check_regular(path: Path | str, limit: int | None = None, what: str = "file") -> os.stat_result:
    """The stat of ``path`` when it is a regular file (symlinks followed) no larger than ``limit`` bytes; else
    UnsafeFile.

    A FIFO would block a reader forever, a device like /dev/zero never ends: neither is opened.
    """
    path = Path(path)
    try:
        st = path.stat()
    except RuntimeError as exc:  # a symlink loop on some Pythons
        raise UnsafeFile(f"{what} {path} is a symlink loop: remove it") from exc
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise UnsafeFile(f"{what} {path} is a symlink loop: remove it") from exc
        raise
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "not a regular file"
        )
        raise UnsafeFile(f"{what} {path} is {kind}: move it away (only regular files are read)")
    if limit is not None and st.st_size > limit:
        raise UnsafeFile(
            f"{what} {path} is {st.st_size:,} bytes, more than the {limit:,} this reader allows: "
            "it cannot be what the course wrote; move it away"
        )
    return st


def read_bytes(path: Path | str, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (UnsafeFile otherwise); never blocks on a FIFO."""
    check_regular(path, limit, what)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO swapped in after the check does not block
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFile(f"{what} {path} changed into something that is not a regular file while being read")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnsafeFile(f"{what} {path} grew past {limit:,} bytes while being read")
    return data


def read_text(path: Path | str, limit: int, what: str = "file") -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes (see ``read_bytes``)."""
    return read_bytes(path, limit, what).decode("utf-8")


def remove_stale_temporaries(folder: Path | str, older_than_s: float = 3600.0) -> list[Path]:
    """Delete our own temporary files (``.*.tmp``) in ``folder`` left by a killed writer more than an hour ago."""
    removed = []
    now = time.time()
    for p in Path(folder).glob(f".*{TMP_SUFFIX}"):
        try:
            if p.is_file() and now - p.stat().st_mtime > older_than_s:
                p.unlink()
                removed.append(p)
        except OSError:
            continue
    return removed


def folder_bytes(folder: Path | str) -> int:
    """Bytes of the regular files under ``folder``, subfolders included (links not followed)."""
    return sum(p.lstat().st_size for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink())
