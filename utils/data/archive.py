"""Finding UTKFace: a folder or an archive (unpacked safely, once, by content), or a Kaggle download."""

from __future__ import annotations

import glob
import gzip
import hashlib
import os
import secrets
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

from ..base import files as safe
from ..base.paths import DATA_DIR
from . import cache

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
IMAGE_SUFFIXES = (".jpg", ".jpeg")
PREFERRED_FOLDERS = ("utkface", "crop_part1")  # Kaggle's jangedoo/utkface-new ships both; UTKFace is the whole set
ARCHIVE_MEMBER_LIMIT = 64 * 2**20  # most bytes of one archive member: a larger one refuses the whole archive
ARCHIVE_TOTAL_LIMIT = 4 * 2**30  # most bytes an archive may unpack to (the Kaggle zip unpacks to under 1 GB)
ARCHIVE_RATIO_LIMIT = 10  # ... and at most this many times its own size (JPEGs barely compress: UTKFace's is ~1.1)
EXTRACTED = ".extracted"  # under data/: one folder per archive content, <archive name>-<sha256 prefix>
REENCODED_MANIFEST = (
    "reencoded.json.gz"  # gzipped JSON; marks a folder of re-encoded faces (utils.data.reencode writes it)
)

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
    if (Path(root) / REENCODED_MANIFEST).is_file():  # a re-encoded copy (``utils.data.reencode``) is its own folder
        return Path(root)
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
    # an archive extracted once from elsewhere (--source, load_utkface(source=...)): its finished folder, newest first
    done = [p for p in (data / EXTRACTED).glob("*") if p.is_dir() and not p.name.startswith(".")]
    for sub in sorted(done, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            return find_image_folder(sub)
        except DatasetNotFound:
            continue
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
