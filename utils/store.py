"""Results store: one small JSON file per finished run, written atomically, reused instead of retraining."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .models import ModelConfig
from .paths import RESULTS_DIR
from .profiles import Profile

REQUIRED = ("config", "seed", "profile", "data", "metrics", "history", "predictions")


def slug(config: ModelConfig) -> str:
    """A readable file-name stem for a variant, ending in its configuration hash."""
    parts = ["c" + "-".join(map(str, config.conv_filters)), config.order, f"d{config.dense_units}",
             f"do{config.dropout:g}", config.optimizer, config.tasks, config.age_head]
    if config.age_relu:
        parts.append("agerelu")
    if config.learning_rate != ModelConfig.learning_rate:
        parts.append(f"lr{config.learning_rate:g}")
    if config.bn_momentum != ModelConfig.bn_momentum:
        parts.append(f"bnm{config.bn_momentum:g}")
    if config.loss_weights != ModelConfig.loss_weights:
        parts.append("w" + "-".join(f"{w:g}" for w in config.loss_weights))
    if config.age_range != ModelConfig.age_range:
        parts.append(f"ages{config.age_range[0]}-{config.age_range[1]}")
    if config.augment is not None:
        parts.append("aug")
    return ".".join(parts) + "-" + config.digest()


class ResultsStore:
    """Runs live in ``root/<profile>-<data kind>-<data id>/<variant>-seed<N>.json``.

    Runs trained with probes (extra measurements that cost time) live apart, in the subfolder ``probes/``, so that a
    probed run never stands in for a plain one.
    """

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root or RESULTS_DIR)

    def folder(self, profile: Profile, data_kind: str, fingerprint: str, split_id: str, sub: str = "") -> Path:
        """The folder holding every run of one profile on one dataset and split (``sub``: a subfolder, e.g. probed runs)."""
        ident = json.dumps([profile.training_key(), fingerprint, split_id], sort_keys=True)
        folder = self.root / f"{profile.name}-{data_kind}-{hashlib.blake2b(ident.encode(), digest_size=3).hexdigest()}"
        return folder / sub if sub else folder

    def path(self, config: ModelConfig, seed: int, profile: Profile, data_kind: str, fingerprint: str, split_id: str,
             sub: str = "") -> Path:
        """Where the run of ``config`` with ``seed`` is (or will be) stored."""
        return self.folder(profile, data_kind, fingerprint, split_id, sub) / f"{slug(config)}-seed{seed}.json"

    @staticmethod
    def read(path: Path) -> dict | None:
        """Load a run; a truncated or corrupt file is renamed to *.corrupt and None is returned so it is re-run."""
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text())
            missing = [k for k in REQUIRED if k not in record]
            if missing:
                raise ValueError(f"missing keys {missing}")
            return record
        except (json.JSONDecodeError, ValueError, UnicodeDecodeError) as exc:
            bad = path.with_suffix(".corrupt")
            os.replace(path, bad)
            print(f"warning: {path} was unreadable ({exc}); moved to {bad.name}, the run will be repeated")
            return None

    @staticmethod
    def write(path: Path, record: dict) -> Path:
        """Write a run atomically: a temporary file in the same folder, then an atomic rename."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, separators=(",", ":")))
        os.replace(tmp, path)
        return path

    def runs(self, profile: Profile, data_kind: str, fingerprint: str, split_id: str, config: ModelConfig | None = None) -> list[dict]:
        """Every stored run of this profile and dataset, optionally only those of one variant, ordered by seed."""
        return self.runs_in(self.folder(profile, data_kind, fingerprint, split_id), config)

    def runs_in(self, folder: Path, config: ModelConfig | None = None) -> list[dict]:
        """Every stored run in one results folder, optionally only those of one variant, ordered by seed."""
        pattern = f"{slug(config)}-seed*.json" if config is not None else "*-seed*.json"
        records = [r for p in sorted(Path(folder).glob(pattern)) if (r := self.read(p)) is not None]
        return sorted(records, key=lambda r: r["seed"])
