"""Pool runs trained on other machines (a class's laptops, a lent GPU) into one results store: each record goes where
its own profile, data, configuration and seed say, a record already there is kept, and every file passed over is
counted and named."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..base import files
from .runs import RecordError, Run
from .store import RECORD_LIMIT, SUBFOLDERS, ResultsStore, file_name, folder_name


@dataclass
class PoolReport:
    """What ``pool`` did with each file it found: added, already there, or passed over (and why)."""

    added: list[Path] = field(default_factory=list)
    same: list[Path] = field(default_factory=list)
    passed_over: dict[str, list[Path]] = field(default_factory=dict)

    def skip(self, why: str, path: Path) -> None:
        """Count one file passed over, under its reason."""
        self.passed_over.setdefault(why, []).append(path)

    def text(self) -> str:
        """The report as lines: the counts, then each file passed over with its reason."""
        lines = [f"added {len(self.added)} run(s); {len(self.same)} already stored (identical)"]
        for why, paths in self.passed_over.items():
            lines.append(f"passed over {len(paths)}: {why}")
            lines += [f"    {p}" for p in paths]
        return "\n".join(lines)


def pool(sources: list[Path], root: Path | None = None) -> PoolReport:
    """Copy every run record found under ``sources`` (folders or files) into the store at ``root``; never overwrite."""
    store, report = ResultsStore(root, writable=True), PoolReport()
    found = [p for s in map(Path, sources) for p in ([s] if s.is_file() else sorted(s.rglob("*")))]
    for path in (p for p in found if p.is_file()):
        if path.suffix != ".json":
            report.skip("not a run record (.json)", path)
            continue
        try:
            record = json.loads(files.read_text(path, RECORD_LIMIT, "run record"))
            run = Run.from_dict(record)
            sub = path.parent.name if path.parent.name in SUBFOLDERS else ""
            dest = store.root / folder_name(run) / sub / file_name(run.config, run.seed)
        except (ValueError, RecordError, files.UnsafeFile) as exc:
            report.skip(f"not a valid run record: {exc}", path)
            continue
        if dest.resolve() == path.resolve():
            report.same.append(path)
        elif dest.exists():
            same = json.loads(dest.read_text()) == record
            report.same.append(path) if same else report.skip(f"another run of that seed is stored ({dest.name})", path)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                store.write(dest, record)
            except ValueError as exc:  # its faces are not its profile's size
                report.skip(f"refused by the store ({exc})", path)
                continue
            report.added.append(dest)
    return report
