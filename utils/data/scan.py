"""Accounting for every file: labels from names, content hashes, unreadable entries and duplicate images; and a
re-encoded folder (``utils.data.reencode``) checked against its manifest."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

import pandas as pd

from ..base import files as safe
from ..base.labels import parse_name
from .archive import IMAGE_SUFFIXES

IMAGE_LIMIT = 16 * 2**20  # most bytes of one image read (UTKFace's are ~10 KB): a larger file is skipped, never read
SCAN_VERSION = 2  # bump when the scan's rules (names, duplicates, reasons) change, so old manifests are not reused

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
    from ..base.labels import is_canonical

    odd = files[~files.file.map(is_canonical)]
    return odd.assign(outcome=odd.reason.where(odd.reason != "", "loaded"))[
        ["file", "age", "gender", "race", "outcome"]
    ]


def duplicate_files(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the scan table (``scan``) whose image has a byte-identical copy, among the files whose names gave
    labels (the same ``hash`` marks a group)."""
    labelled = table[(table.hash != "") & (table.age >= 0)]
    return labelled[labelled.groupby("hash").file.transform("size") > 1]


def duplicate_groups(table: pd.DataFrame) -> pd.DataFrame:
    """One row per group of byte-identical images among the files whose names gave labels: labels and outcome.

    Files already skipped for their name (or for not being a .jpg) take no part, as in the deduplication itself.
    ``action`` says what happened, from the files' reasons: "one copy kept" (all labels agree), "one copy kept,
    race differs" (age and gender agree), "all dropped (labels conflict)" (age or gender differ) or
    "all dropped (unreadable image)" (the kept copy could not be decoded).
    """
    rows = []
    for h, g in duplicate_files(table).groupby("hash", sort=False):
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
