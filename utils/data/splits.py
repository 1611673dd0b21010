"""Train/val/test splits: a deterministic, stratified split, its short name, and reuse of a split written on disk.

A split file on disk (the committed ``data/splits/utkface.csv``, or one the loader keeps in its cache) is checked
before it is used, and a bad one is never used: every value must be train, val or test; the file must not hold git
merge-conflict markers or contradict itself; and each split's share of the loaded faces must be close to what
``make_split`` makes for them (see ``share_tolerance``). A bad file raises ``SplitFileError`` naming it and what to do.
"""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..base import files
from ..base.labels import age_band
from ..base.paths import shown

SPLITS = ("train", "val", "test")
FRACTIONS = (0.7, 0.15, 0.15)
"""The splitter's shares of train, val and test."""
SPLIT_FILE_LIMIT = 64 * 2**20  # most bytes of a split file: the committed one is ~1 MB
CONFLICT_MARKERS = ("<<<<<<<", "|||||||", "=======", ">>>>>>>")
SAMPLING_Z = 4.0  # standard errors a subset's shares may stray from the file's (see share_tolerance)


class SplitFileError(ValueError):
    """A split file that cannot be trusted; the message names it, says what is wrong and what to do."""


def make_split(table: pd.DataFrame, seed: int = 0, fractions: tuple[float, float, float] = FRACTIONS) -> pd.Series:
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


def share_tolerance(fraction: float, loaded: int, listed: int, strata: int) -> float:
    """How far a split's share of ``loaded`` faces may lie from the share ``make_split`` makes for them.

    The splitter rounds each stratum's counts, so for the very files it split the shares match exactly, whatever the
    seed. The tolerance is a third of the splitter's own fraction for that split (train 0.7 -> 0.233, val and test
    0.15 -> 0.05): room for a file written by an earlier splitter or edited by hand for a few faces, far less than a
    whole split moved. When the file lists ``listed`` > ``loaded`` files (it was made for a larger data set and the
    loaded faces are a subset of it), it widens by the splitter's rounding (one face per stratum) and by
    ``SAMPLING_Z`` standard errors of drawing ``loaded`` of the ``listed`` files.
    """
    tol = fraction / 3
    if listed > loaded > 0:
        tol += strata / loaded + SAMPLING_Z * math.sqrt(fraction * (1 - fraction) / loaded * (1 - loaded / listed))
    return tol


def _what_to_do(path: Path, own_dir: Path | None) -> str:
    inside_cache = own_dir is not None and Path(path).resolve().is_relative_to(Path(own_dir).resolve().parent)
    if inside_cache:
        return f"delete {shown(path)} and load again: the loader writes a new split there"
    return (
        f"restore it (`git checkout -- {shown(path)}` if it is committed), or delete it and load again so the "
        "loader writes a new one"
    )


def _bad(path: Path, own_dir: Path | None, problem: str) -> SplitFileError:
    return SplitFileError(f"split file {shown(path)} is not used: {problem}. To go on, {_what_to_do(path, own_dir)}")


def read_split_file(path: Path, own_dir: Path | None = None) -> pd.DataFrame:
    """The rows (file, split) of a split file, after checking them; SplitFileError when it cannot be trusted."""
    path = Path(path)
    try:
        text = files.read_text(path, SPLIT_FILE_LIMIT, "split file")
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(path, own_dir, f"it cannot be read ({exc})") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(CONFLICT_MARKERS):
            raise _bad(
                path,
                own_dir,
                f"line {number} is a git merge-conflict marker ({line[:30]!r}); the merge was left unresolved",
            )
    try:
        saved = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise _bad(path, own_dir, f"it is not a CSV file ({exc})") from exc
    if not {"file", "split"} <= set(saved.columns):
        raise _bad(path, own_dir, f"its columns are {list(saved.columns)}, not file,split")
    bad = saved[~saved.split.isin(SPLITS) | (saved.file.str.strip() == "")]
    if len(bad):
        first = bad.index[0]
        raise _bad(
            path,
            own_dir,
            f"{len(bad):,} row(s) are not a file name with train, val or test (line {first + 2}: "
            f"{saved.file[first]!r}, {saved.split[first]!r}); "
            f"values seen: {sorted(set(saved.split) - set(SPLITS))[:5]}",
        )
    twice = saved.groupby("file").split.nunique()
    if (twice > 1).any():
        names = list(twice[twice > 1].index[:3])
        raise _bad(path, own_dir, f"{int((twice > 1).sum()):,} file(s) are in two splits at once (e.g. {names})")
    return saved[["file", "split"]].drop_duplicates("file")


