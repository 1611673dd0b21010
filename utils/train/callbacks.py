"""What happens at the end of each epoch: timing, the progress line, early stopping with a warm-up, BatchNorm
re-measured on training batches (the precise-BN rule), and the epoch checkpoint a run resumes from."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import keras
import numpy as np

from ..base import files
from ..base.paths import shown
from ..base.profiles import Profile
from ..data import UTKFace
from ..nets.models import ModelConfig
from .pipeline import ImagesOnly, make_pipeline, select_rows, targets


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch (after ``times`` already measured, when a run is resumed)."""

    def __init__(self, times: list[float] | None = None):
        super().__init__()
        self.times: list[float] = list(times or [])

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)


class ProgressLine(keras.callbacks.Callback):
    """One line per epoch for a run in the background: epoch, losses, the best so far, seconds, and time left.

    Time left is a range: the epochs still allowed if validation stops improving now (patience), to the cap.
    """

    def __init__(self, stop: keras.callbacks.EarlyStopping, timer: EpochTimer, epochs: int, min_epochs: int = 0):
        super().__init__()
        self.stop, self.timer, self.epochs, self.min_epochs = stop, timer, epochs, min_epochs

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        done = epoch + 1
        sec = float(np.median(self.timer.times[-5:])) if self.timer.times else 0.0
        soonest = min(self.epochs, max(self.min_epochs, done + max(self.stop.patience - self.stop.wait, 0)))
        shown_logs = "  ".join(f"{k} {logs[k]:.4f}" for k in ("loss", "val_loss") if k in logs)
        best = f"best {self.stop.best:.4f} @ {self.stop.best_epoch + 1}" if self.stop.best is not None else ""
        eta = (
            f"left {(soonest - done) * sec / 60:.0f}-{(self.epochs - done) * sec / 60:.0f} min"
            if done < self.epochs
            else "cap reached"
        )
        print(
            f"  epoch {done}/{self.epochs}  {shown_logs}  {best}  "
            f"{self.timer.times[-1] if self.timer.times else 0:.0f} s  {eta}",
            flush=True,
        )


class WarmEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping that may not stop before ``min_epochs``; unlike ``start_from_epoch`` it tracks the best from
    epoch 1.

    A run that plain early stopping would end at epoch ``min_epochs`` or later ends identically with this one.
    """

    def __init__(self, min_epochs: int = 0, resume: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.min_epochs = min_epochs
        self.resume = resume

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.resume:  # continue counting patience, and keep the best epoch, from where the run stopped
            st = self.resume["stop"]
            self.wait, self.best, self.best_epoch = st["wait"], st["best"], st["best_epoch"]
            if self.resume.get("best_weights"):
                with np.load(Path(self.resume["folder"]) / self.resume["best_weights"]) as f:
                    self.best_weights = [f[f"arr_{i}"] for i in range(len(f.files))]

    def on_epoch_end(self, epoch, logs=None):
        already = bool(self.model.stop_training)  # e.g. TerminateOnNaN: never overridden
        super().on_epoch_end(epoch, logs)
        if not already and self.stopped_epoch == epoch and epoch + 1 < self.min_epochs:
            self.model.stop_training = False
            self.stopped_epoch = 0


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer of a model (nested ones included), in the model's order."""
    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]


def remeasure_batchnorm(
    model: keras.Model, batches, inference_regime: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """BatchNorm statistics re-measured on ``batches`` (images only), averaged per layer; the model is left unchanged.

    Each batch runs as in training (``training=True``: batch statistics; augmentation and dropout on, unless
    ``inference_regime`` turns dropout off). Returns one (mean, variance) pair per BatchNormalization layer, in order.
    """
    bns = batchnorm_layers(model)
    dropouts = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dropout)]
    saved = [(b.moving_mean.numpy(), b.moving_variance.numpy(), b.momentum) for b in bns]
    rates = [d.rate for d in dropouts]
    sums = [[np.zeros(b.moving_mean.shape), np.zeros(b.moving_variance.shape)] for b in bns]
    n = 0
    try:
        for b in bns:
            b.momentum = 0.0  # each forward pass leaves exactly that batch's statistics in the averages
        if inference_regime:
            for d in dropouts:
                d.rate = 0.0
        for x in batches:
            model(x, training=True)
            n += 1
            for acc, b in zip(sums, bns):
                acc[0] += b.moving_mean.numpy()
                acc[1] += b.moving_variance.numpy()
    finally:
        for b, (m, v, mom) in zip(bns, saved):
            b.moving_mean.assign(m)
            b.moving_variance.assign(v)
            b.momentum = mom
        for d, r in zip(dropouts, rates):
            d.rate = r
    if n == 0:
        raise ValueError("remeasure_batchnorm needs at least one batch")
    return [(m / n, v / n) for m, v in sums]


class PreciseBatchNorm(keras.callbacks.Callback):
    """Before every validation pass in ``fit``, replace BatchNorm's moving averages by statistics re-measured on a
    fixed sample of training batches (precise BatchNorm, Wu & Johnson 2021), so early stopping judges the weights
    rather than the averages' lag. The best weights early stopping keeps carry these statistics, and so does the test.
    """

    def __init__(self, images_ds):
        super().__init__()
        self.images_ds = images_ds

    def on_test_begin(self, logs=None):
        for b, (m, v) in zip(batchnorm_layers(self.model), remeasure_batchnorm(self.model, self.images_ds)):
            b.moving_mean.assign(m)
            b.moving_variance.assign(v)


