"""Training engine: tf.data pipelines from uint8 arrays, mixed precision, early stopping, test evaluation."""
from __future__ import annotations

import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import heads
from .data import UTKFace
from .layers import FusedBatchNormalization
from .models import ModelConfig, build_model, compile_model, set_body_trainable
from .profiles import Profile
from .runs import Run


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
    """Rows of one split usable by ``config`` (each head may restrict them, e.g. an ordinal head's age range)."""
    rows = data.indices(split)
    for head in heads.for_config(config):
        rows = head.rows(data.table, rows, config)
    return rows


def targets(data: UTKFace, rows: np.ndarray, config: ModelConfig) -> dict[str, np.ndarray]:
    """Per-output targets, as each head wants them (normalised age, age rank, gender 0/1)."""
    return {head.output: head.targets(data.table, rows, config) for head in heads.for_config(config)}


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
    """Records the wall time of every epoch."""

    def on_train_begin(self, logs=None):
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)


class WarmEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping that may not stop before ``min_epochs``; unlike ``start_from_epoch`` it tracks the best from epoch 1.

    A run that plain early stopping would end at epoch ``min_epochs`` or later ends identically with this one.
    """

    def __init__(self, min_epochs: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.min_epochs = min_epochs

    def on_epoch_end(self, epoch, logs=None):
        already = bool(self.model.stop_training)  # e.g. TerminateOnNaN: never overridden
        super().on_epoch_end(epoch, logs)
        if not already and self.stopped_epoch == epoch and epoch + 1 < self.min_epochs:
            self.model.stop_training = False
            self.stopped_epoch = 0


def fit(model: keras.Model, data: UTKFace, config: ModelConfig, profile: Profile, seed: int = 0, verbose: int | str = "auto",
        callbacks: list | None = None):
    """Train with early stopping on validation loss (best weights restored); return (history dict, epoch seconds).

    Extra ``callbacks`` run after the epoch timer, so the time they take is not counted in the epoch seconds.
    """
    tr, va = select_rows(data, "train", config), select_rows(data, "val", config)
    train_ds = make_pipeline(data.images, targets(data, tr, config), tr, profile.batch_size, shuffle=True, seed=seed)
    val_ds = make_pipeline(data.images, targets(data, va, config), va, profile.batch_size)
    timer = EpochTimer()
    stop = WarmEarlyStopping(profile.min_epochs, monitor="val_loss", patience=profile.patience, restore_best_weights=True)
    hist = model.fit(train_ds, validation_data=val_ds, epochs=profile.epochs, callbacks=[stop, timer, *(callbacks or []), keras.callbacks.TerminateOnNaN()],
                     shuffle=False, verbose=verbose)  # the pipeline already shuffles
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
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
    for head in heads.for_config(config):
        m, p = head.score(raw[head.output], data.table, rows, keras_metrics, config)
        metrics.update(m)
        preds.update(p)
    return metrics, preds


FINE_TUNE_LR = 0.1
"""After a pretrained body is unfrozen, it is fine-tuned at this fraction of the configured learning rate."""


def fit_in_phases(model: keras.Model, data: UTKFace, config: ModelConfig, profile: Profile, seed: int = 0,
                  verbose: int | str = "auto", callbacks: list | None = None):
    """``fit``, or for ``config.freeze_epochs`` > 0: the heads alone on a frozen pretrained body, then everything fine-tuned.

    Returns one history and one list of epoch seconds over both phases.
    """
    if not config.freeze_epochs:
        return fit(model, data, config, profile, seed, verbose, callbacks)
    set_body_trainable(model, config, False)
    compile_model(model, config)
    first = replace(profile, epochs=min(config.freeze_epochs, profile.epochs), min_epochs=0)
    history, seconds = fit(model, data, config, first, seed, verbose, callbacks)
    if profile.epochs > len(seconds):
        set_body_trainable(model, config, True)
        compile_model(model, config, learning_rate=config.learning_rate * FINE_TUNE_LR)
        rest = replace(profile, epochs=profile.epochs - len(seconds), min_epochs=max(profile.min_epochs - len(seconds), 0))
        more, more_seconds = fit(model, data, config, rest, seed + 1, verbose, callbacks)
        history = {k: v + more.get(k, []) for k, v in history.items()}
        seconds = seconds + more_seconds
    return history, seconds


def train_run(config: ModelConfig, data: UTKFace, profile: Profile, seed: int = 0, verbose: int | str = "auto",
              precision: str = "auto", save_to: Path | None = None, probes: list | None = None) -> Run:
    """Train one variant with one seed and return a complete run record (config, metrics, history, predictions).

    ``probes`` are callbacks with a ``key`` and a ``record`` dict (e.g. ``probes.BNProbe``); their records are kept.
    """
    keras.utils.set_random_seed(seed)
    policy = set_precision(precision)
    t0 = time.perf_counter()
    model = build_model(config, data.size, seed=seed)
    history, epoch_seconds = fit_in_phases(model, data, config, profile, seed, verbose, callbacks=probes)
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
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "params": int(model.count_params()),
        "precision": policy,
        "batchnorm": "fused" if any(isinstance(layer, FusedBatchNormalization) for layer in model.layers) else "keras",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()},
        "device": device_name(),
        "predictions": preds,
    }
    if probes:
        record["probes"] = {p.key: p.record for p in probes}
    return Run.from_dict(record)