def check_shares(
    split: pd.Series, table: pd.DataFrame, listed: int, seed: int, path: Path, own_dir: Path | None = None
) -> None:
    """Raise SplitFileError when a split's share of the loaded faces is far from what ``make_split`` makes for them."""
    n = len(table)
    if n == 0:
        return
    expected = make_split(table, seed=seed).value_counts()
    strata = int(np.unique(age_band(table.age.to_numpy()) * 2 + table.gender.to_numpy()).size)
    for name, fraction in zip(SPLITS, FRACTIONS):
        have, want = float((split == name).mean()), float(expected.get(name, 0)) / n
        tol = share_tolerance(fraction, n, listed, strata)
        if abs(have - want) > tol:
            raise _bad(
                path,
                own_dir,
                f"it puts {have:.1%} of the {n:,} loaded faces in {name} where the splitter makes "
                f"{want:.1%} (more than {tol:.1%} apart: faces were moved between splits)",
            )


def _write(table: pd.DataFrame, split: pd.Series, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    files.remove_stale_temporaries(path.parent)  # left by a writer killed more than an hour ago
    frame = pd.DataFrame({"file": table.file, "split": split}).sort_values("file")
    files.write_text(path, frame.to_csv(index=False))  # atomic: a temporary file beside it, fsynced, renamed


def load_split(
    table: pd.DataFrame, split_file: Path | None, seed: int, fingerprint: str, own_dir: Path, verbose: bool
) -> pd.Series:
    """Reuse the split in ``split_file`` when it covers every loaded file and passes its checks; else make one and
    write it.

    When ``split_file`` exists but misses loaded files (a subset or another version of the data), the split of this
    data set is kept in ``own_dir`` (the git-ignored cache folder) as ``<stem>-<fingerprint>.csv``, never beside it.
    A split file that fails its checks (``read_split_file``, ``check_shares``) raises SplitFileError: never used.
    """
    if split_file is not None and (split_file.exists() or split_file.is_symlink()):
        saved = read_split_file(split_file, own_dir)
        mapping = dict(zip(saved.file, saved.split))
        missing = int((~table.file.isin(mapping.keys())).sum())
        if not missing:
            split = table.file.map(mapping).rename("split")
            check_shares(split, table, len(mapping), seed, split_file, own_dir)
            if verbose and len(mapping) > len(table):
                print(f"note: {split_file.name} lists {len(mapping) - len(table):,} files that are not loaded here")
            return split
        if split_file.stem.endswith(f"-{fingerprint}"):  # this data set's own split went stale: write it again
            split_file.unlink()
            return load_split(table, split_file, seed, fingerprint, own_dir, verbose)
        other = Path(own_dir) / f"{split_file.stem}-{fingerprint}.csv"
        if verbose:
            print(f"note: {missing:,} loaded files are not in {split_file}; using a split of its own, {other}")
        return load_split(table, other, seed, fingerprint, own_dir, verbose)
    split = make_split(table, seed=seed)
    if split_file is not None:
        _write(table, split, split_file)
    if not split.isin(SPLITS).all():  # every loaded file is in exactly one split
        raise RuntimeError(f"{int((~split.isin(SPLITS)).sum())} loaded files got no split")
    return split
