"""Training engine: tf.data pipelines from uint8 arrays, mixed precision, early stopping, test evaluation."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import ordinal
from .data import UTKFace
from .labels import AGE_SCALE, years_to_unit
from .layers import FusedBatchNormalization
from .models import ModelConfig, build_model
from .paths import shown
from .profiles import Profile


def cpu_has_bf16() -> bool:
    """True when the CPU has native bfloat16 instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def set_precision(mode: str = "auto") -> str:
    """Set Keras' global dtype policy: mixed_float16 on a GPU, mixed_bfloat16 on bf16 CPUs, else float32."""
    if mode == "auto":
        if tf.config.list_physical_devices("GPU"):
            mode = "mixed_float16"
        elif cpu_has_bf16():
            mode = "mixed_bfloat16"
        else:
            mode = "float32"
    keras.mixed_precision.set_dtype_policy(mode)
    return mode


def device_name() -> str:
    """A short description of what trains: the GPU's name, or the CPU and its core count."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU {details.get('device_name', gpus[0].name)}"
    return f"CPU {platform.processor() or platform.machine()} x{os.cpu_count()}"


def select_rows(data: UTKFace, split: str, config: ModelConfig) -> np.ndarray:
    """Rows of one split usable by ``config`` (ordinal heads may restrict the age range)."""
    rows = data.indices(split)
    if config.age_head != "regression" and config.tasks != "gender":
        ages = data.table.age.to_numpy()[rows]
        rows = rows[(ages >= config.age_range[0]) & (ages <= config.age_range[1])]
    return rows


def targets(data: UTKFace, rows: np.ndarray, config: ModelConfig) -> dict[str, np.ndarray]:
    """Per-output targets: normalised age (regression) or age rank (ordinal), and gender as 0/1."""
    out = {}
    ages = data.table.age.to_numpy()[rows]
    if config.tasks in ("age_gender", "age"):
        if config.age_head == "regression":
            out["age"] = years_to_unit(ages).reshape(-1, 1).astype(np.float32)
        else:
            out["age"] = (ages - config.age_range[0]).reshape(-1, 1).astype(np.int32)
    if config.tasks in ("age_gender", "gender"):
        out["gender"] = data.table.gender.to_numpy()[rows].reshape(-1, 1).astype(np.float32)
    return out


PIPELINE_THREADS = min(4, os.cpu_count() or 1)
"""Batches gathered in parallel and kept ready ahead of the model (fixed: see ``make_pipeline``)."""


def make_pipeline(images: np.ndarray, y: dict[str, np.ndarray], rows: np.ndarray, batch_size: int,
                  shuffle: bool = False, seed: int = 0, autotune: bool = False) -> tf.data.Dataset:
    """Batches of (float images in [0, 1], targets), gathered from the uint8 array batch by batch (no full copy).

    tf.data's autotuner is off by default: inside ``model.fit`` its background thread made the main thread wait
    about 15 s in most epochs on the 2-core CPU (40 s epochs instead of 23 s); fixed parallelism costs nothing.
    """
    size = images.shape[1:]
    ys = {k: tf.constant(v) for k, v in y.items()}
    positions = tf.data.Dataset.range(len(rows))
    if shuffle:
        positions = positions.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)

    def fetch(pos):
        idx = np.asarray(rows)[pos]
        order = np.argsort(idx)  # read the memory-mapped cache in order, then restore the batch order
        batch = np.empty((len(idx), *size), np.uint8)
        batch[order] = images[idx[order]]
        return batch

    def load(pos):
        x = tf.numpy_function(fetch, [pos], tf.uint8)
        x.set_shape((None, *size))
        x = tf.cast(x, tf.float32) / 255.0
        return x, {k: tf.gather(v, pos) for k, v in ys.items()}

    if autotune:
        return positions.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.autotune.enabled = False
    ds = positions.batch(batch_size).map(load, num_parallel_calls=PIPELINE_THREADS).prefetch(PIPELINE_THREADS)
    return ds.with_options(options)


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch (after ``times`` already measured, when a run is resumed)."""

    def __init__(self, times: list[float] | None = None):
        super().__init__()
        self.times: list[float] = list(times or [])

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)


class WarmEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping that may not stop before ``min_epochs``; unlike ``start_from_epoch`` it tracks the best from epoch 1.

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


