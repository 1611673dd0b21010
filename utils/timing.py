"""What a run costs on this machine: its epoch time (this machine's stored runs of its kind, else its checkpoint, else
a short timing, kept in ``SPEED_FILE``) and its expected epochs (the stored runs of its profile); the run queue
(``utils.queue``) prices each missing run with them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .base.paths import RESULTS_DIR, USER_CACHE, checkpoint_folder
from .base.profiles import Profile

if TYPE_CHECKING:
    from .data import UTKFace
    from .nets.models import ModelConfig

SPEED_FILE = USER_CACHE / "speed.json"
"""Epoch times measured on this machine, by device, precision, image size and network kind."""


def expected_epochs(
    profile: Profile, experiment: str, config: ModelConfig | None = None, root: Path = RESULTS_DIR
) -> tuple[float, str]:
    """Median epochs of this profile's stored runs most like this one (kind, experiment, any), else 3 patiences."""
    import numpy as np

    runs = _records(root, profile.name)
    picks = [("experiment", [r for r in runs if r.get("experiment") == experiment]), ("profile", runs)]
    if config is not None:
        kind = (config.tasks, bool(config.augment))
        like = [r for r in runs if (r.get("config", {}).get("tasks"), bool(r.get("config", {}).get("augment"))) == kind]
        picks.insert(0, (f"{config.tasks}{', augmented' if config.augment else ''}", like))
    for what, pick in picks:
        epochs = [r["epochs_run"] for r in pick if isinstance(r.get("epochs_run"), int)]
        if epochs:
            return float(np.median(epochs)), f"median of {len(epochs)} stored ({what})"
    return float(min(profile.epochs, max(profile.min_epochs, 3 * profile.patience))), "3 patiences"


def checkpoint_state(run: Path) -> dict | None:
    """The epoch checkpoint's state of the run stored at ``run`` on this machine (None without a readable one)."""
    state = checkpoint_folder(run) / "state.json"
    try:
        found = json.loads(state.read_text()) if state.is_file() else None
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def epochs_left(profile: Profile, expected: float, state: dict | None) -> float:
    """Epochs still to train: ``expected`` less those a checkpoint (``state``) holds, at least what early stopping
    still needs (patience less the epochs already waited, and the profile's minimum), never past the cap."""
    if not state or not isinstance(state.get("epochs_done"), int):
        return expected
    done, stop = state["epochs_done"], state.get("stop") or {}
    if stop.get("stopped"):
        return 0.0
    still = max(expected - done, profile.patience - int(stop.get("wait", 0)), profile.min_epochs - done, 1)
    return float(max(0, min(still, profile.epochs - done)))


def _records(root: Path, profile_name: str) -> list[dict]:
    out = []
    for folder in Path(root).glob(f"{profile_name}-*"):
        if not folder.name.startswith(profile_name + "-") or folder.name[len(profile_name) + 1 :].count("-") != 1:
            continue  # 'laptop-long-real-…' is not a 'laptop' folder
        for path in folder.rglob("*.json"):
            try:
                record = json.loads(path.read_text()) if path.is_file() and path.stat().st_size < 50_000_000 else None
            except (OSError, ValueError):
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


def speed_key(device: str, precision: str, image_size: int, config: ModelConfig) -> str:
    """What an epoch time depends on, as a key: the machine, the precision, the image size, the tasks, augmentation."""
    return f"{device}|{precision}|{image_size}|{config.tasks}|{'aug' if config.augment else 'plain'}"


def epoch_seconds(
    config: ModelConfig,
    profile: Profile,
    run: Path,
    data: UTKFace,
    device: str,
    precision: str,
    measure: bool,
    root: Path = RESULTS_DIR,
) -> tuple[float | None, str]:
    """The epoch time here of the run stored at ``run``: stored runs of its kind here (the same tasks and augmentation,
    any body or head), else its checkpoint, else a timing (kept, or taken now). A checkpoint comes second: its few
    epochs may have run beside other work."""
    import numpy as np

    same = [
        r
        for r in _records(root, profile.name)
        if r.get("device") == device
        and r.get("precision") == precision
        and r.get("config", {}).get("tasks") == config.tasks
        and bool(r.get("config", {}).get("augment")) == bool(config.augment)
    ]
    timed = [r.get("epoch_seconds", [])[1:] for r in same]  # the first epoch includes compiling
    times = [t for ts in timed for t in ts]
    if times:
        n = sum(1 for ts in timed if ts)
        return float(np.median(times)), f"{n} stored run{'' if n == 1 else 's'} here"
    times = (checkpoint_state(run) or {}).get("epoch_seconds")
    if times:
        return float(np.median(times)), "its checkpoint"
    key = speed_key(device, precision, profile.image_size, config)
    speeds = _read_speeds()
    if key not in speeds and measure:
        speeds[key] = time_epoch(config, profile, precision, data)
        _write_speeds(speeds)
    return (speeds[key], "timed here") if key in speeds else (None, "not timed")


def _read_speeds() -> dict[str, float]:
    try:
        return {k: float(v) for k, v in json.loads(SPEED_FILE.read_text()).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _write_speeds(speeds: dict[str, float]) -> None:
    SPEED_FILE.parent.mkdir(parents=True, exist_ok=True)
    tmp = SPEED_FILE.with_name(f".{SPEED_FILE.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(speeds, indent=1, sort_keys=True))
    os.replace(tmp, SPEED_FILE)


def time_epoch(config: ModelConfig, profile: Profile, precision: str, data: UTKFace, steps: int = 20) -> float:
    """Seconds per epoch here: ``steps`` timed training steps (3 to warm up), scaled to the split, plus validation."""
    # the validation pass is counted at a third of a training step per batch
    from .base.settings import run_settings
    from .nets.models import build_model
    from .train.pipeline import make_pipeline, select_rows, targets, training_rows

    train, val = training_rows(data, config, profile), select_rows(data, "val", config)
    rows = train[: (steps + 3) * profile.batch_size]
    with run_settings(0, precision):
        model = build_model(config, profile.image_size, seed=0)
        batches = iter(make_pipeline(data.images, targets(data, rows, config), rows, profile.batch_size))
        for _ in range(3):
            model.train_on_batch(*next(batches))
        t0 = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(*next(batches))
        per_step = (time.perf_counter() - t0) / steps
    return per_step * (len(train) / profile.batch_size + len(val) / profile.batch_size / 3)
