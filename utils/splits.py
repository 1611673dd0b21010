"""Train/val/test splits: a deterministic, stratified split, its short name, and reuse of a split written on disk."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from .cache import write_atomic
from .labels import age_band


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


def _write(table: pd.DataFrame, split: pd.Series, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"file": table.file, "split": split}).sort_values("file")
    write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))


def load_split(table: pd.DataFrame, split_file: Path | None, seed: int, fingerprint: str, own_dir: Path,
               verbose: bool) -> pd.Series:
    """Reuse the split in ``split_file`` when it covers every loaded file; else make one and write it.

    When ``split_file`` exists but misses loaded files (a subset or another version of the data), the split of this
    data set is kept in ``own_dir`` (the git-ignored cache folder) as ``<stem>-<fingerprint>.csv``, never beside it.
    """
    if split_file is not None and split_file.exists():
        saved = pd.read_csv(split_file)
        mapping = dict(zip(saved.file, saved.split))
        missing = int((~table.file.isin(mapping.keys())).sum())
        if not missing:
            if verbose and len(mapping) > len(table):
                print(f"note: {split_file.name} lists {len(mapping) - len(table):,} files that are not loaded here")
            return table.file.map(mapping).rename("split")
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
    return split