def remeasure_batchnorm(model: keras.Model, batches, inference_regime: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """BatchNorm statistics re-measured on ``batches`` (images only), averaged per layer; the model is left unchanged.

    Each batch runs as in training (``training=True``: batch statistics; augmentation and dropout on, unless
    ``inference_regime`` turns dropout off). Returns one (mean, variance) pair per BatchNormalization layer, in order.
    """
    bns = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
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

    def __init__(self, images_ds: tf.data.Dataset):
        super().__init__()
        self.images_ds = images_ds

    def on_test_begin(self, logs=None):
        bns = [layer for layer in self.model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
        for b, (m, v) in zip(bns, remeasure_batchnorm(self.model, self.images_ds)):
            b.moving_mean.assign(m)
            b.moving_variance.assign(v)


PRECISE_BN_BATCHES = 50


def rule_callbacks(profile: Profile, data: UTKFace, config: ModelConfig, seed: int = 0) -> list[keras.callbacks.Callback]:
    """The callbacks a profile's training rules add to ``fit``: precise BatchNorm and a learning-rate schedule."""
    out: list[keras.callbacks.Callback] = []
    if profile.val_bn == "precise":
        train = select_rows(data, "train", config)
        n = min(len(train), PRECISE_BN_BATCHES * profile.batch_size)
        rows = np.sort(np.random.default_rng(seed).choice(train, size=n, replace=False))
        ds = make_pipeline(data.images, targets(data, rows, config), rows, profile.batch_size).map(lambda x, y: x)
        out.append(PreciseBatchNorm(ds))
    elif profile.val_bn != "moving":
        raise ValueError(f"val_bn must be 'moving' or 'precise', got {profile.val_bn!r}")
    if profile.lr_schedule == "plateau":
        out.append(keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=2, min_lr=1e-5, verbose=0))
    elif profile.lr_schedule == "cosine":
        base = config.learning_rate
        out.append(keras.callbacks.LearningRateScheduler(
            lambda epoch: float(base * 0.5 * (1 + np.cos(np.pi * min(epoch, profile.epochs) / profile.epochs)))))
    elif profile.lr_schedule != "constant":
        raise ValueError(f"lr_schedule must be 'constant', 'plateau' or 'cosine', got {profile.lr_schedule!r}")
    return out


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch, saves what resuming needs: the model with its optimizer, the history, the epoch times and
    the early-stopping state (best weights included). Files are written under new names, then a small ``state.json``
    is replaced atomically, so a run killed at any moment resumes from its last complete epoch."""

    def __init__(self, folder: Path, key: str, stop: keras.callbacks.EarlyStopping, timer: EpochTimer,
                 history: dict[str, list[float]] | None = None, wall_before: float = 0.0, resumed_at: list[int] | None = None):
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
        state = {"key": self.key, "epochs_done": epoch + 1, "model": model_file, "best_weights": self._best_file,
                 "history": self.history, "epoch_seconds": list(self.timer.times), "resumed_at": self.resumed_at,
                 "wall_seconds": self.wall_before + time.perf_counter() - self._t0,
                 "stop": {"wait": self.stop.wait, "best": None if self.stop.best is None else float(self.stop.best),
                          "best_epoch": self.stop.best_epoch, "stopped_epoch": self.stop.stopped_epoch,
                          "stopped": bool(self.model.stop_training)}}
        tmp = self.folder / f".state.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.folder / "state.json")
        for old in self.folder.iterdir():  # files of earlier epochs are no longer referenced
            if old.suffix in (".keras", ".npz") and old.name not in (model_file, self._best_file):
                old.unlink(missing_ok=True)


def read_checkpoint(folder: Path | None, key: str) -> dict | None:
    """The saved state of an interrupted run in ``folder``, or None when there is none (or it belongs to another run)."""
    if folder is None or not (Path(folder) / "state.json").exists():
        return None
    try:
        state = json.loads((Path(folder) / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"checkpoint {shown(folder)} is unreadable ({exc}); the run starts from epoch 1")
        return None
    if state.get("key") != key:
        print(f"checkpoint {shown(folder)} belongs to another run; the run starts from epoch 1")
        return None
    return {**state, "folder": str(folder)}


def run_key(config: ModelConfig, profile: Profile, seed: int, data: UTKFace) -> str:
    """What a checkpoint must match to be resumed: network, training settings, seed, dataset and split."""
    ident = [config.to_dict(), profile.training_key(), seed, data.kind, data.fingerprint, data.split_id]
    return hashlib.blake2b(json.dumps(ident, sort_keys=True).encode(), digest_size=8).hexdigest()


def fit(model: keras.Model, data: UTKFace, config: ModelConfig, profile: Profile, seed: int = 0, verbose: int | str = "auto",
        callbacks: list | None = None, checkpoint_dir: Path | None = None, checkpoint_key: str = "",
        resume: dict | None = None):
    """Train with early stopping on validation loss (best weights restored); return (history dict, epoch seconds).

    Extra ``callbacks`` run after the epoch timer, so the time they take is not counted in the epoch seconds.
    With ``checkpoint_dir`` every epoch is saved there; ``resume`` (from :func:`read_checkpoint`) continues a run
    from its last saved epoch, with its history, epoch times and early-stopping state.
    """
    start = resume["epochs_done"] if resume else 0
    tr, va = select_rows(data, "train", config), select_rows(data, "val", config)
    # a resumed run shuffles with a seed of its own, so it does not replay the first epochs' order
    train_ds = make_pipeline(data.images, targets(data, tr, config), tr, profile.batch_size, shuffle=True,
                             seed=seed + 7919 * start)
    val_ds = make_pipeline(data.images, targets(data, va, config), va, profile.batch_size)
    timer = EpochTimer(resume["epoch_seconds"] if resume else None)
    stop = WarmEarlyStopping(profile.min_epochs, monitor="val_loss", patience=profile.patience, restore_best_weights=True,
                             resume=resume)
    # rule callbacks run before early stopping and the timer: validation must see the re-measured statistics
    rules = rule_callbacks(profile, data, config, seed)
    extra = list(callbacks or [])
    if checkpoint_dir is not None:
        extra.append(EpochCheckpoint(checkpoint_dir, checkpoint_key, stop, timer,
                                     resume["history"] if resume else None, resume["wall_seconds"] if resume else 0.0,
                                     (resume["resumed_at"] + [start]) if resume else None))
    history = {k: list(v) for k, v in resume["history"].items()} if resume else {}
    if resume and (resume["stop"]["stopped"] or start >= profile.epochs):
        stop.set_model(model)
        stop.on_train_end()  # the run had finished: only the best weights remain to be restored
        return history, timer.times
    hist = model.fit(train_ds, validation_data=val_ds, epochs=profile.epochs, initial_epoch=start,
                     callbacks=[*rules, stop, timer, *extra, keras.callbacks.TerminateOnNaN()],
                     shuffle=False, verbose=verbose)  # the pipeline already shuffles
    for k, vals in hist.history.items():
        history.setdefault(k, []).extend(float(v) for v in vals)
    return history, timer.times


def evaluate(model: keras.Model, data: UTKFace, config: ModelConfig, batch_size: int = 256, split: str = "test") -> tuple[dict, dict]:
    """Test metrics (losses as Keras computes them, errors also in years) and per-image predictions."""
    rows = select_rows(data, split, config)
    y = targets(data, rows, config)
    ds = make_pipeline(data.images, y, rows, batch_size)
    keras_metrics = model.evaluate(ds, return_dict=True, verbose=0)
    raw = model.predict(ds, verbose=0)
    metrics = {"loss": float(keras_metrics["loss"])}
    preds: dict[str, list] = {"file": data.table.file.to_numpy()[rows].tolist()}
    true_years = data.table.age.to_numpy()[rows].astype(np.float64)
    if "age" in raw:
        if config.age_head == "regression":
            age_years = raw["age"].reshape(-1).astype(np.float64) * AGE_SCALE
            metrics["age_loss"] = float(np.mean((age_years - true_years) ** 2) / AGE_SCALE**2)
        else:
            logits = np.asarray(raw["age"], np.float64)
            age_years = ordinal.predict_ranks(config.age_head, logits) + config.age_range[0]
            metrics["age_loss"] = float(keras_metrics.get("age_loss", keras_metrics["loss"]))  # the ordinal loss
            metrics["rank_consistency"] = ordinal.rank_consistency(config.age_head, logits)
        err = age_years - true_years
        metrics["age_mae"] = float(np.mean(np.abs(err)) / AGE_SCALE)
        metrics["age_mae_years"] = float(np.mean(np.abs(err)))
        metrics["age_rmse_years"] = float(np.sqrt(np.mean(err**2)))
        metrics["age_mse"] = float(np.mean(err**2) / AGE_SCALE**2)
        preds["age_true"] = true_years.astype(int).tolist()
        preds["age_pred"] = np.round(age_years, 2).tolist()
    if "gender" in raw:
        p = np.clip(raw["gender"].reshape(-1).astype(np.float64), 1e-7, 1 - 1e-7)
        g = data.table.gender.to_numpy()[rows]
        metrics["gender_loss"] = float(-np.mean(g * np.log(p) + (1 - g) * np.log(1 - p)))
        metrics["gender_accuracy"] = float(np.mean((p > 0.5) == g))
        preds["gender_true"] = g.astype(int).tolist()
        preds["gender_prob"] = np.round(p, 4).tolist()
    return metrics, preds


def train_run(config: ModelConfig, data: UTKFace, profile: Profile, seed: int = 0, verbose: int | str = "auto",
              precision: str = "auto", save_to: Path | None = None, probes: list | None = None,
              checkpoint_dir: Path | None = None, jit_compile: bool | str = "auto") -> dict:
    """Train one variant with one seed and return a complete run record (config, metrics, history, predictions).

    ``probes`` are callbacks with a ``key`` and a ``record`` dict (e.g. ``diagnostics.BNProbe``); their records are kept.
    ``checkpoint_dir``: save every epoch there and resume from it when it holds this run's state (runs with probes
    always start afresh: a probe's measurements are not saved). ``jit_compile``: Keras' setting ('auto' uses XLA on
    a GPU only).
    """
    keras.utils.set_random_seed(seed)
    policy = set_precision(precision)
    t0 = time.perf_counter()
    key = run_key(config, profile, seed, data)
    if probes:
        checkpoint_dir = None
    resume = read_checkpoint(checkpoint_dir, key)
    model = None
    if resume:
        try:
            model = keras.saving.load_model(Path(resume["folder"]) / resume["model"])
            print(f"resuming from {shown(checkpoint_dir)} after epoch {resume['epochs_done']}", flush=True)
        except Exception as exc:  # noqa: BLE001 - a checkpoint from older code: start afresh, say so
            print(f"checkpoint {shown(checkpoint_dir)} could not be loaded ({type(exc).__name__}: {exc}); "
                  "the run starts from epoch 1", flush=True)
            resume = None
    if model is None:
        model = build_model(config, data.size, seed=seed)
    if jit_compile != "auto":
        model.jit_compile = jit_compile
    history, epoch_seconds = fit(model, data, config, profile, seed, verbose, callbacks=probes,
                                 checkpoint_dir=checkpoint_dir, checkpoint_key=key, resume=resume)
    metrics, preds = evaluate(model, data, config)
    if save_to is not None:
        Path(save_to).parent.mkdir(parents=True, exist_ok=True)
        model.save(save_to)
    best = int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else len(epoch_seconds)
    record = {
        "config": config.to_dict(),
        "seed": seed,
        "profile": profile.to_dict(),
        "data": {"kind": data.kind, "fingerprint": data.fingerprint, "split_id": data.split_id, "image_size": data.size,
                 "train": int(len(select_rows(data, "train", config))), "test": int(len(preds["file"]))},
        "metrics": metrics,
        "history": history,
        "epochs_run": len(epoch_seconds),
        "best_epoch": best,
        "epoch_seconds": [round(t, 2) for t in epoch_seconds],
        "wall_seconds": round(time.perf_counter() - t0 + (resume["wall_seconds"] if resume else 0.0), 1),
        "params": int(model.count_params()),
        "precision": policy,
        "jit_compile": bool(model.jit_compile),
        "batchnorm": "fused" if any(isinstance(layer, FusedBatchNormalization) for layer in model.layers) else "keras",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()},
        "device": device_name(),
        "predictions": preds,
    }
    if resume:
        record["resumed_at"] = resume["resumed_at"] + [resume["epochs_done"]]  # epochs after which it was restarted
    if probes:
        record["probes"] = {p.key: p.record for p in probes}
    return record
