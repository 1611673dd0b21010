"""One typed run record (``Run``), checked when read, and one tidy DataFrame of runs that tables and plots read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from ..nets.models import ModelConfig

REQUIRED = ("config", "seed", "profile", "data", "metrics", "history", "predictions")
SEED_RANGE = (0, 2**32 - 1)
PRECISION_WORDS = {
    "mixed_bfloat16": "16-bit mixed precision",
    "mixed_float16": "16-bit mixed precision",
    "float32": "32-bit floats",
}


class RecordError(ValueError):
    """A stored run that is not a valid run record."""


@dataclass
class Run:
    """One trained variant with one seed: its configuration, what it measured, and where and how it ran."""

    config: ModelConfig
    seed: int
    profile: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    predictions: dict[str, list] = field(default_factory=dict)
    epochs_run: int = 0
    best_epoch: int = 0
    epoch_seconds: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    params: int = 0
    precision: str = ""
    batchnorm: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    device: str = ""
    probes: dict[str, dict] = field(default_factory=dict)
    experiment: str = ""
    variant: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # keys written by older or newer code, kept as they were

    @property
    def hardware(self) -> str:
        """Where and in what precision the run trained, in plain words (the record keeps the device and policy)."""
        cores = re.search(r" x(\d+)(?: bf16)?$", self.device)  # "CPU x86_64 x2": the last field
        where = "a GPU" if self.device.startswith("GPU") else f"a {cores.group(1)}-core CPU" if cores else "a CPU"
        how = PRECISION_WORDS.get(self.precision, self.precision or "precision not recorded")
        return f"{where}, {how}"

    @property
    def encoding(self) -> str:
        """How its pixels came: 'jpeg' (the original files; records before the field) or re-encoded ('webp-q80')."""
        return self.data.get("encoding", "jpeg")

    @classmethod
    def from_dict(cls, record: Any) -> Run:
        """Check a stored record's schema and types and make it a Run; RecordError says what is wrong."""
        if not isinstance(record, dict):
            raise RecordError(f"a run record is a JSON object, not {type(record).__name__}")
        missing = [k for k in REQUIRED if k not in record]
        if missing:
            raise RecordError(f"missing keys {missing}")
        seed = record["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool) or not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
            raise RecordError(f"seed must be an integer in 0..2**32-1, got {seed!r}")
        for key in ("config", "profile", "data", "metrics", "history", "predictions"):
            if not isinstance(record[key], dict):
                raise RecordError(f"{key} must be an object, got {type(record[key]).__name__}")
        bad = [k for k, v in record["metrics"].items() if not _number(v)]
        if bad:
            raise RecordError(f"metrics {bad} are not numbers")
        bad = [k for k, v in record["metrics"].items() if not np.isfinite(v)]
        if bad:
            raise RecordError(
                f"metrics {bad} are not finite (NaN or infinite): the run diverged or the file was edited"
            )
        if "loss" not in record["metrics"]:
            raise RecordError("metrics has no 'loss': not the record of a finished run")
        bad = [k for k, v in record["history"].items() if not isinstance(v, list) or not all(_number(x) for x in v)]
        if bad:
            raise RecordError(f"history curves {bad} are not lists of numbers")
        try:
            config = ModelConfig.from_dict(record["config"])
        except (TypeError, ValueError, KeyError) as exc:
            raise RecordError(f"config is not a valid ModelConfig: {exc}") from exc
        known = {f.name for f in fields(cls)} - {"extra", "config"}
        run = cls(
            config=config,
            **{k: v for k, v in record.items() if k in known},
            extra={k: v for k, v in record.items() if k not in known and k != "config"},
        )
        for name, kind in (("epochs_run", int), ("best_epoch", int), ("params", int), ("probes", dict)):
            if not isinstance(getattr(run, name), kind):
                raise RecordError(f"{name} must be {kind.__name__}, got {getattr(run, name)!r}")
        held = min((len(v) for v in run.history.values() if v), default=0)
        if held and not 1 <= run.best_epoch <= held:  # readers index a curve at the kept epoch
            raise RecordError(f"best_epoch {run.best_epoch} is not one of the {held} epochs its history holds")
        return run

    def to_dict(self) -> dict:
        """The JSON-able record, as the store writes it."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "config")}
        d = {"config": self.config.to_dict(), **d, **self.extra}
        return {k: v for k, v in d.items() if k in REQUIRED or v not in ("", {}, [])}  # unset optional fields stay out

    def tagged(self, **changes) -> Run:
        """A copy with some fields changed (e.g. the variant label of the table it appears in)."""
        return replace(self, **changes)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


SUPERSEDED = " (shared draws)"
"""Appended to a row's label for its runs trained with the superseded shared-seed augmentation (``experiments``)."""
LIVE_FROM = 2
"""Seeds a live row needs before it replaces its superseded row (fewer when the superseded row has fewer): one run
gives no spread and no test, so a lone retrained seed does not yet displace three old ones."""


def _seeds(runs: list[Run]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for r in runs:
        out.setdefault(r.variant, set()).add(r.seed)
    return out


def _live_shown(seeds: dict[str, set[int]], label: str) -> bool:
    """Whether a live row's runs are read: it has some, and at least ``LIVE_FROM`` seeds or as many as its
    superseded row."""
    n, old = len(seeds.get(label, ())), len(seeds.get(label + SUPERSEDED, ()))
    return n > 0 and n >= min(LIVE_FROM, old)


def resolve(runs: list[Run], label: str) -> str:
    """The label a row's runs are shown under: ``label`` itself, or its superseded row's (``label + SUPERSEDED``)
    while that stands in (``current``); sentences print the resolved label, so they say which runs they read."""
    seeds = _seeds(runs)
    return label if _live_shown(seeds, label) or not seeds.get(label + SUPERSEDED) else label + SUPERSEDED


def current(runs: list[Run]) -> list[Run]:
    """The runs an analysis reads, one set per row: a live row's once it has ``LIVE_FROM`` seeds (or as many as its
    superseded row), its superseded row's until then; never both."""
    seeds = _seeds(runs)

    def read(variant: str) -> bool:
        if variant.endswith(SUPERSEDED):
            return not _live_shown(seeds, variant.removesuffix(SUPERSEDED))
        return _live_shown(seeds, variant) or not seeds.get(variant + SUPERSEDED)

    return [r for r in runs if read(r.variant)]


def select(runs: list[Run], variant: str | None = None, seed: int | None = None) -> list[Run]:
    """The runs of one variant (and seed), in their order."""
    return [r for r in runs if (variant is None or r.variant == variant) and (seed is None or r.seed == seed)]


def values(runs: list[Run], metric: str, variant: str | None = None) -> list[float]:
    """One metric of the runs (of one variant) that measured it."""
    return [r.metrics[metric] for r in select(runs, variant) if metric in r.metrics]


def frame(runs: list[Run]) -> pd.DataFrame:
    """The tidy table of runs: one row per (run, metric) with experiment, variant, seed,
    configuration digest and value."""
    rows = [
        {
            "experiment": r.experiment,
            "variant": r.variant,
            "seed": r.seed,
            "digest": r.config.digest(),
            "data": r.data.get("kind", ""),
            "metric": m,
            "value": float(v),
        }
        for r in runs
        for m, v in r.metrics.items()
    ]
    return pd.DataFrame(rows, columns=["experiment", "variant", "seed", "digest", "data", "metric", "value"])


def history_key(run: Run, key: str) -> str | None:
    """The history name of a metric with a validation curve ('loss', 'age_mae_years' or its single-output
    'mae_years')."""
    for k in (key, f"age_{key}", f"gender_{key}"):
        if k in run.history and f"val_{k}" in run.history:
            return k
    return None


def epoch_jumps(curve) -> np.ndarray:
    """How far a per-epoch curve moves from one epoch to the next (absolute steps; NaN for a single epoch)."""
    curve = np.asarray(curve, np.float64)
    return np.abs(np.diff(curve)) if len(curve) > 1 else np.array([np.nan])
