"""UTKFace on disk: find it, unpack it, account for every file, decode in parallel, cache, split.

Run ``python -m utils.data --source PATH --size 128`` for a summary of what was loaded and skipped.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import sys
import tarfile
import time
import zipfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from .labels import age_band, parse_name
from .paths import CACHE_DIR, DATA_DIR, SPLITS_DIR, shown

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
IMAGE_SUFFIXES = (".jpg", ".jpeg")
PREFERRED_FOLDERS = ("utkface", "crop_part1")  # Kaggle's jangedoo/utkface-new ships both; UTKFace is the whole set
SPLITS = ("train", "val", "test")
DECODE_VERSION = 1  # bump when decoding or resizing changes, so old caches are not reused
CHUNK = 128

HOW_TO_GET = """\
How to get UTKFace ("Aligned & Cropped Faces", 23,708 JPEGs):
  * Kaggle: `kaggle datasets download -d jangedoo/utkface-new` (or the web page), or
  * the official page https://susanqq.github.io/UTKFace/ (UTKFace.tar.gz).
Then pass the archive or folder with --source / load_utkface(source=...), set UTKFACE_DIR,
or drop it into data/ (a folder, .tar.gz, .tgz or .zip). Without it the course runs on synthetic faces."""


class DatasetNotFound(FileNotFoundError):
    """Raised when no UTKFace images can be found; the message says how to get them."""


# ----------------------------------------------------------------------------------------- finding


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _safe_target(dest: Path, member: str) -> Path:
    target = (dest / member).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise ValueError(f"archive member {member!r} would be written outside {dest}; refusing to extract")
    return target


def extract_archive(archive: Path, dest: Path | None = None) -> Path:
    """Extract a .tar.gz/.tgz/.zip once into ``dest`` (default data/), refusing members that escape it."""
    archive = Path(archive)
    dest = Path(dest or DATA_DIR)
    stat = archive.stat()
    marker = dest / f".extracted-{archive.name}-{stat.st_size}"
    if marker.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _safe_target(dest, info.filename)
            zf.extractall(dest)
    else:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for m in members:
                _safe_target(dest, m.name)
                if m.issym() or m.islnk() or m.isdev():
                    raise ValueError(f"archive member {m.name!r} in {archive} is a link or device; refusing to extract")
            tf.extractall(dest, members=members, filter="data")
    marker.write_text(f"{archive}\n")
    return dest


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
        if sub.is_dir() and sub.name not in ("cache", "splits", "synthetic"):
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
        raise DatasetNotFound(f"Kaggle credentials not found ({exc}); put kaggle.json in ~/.kaggle/ "
                              f"or set KAGGLE_USERNAME and KAGGLE_KEY.\n{HOW_TO_GET}") from exc
    try:
        kaggle.api.dataset_download_files(KAGGLE_DATASET, path=str(dest), quiet=False)
    except Exception as exc:  # the client raises plain HTTP/connection errors when offline
        raise DatasetNotFound(f"could not download {KAGGLE_DATASET} from Kaggle ({type(exc).__name__}: {exc}); "
                              f"are you offline?\n{HOW_TO_GET}") from exc
    return archive


# ----------------------------------------------------------------------------------------- scanning


def _file_hash(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=12).hexdigest()


def scan(folder: Path) -> pd.DataFrame:
    """List every file in ``folder`` with its labels and content hash, or the reason it is skipped."""
    rows = []
    for path in sorted(p for p in Path(folder).iterdir() if not p.is_dir()):
        row = {"file": path.name, "age": -1, "gender": -1, "race": -1, "hash": "", "reason": "", "duplicate_of": ""}
        if not path.name.lower().endswith(IMAGE_SUFFIXES):
            row["reason"] = "not a .jpg file"
        else:
            label, why = parse_name(path.name)
            if label is None:
                row["reason"] = f"unreadable name: {why}"
            else:
                row.update(age=label.age, gender=label.gender, race=label.race)
            row["hash"] = _file_hash(path)
        rows.append(row)
    table = pd.DataFrame(rows, columns=["file", "age", "gender", "race", "hash", "reason", "duplicate_of"])
    return _mark_duplicates(table)


def _mark_duplicates(table: pd.DataFrame) -> pd.DataFrame:
    """Byte-identical images: keep one copy when all copies agree on age and gender, drop all when they conflict."""
    ok = table[(table.reason == "") & (table.hash != "")]
    for _h, group in ok.groupby("hash"):
        if len(group) < 2:
            continue
        agree = group[["age", "gender"]].drop_duplicates().shape[0] == 1
        first = group.file.iloc[0]
        for idx in group.index:
            if agree and table.at[idx, "file"] == first:
                continue
            table.at[idx, "reason"] = "duplicate image, same labels" if agree else "duplicate image, conflicting labels"
            table.at[idx, "duplicate_of"] = first if agree else ";".join(f for f in group.file if f != table.at[idx, "file"])
    return table


def irregular_names(files: pd.DataFrame) -> pd.DataFrame:
    """Files whose names bend the documented pattern, with what became of each (loaded, or why skipped)."""
    from .labels import is_canonical

    odd = files[~files.file.map(is_canonical)]
    return odd.assign(outcome=odd.reason.where(odd.reason != "", "loaded"))[["file", "age", "gender", "race", "outcome"]]


def duplicate_groups(table: pd.DataFrame) -> pd.DataFrame:
    """One row per group of byte-identical images: its files, their labels and what was done."""
    with_hash = table[table.hash != ""]
    sizes = with_hash.groupby("hash").file.transform("size")
    dup = with_hash[sizes > 1]
    rows = []
    for h, g in dup.groupby("hash", sort=False):
        conflict = g[["age", "gender"]].drop_duplicates().shape[0] > 1
        rows.append({
            "hash": h,
            "files": len(g),
            "labels (age_gender)": ", ".join(f"{a}_{s}" for a, s in zip(g.age, g.gender)),
            "action": "all dropped (labels conflict)" if conflict else "one copy kept",
        })
    return pd.DataFrame(rows, columns=["hash", "files", "labels (age_gender)", "action"])


# ----------------------------------------------------------------------------------------- decoding


def _decode_one(path: str, size: int) -> tuple[np.ndarray | None, str]:
    """Decode one image to an RGB uint8 square of ``size``; return (None, reason) when it cannot be read."""
    try:
        with Image.open(path) as img:
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
    out = np.zeros((len(paths), size, size, 3), np.uint8)
    notes, ok = [], []
    for i, p in enumerate(paths):
        arr, note = _decode_one(p, size)
        ok.append(arr is not None)
        notes.append(note)
        if arr is not None:
            out[i] = arr
    return out, notes, ok


def decode_images(paths: list[Path], size: int, out: np.ndarray, workers: int | None = None) -> tuple[list[str], list[bool]]:
    """Decode ``paths`` into the preallocated ``out`` array on all cores; return per-file notes and success flags."""
    chunks = [([str(p) for p in paths[i:i + CHUNK]], size) for i in range(0, len(paths), CHUNK)]
    workers = workers or os.cpu_count() or 1
    notes: list[str] = []
    ok: list[bool] = []
    if workers == 1 or len(chunks) == 1:
        results = map(_decode_chunk, chunks)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
        results = pool.map(_decode_chunk, chunks)
    try:
        for i, (arr, n, k) in enumerate(results):
            out[i * CHUNK:i * CHUNK + len(arr)] = arr
            notes += n
            ok += k
    finally:
        if pool is not None:
            pool.shutdown()
    return notes, ok


# ----------------------------------------------------------------------------------------- splitting


def make_split(table: pd.DataFrame, seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> pd.Series:
    """Deterministic train/val/test split stratified by age band x gender; copies of one image share a split."""
    if abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    groups = table.sort_values("file").groupby("hash", sort=True).first().reset_index()
    groups["stratum"] = age_band(groups.age.to_numpy()) * 2 + groups.gender.to_numpy()
    rng = np.random.default_rng(seed)
    assign = {}
    for _s, g in groups.groupby("stratum", sort=True):
        order = rng.permutation(len(g))
        n_train = int(round(fractions[0] * len(g)))
        n_val = int(round(fractions[1] * len(g)))
        for rank, h in zip(order, g.hash.to_numpy()):
            assign[h] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return table.hash.map(assign).rename("split")


def split_id(split: pd.DataFrame) -> str:
    """A short hash that names a split (file -> train/val/test)."""
    text = "\n".join(f"{f},{s}" for f, s in sorted(zip(split.file, split.split)))
    return hashlib.blake2b(text.encode(), digest_size=5).hexdigest()


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

    def as_json(self) -> str:
        """The machine-readable one-line summary (keys: files, loaded, skipped, duplicate_groups, split, cache, seconds)."""
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
            f"  duplicate groups {self.duplicate_groups:,} (byte-identical images)",
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


def _folder_fingerprint(folder: Path) -> str:
    h = hashlib.blake2b(digest_size=8)
    for p in sorted(folder.iterdir()):
        if not p.is_dir():
            h.update(f"{p.name}\0{p.stat().st_size}\n".encode())
    return h.hexdigest()


def _load_split(table: pd.DataFrame, split_file: Path | None, seed: int, fingerprint: str, verbose: bool) -> pd.Series:
    """Reuse the split written in ``split_file`` when it covers every loaded file; otherwise make one and write it."""
    if split_file is not None and split_file.exists():
        saved = pd.read_csv(split_file)
        mapping = dict(zip(saved.file, saved.split))
        missing = int((~table.file.isin(mapping.keys())).sum())
        if not missing:
            if verbose and len(mapping) > len(table):
                print(f"note: {split_file.name} lists {len(mapping) - len(table):,} files that are not loaded here")
            return table.file.map(mapping).rename("split")
        other = split_file.with_name(f"{split_file.stem}-{fingerprint}.csv")
        if verbose:
            print(f"note: {missing:,} loaded files are not in {split_file}; using a split of its own, {other}")
        return _load_split(table, other, seed, fingerprint, verbose) if other != split_file else make_split(table, seed)
    split = make_split(table, seed=seed)
    if split_file is not None:
        split_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = split_file.with_suffix(".tmp")
        pd.DataFrame({"file": table.file, "split": split}).sort_values("file").to_csv(tmp, index=False)
        os.replace(tmp, split_file)
    return split


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
    if not isinstance(size, int) or not 8 <= size <= 512:
        raise ValueError(f"size must be an integer number of pixels between 8 and 512, got {size!r}")
    folder = locate(source, extract_to)
    cache_root = Path(cache_dir or CACHE_DIR) / _folder_fingerprint(folder)
    cache_root.mkdir(parents=True, exist_ok=True)
    manifest = cache_root / "files.csv"
    if manifest.exists():
        files = pd.read_csv(manifest, keep_default_na=False, dtype={"hash": str, "reason": str, "duplicate_of": str})
    else:
        files = scan(folder)
        files.to_csv(manifest.with_suffix(".tmp"), index=False)
        os.replace(manifest.with_suffix(".tmp"), manifest)

    image_cache = cache_root / f"images-{size}px-v{DECODE_VERSION}.npy"
    decode_cache = cache_root / f"decode-{size}px-v{DECODE_VERSION}.csv"
    from_cache = image_cache.exists() and decode_cache.exists()
    candidates = files[files.reason == ""].reset_index(drop=True)
    if from_cache:
        images = np.load(image_cache, mmap_mode="r")
        decode = pd.read_csv(decode_cache, keep_default_na=False)
    else:
        tmp_path = image_cache.with_suffix(".tmp.npy")
        out = np.lib.format.open_memmap(tmp_path, mode="w+", dtype=np.uint8, shape=(len(candidates), size, size, 3))
        notes, ok = decode_images([folder / f for f in candidates.file], size, out, workers)
        out.flush()
        decode = pd.DataFrame({"file": candidates.file, "note": notes, "ok": ok})
        if not all(ok):  # compact away unreadable images so rows match the table
            keep = np.flatnonzero(decode.ok.to_numpy())
            np.save(image_cache.with_suffix(".compact.npy"), out[keep])
            del out
            os.replace(image_cache.with_suffix(".compact.npy"), image_cache)
            tmp_path.unlink()
        else:
            del out
            os.replace(tmp_path, image_cache)
        decode.to_csv(decode_cache, index=False)
        images = np.load(image_cache, mmap_mode="r")

    bad = decode[~decode.ok.astype(bool)]
    if len(bad):
        idx = files.file.isin(bad.file)
        files.loc[idx, "reason"] = files.loc[idx, "file"].map(dict(zip(bad.file, bad.note)))
    table = files[files.reason == ""].drop(columns=["reason", "duplicate_of"]).reset_index(drop=True)
    if len(table) != len(images):
        raise RuntimeError(f"cache {image_cache} has {len(images)} images but {len(table)} are expected; delete {cache_root} and reload")
    if len(table) == 0:
        raise DatasetNotFound(f"none of the {len(files)} files in {folder} could be loaded.\n{HOW_TO_GET}")

    fingerprint = hashlib.blake2b("".join(sorted(table.hash)).encode(), digest_size=6).hexdigest()
    if split_file == "auto":
        split_file = cache_root / "split.csv" if synthetic else SPLITS_DIR / "utkface.csv"
    split = _load_split(table, Path(split_file) if split_file else None, split_seed, fingerprint, verbose)
    table["split"] = split.to_numpy()

    skipped = files.reason[files.reason != ""]
    converted = Counter(n.removeprefix("converted from ") for n in decode.note if n.startswith("converted"))
    report = LoadReport(
        source=str(source or os.environ.get("UTKFACE_DIR") or folder),
        folder=str(folder),
        files=len(files),
        loaded=len(table),
        skipped=dict(Counter(skipped)),
        duplicate_groups=int(len(duplicate_groups(files))),
        split={s: int((table.split == s).sum()) for s in SPLITS},
        cache=str(image_cache),
        seconds=round(time.perf_counter() - t0, 3),
        from_cache=from_cache,
        converted=dict(converted),
    )
    assert report.loaded + sum(report.skipped.values()) == report.files
    ds = UTKFace(images, table, files, report, size, synthetic, fingerprint, split_id(table))
    if verbose:
        print(report)
    return ds


def main(argv: list[str] | None = None) -> int:
    """Command line: load a dataset, print a readable summary and one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m utils.data", description=__doc__)
    parser.add_argument("--source", help="folder or archive (.tar.gz/.tgz/.zip); default $UTKFACE_DIR or data/")
    parser.add_argument("--size", type=int, default=128, help="side of the square images in pixels (default 128)")
    parser.add_argument("--synthetic", type=int, metavar="N", help="use N synthetic faces instead of UTKFace")
    parser.add_argument("--workers", type=int, help="decoding processes (default: all cores)")
    parser.add_argument("--download", action="store_true", help=f"download {KAGGLE_DATASET} from Kaggle into data/ first")
    args = parser.parse_args(argv)
    try:
        if args.download:
            args.source = args.source or download_kaggle()
        if args.synthetic:
            from .synthetic import make_synthetic

            ds = load_utkface(make_synthetic(n=args.synthetic), args.size, synthetic=True, workers=args.workers)
        else:
            ds = load_utkface(args.source, args.size, workers=args.workers)
    except DatasetNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(ds.report.as_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
