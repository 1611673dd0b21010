"""Pool runs trained on other machines (a class's laptops, a lent GPU) into one results store: each record goes where
its own profile, data, experiment, configuration and seed say, with its kept model (``.keras``) beside it; a record
already there is kept, and every file passed over is counted and named."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..base import files
from .experiments import EXPERIMENTS
from .runs import Run
from .store import RECORD_LIMIT, SUBFOLDERS, ResultsStore, file_name, folder_name, subfolder

SHOWN = 10
"""Files named per reason in the report; the rest are counted."""


@dataclass
class PoolReport:
    """What ``pool`` did with each file it found: added (by results folder), already there, or passed over (why)."""

    added: list[Path] = field(default_factory=list)
    same: list[Path] = field(default_factory=list)
    passed_over: dict[str, list[Path]] = field(default_factory=dict)

    def skip(self, why: str, path: Path) -> None:
        """Count one file passed over, under its reason."""
        self.passed_over.setdefault(why, []).append(path)

    def text(self, base: Path | None = None) -> str:
        """The report as lines: what was added where, then each file passed over with its reason (its path shown
        relative to ``base`` when given: a temporary folder's name says nothing)."""
        folders = Counter(_home(p).name for p in self.added)
        lines = [f"added {len(self.added)} file(s); {len(self.same)} already stored (identical)"]
        lines += [f"    {n} into {folder}/" for folder, n in sorted(folders.items())]
        for why, paths in self.passed_over.items():
            lines.append(f"passed over {len(paths)}: {why}")
            lines += [f"    {p.relative_to(base) if base else p}" for p in paths[:SHOWN]]
            lines += [f"    … and {len(paths) - SHOWN} more"] if len(paths) > SHOWN else []
        return "\n".join(lines)


def pool(sources: list[Path], root: Path | None = None) -> PoolReport:
    """Copy every run record found under ``sources`` (folders or files) into the store at ``root``; never overwrite."""
    store, report = ResultsStore(root, writable=True), PoolReport()
    for path in sorted({p for s in map(Path, sources) for p in ([s] if not s.is_dir() else s.rglob("*"))}):
        if path.is_dir() and not path.is_symlink():
            continue
        if not path.is_file():
            report.skip("not a regular file (a broken link, a pipe, …)", path)
        elif path.suffix == ".keras":
            if not path.with_suffix(".json").is_file():
                report.skip("a kept model without its run record beside it", path)
        elif path.suffix != ".json":
            report.skip("not a run record (.json)", path)
        else:
            _pool_one(path, store, report)
    return report


def _pool_one(path: Path, store: ResultsStore, report: PoolReport) -> None:
    """Add one record (and its kept model) to the store, or say why not."""
    try:
        record = json.loads(files.read_text(path, RECORD_LIMIT, "run record"))
        run = Run.from_dict(record)
        exp = EXPERIMENTS.get(run.experiment)
        sub = exp.sub if exp else subfolder(run.experiment, bool(run.probes))  # an exercise stays in exercises/
        dest = store.root / folder_name(run) / sub / file_name(run.config, run.seed)
    except (OSError, ValueError) as exc:  # unreadable, not JSON, not a run (RecordError is a ValueError)
        report.skip(f"not a valid run record: {exc}", path)
        return
    model = path.with_suffix(".keras")
    if dest.exists() or dest.is_symlink():
        try:
            same = json.loads(files.read_text(dest, RECORD_LIMIT, "run record")) == record
        except (OSError, ValueError) as exc:
            report.skip(f"the stored file it would replace is unreadable ({exc}); left as it is", path)
            return
        report.same.append(path) if same else report.skip(f"another run of that seed is stored ({dest.name})", path)
    elif sub == "models" and not model.is_file():
        report.skip("a kept-model run whose .keras is not beside it (it could not be served)", path)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            store.write(dest, record)
        except ValueError as exc:  # its faces are not its profile's size, or NaN
            report.skip(f"refused by the store ({exc})", path)
            return
        report.added.append(dest)
        if model.is_file() and not dest.with_suffix(".keras").exists():
            shutil.copyfile(model, dest.with_suffix(".keras"))
            report.added.append(dest.with_suffix(".keras"))


def _home(path: Path) -> Path:
    """The results folder (``<profile>-<kind>-<id>``) a stored file is in, above any subfolder."""
    return path.parent.parent if path.parent.name in SUBFOLDERS else path.parent