PRECISE_BN_BATCHES = 50


def rule_callbacks(
    profile: Profile, data: UTKFace, config: ModelConfig, seed: int = 0
) -> list[keras.callbacks.Callback]:
    """The callbacks a profile's training rules add to ``fit``: precise BatchNorm and a learning-rate schedule."""
    out: list[keras.callbacks.Callback] = []
    if profile.val_bn == "precise":
        # from the whole training split, not only a profile's sample of it (the class profile's 6,000 faces): faces of
        # the same distribution, none of validation or test; every stored run with this rule was re-measured this way
        train = select_rows(data, "train", config)
        n = min(len(train), PRECISE_BN_BATCHES * profile.batch_size)
        rows = np.sort(np.random.default_rng(seed).choice(train, size=n, replace=False))
        out.append(
            PreciseBatchNorm(
                ImagesOnly(make_pipeline(data.images, targets(data, rows, config), rows, profile.batch_size))
            )
        )
    elif profile.val_bn != "moving":
        raise ValueError(f"val_bn must be 'moving' or 'precise', got {profile.val_bn!r}")
    if profile.lr_schedule == "plateau":
        out.append(keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=2, min_lr=1e-5, verbose=0))
    elif profile.lr_schedule == "cosine":
        base = config.learning_rate
        out.append(
            keras.callbacks.LearningRateScheduler(
                lambda epoch: float(base * 0.5 * (1 + np.cos(np.pi * min(epoch, profile.epochs) / profile.epochs)))
            )
        )
    elif profile.lr_schedule != "constant":
        raise ValueError(f"lr_schedule must be 'constant', 'plateau' or 'cosine', got {profile.lr_schedule!r}")
    return out


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch, saves what resuming needs: the model with its optimizer, the history, the epoch times and
    the early-stopping state (best weights included). Files are written under new names, then a small ``state.json``
    is replaced atomically, so a run killed at any moment resumes from its last complete epoch."""

    def __init__(
        self,
        folder: Path,
        key: str,
        stop: keras.callbacks.EarlyStopping,
        timer: EpochTimer,
        history: dict[str, list[float]] | None = None,
        wall_before: float = 0.0,
        resumed_at: list[int] | None = None,
    ):
        super().__init__()
        self.folder, self.key, self.stop, self.timer = Path(folder), key, stop, timer
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.wall_before, self.resumed_at = wall_before, list(resumed_at or [])
        self._t0 = time.perf_counter()
        self._best_file: str | None = None

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(float(v))
        self.folder.mkdir(parents=True, exist_ok=True)
        model_file = f"model-{epoch + 1}.keras"
        self.model.save(self.folder / model_file)
        if self.stop.best_weights is not None and (self._best_file is None or self.stop.best_epoch == epoch):
            self._best_file = f"best-{epoch + 1}.npz"
            np.savez(self.folder / self._best_file, *self.stop.best_weights)
        state = {
            "key": self.key,
            "epochs_done": epoch + 1,
            "model": model_file,
            "best_weights": self._best_file,
            "history": self.history,
            "epoch_seconds": list(self.timer.times),
            "resumed_at": self.resumed_at,
            "wall_seconds": self.wall_before + time.perf_counter() - self._t0,
            "stop": {
                "wait": self.stop.wait,
                "best": None if self.stop.best is None else float(self.stop.best),
                "best_epoch": self.stop.best_epoch,
                "stopped_epoch": self.stop.stopped_epoch,
                "stopped": bool(self.model.stop_training),
            },
        }
        files.write_text(self.folder / "state.json", json.dumps(state))
        for old in self.folder.iterdir():  # files of earlier epochs are no longer referenced
            if old.suffix in (".keras", ".npz") and old.name not in (model_file, self._best_file):
                old.unlink(missing_ok=True)


def read_checkpoint(folder: Path | None, key: str) -> dict | None:
    """The saved state of an interrupted run in ``folder``, or None when there is none (or it belongs to another
    run)."""
    if folder is None or not (Path(folder) / "state.json").exists():
        return None
    try:
        state = json.loads(files.read_text(Path(folder) / "state.json", 1 << 24, "checkpoint state"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"checkpoint {shown(folder)} is unreadable ({exc}); the run starts from epoch 1")
        return None
    needed = {"key": str, "epochs_done": int, "model": str, "history": dict, "epoch_seconds": list, "stop": dict}
    if (
        not isinstance(state, dict)
        or state.get("key") == key
        and any(not isinstance(state.get(k), t) for k, t in needed.items())
    ):
        print(f"checkpoint {shown(folder)} is not a checkpoint this course wrote; the run starts from epoch 1")
        return None
    if state.get("key") != key:
        print(f"checkpoint {shown(folder)} belongs to another run; the run starts from epoch 1")
        return None
    return {**state, "folder": str(folder)}


def run_key(config: ModelConfig, profile: Profile, seed: int, data: UTKFace) -> str:
    """What a checkpoint must match to be resumed: network, training settings, seed, dataset, split and encoding."""
    ident = [config.to_dict(), profile.training_key(), seed, data.kind, data.fingerprint, data.split_id]
    if data.encoding != "jpeg":  # re-encoded pixels never resume a run of the original ones (keys of those unchanged)
        ident.append(data.encoding)
    return hashlib.blake2b(json.dumps(ident, sort_keys=True).encode(), digest_size=8).hexdigest()
