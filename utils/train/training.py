"""Training engine: tf.data pipelines from uint8 arrays, mixed precision, early stopping, test evaluation.

On the TensorFlow backend batches come from tf.data; on another backend (JAX, on a lent GPU machine without
TensorFlow) from a ``keras.utils.PyDataset`` that yields the same batches. TensorFlow is imported only on its backend.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
from filelock import FileLock, Timeout

from ..base import files
from ..base.paths import shown
from ..base.profiles import Profile, has_gpu
from ..base.settings import run_settings
from ..data import UTKFace
from ..nets import heads
from ..nets.layers import FusedBatchNormalization
from ..nets.models import ModelConfig, build_model, compile_model, set_body_trainable
from .runs import Run

BACKEND = keras.backend.backend()
if BACKEND == "tensorflow":
    import tensorflow as tf
else:  # e.g. KERAS_BACKEND=jax on a GPU machine that has no TensorFlow
    tf = None


def cpu_has_bf16() -> bool:
    """True when the CPU has native bfloat16 instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


PRECISION_ENV = "UTKFACE_PRECISION"
"""Set to a dtype policy (float32, mixed_bfloat16) to make 'auto' pick it: how the suite tests the other CPU's path."""


def resolve_precision(mode: str = "auto") -> str:
    """The dtype policy 'auto' means here: $UTKFACE_PRECISION if set, else mixed_float16 on a GPU, mixed_bfloat16 on
    bf16 CPUs, float32 otherwise."""
    if mode == "auto":
        mode = os.environ.get(PRECISION_ENV, "auto")
    if mode != "auto":
        return mode
    if has_gpu():
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"


def set_precision(mode: str = "auto") -> str:
    """Set Keras' global dtype policy for the rest of the session (a notebook's setup); runs use ``run_settings``."""
    mode = resolve_precision(mode)
    keras.mixed_precision.set_dtype_policy(mode)
    return mode


def versions() -> dict[str, str]:
    """The backend, its library's version, Keras' and Python's (every record keeps them)."""
    if tf is not None:
        lib = {"tensorflow": tf.__version__}
    else:
        import importlib

        lib = {BACKEND: getattr(importlib.import_module(BACKEND), "__version__", "?")}
    return {"backend": BACKEND, **lib, "keras": keras.__version__, "python": platform.python_version()}


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (e.g. 'AMD EPYC'), or the machine type when it is not known."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name() -> str:
    """What trains: the GPU's name, or the CPU's model, core count and whether it has bfloat16 instructions."""
    if has_gpu():
        if tf is None:
            import jax

            return f"GPU {jax.devices()[0].device_kind}"
        gpus = tf.config.list_physical_devices("GPU")
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU {details.get('device_name', gpus[0].name)}"
    return f"CPU {cpu_model()} x{os.cpu_count()}" + (" bf16" if cpu_has_bf16() else "")


def select_rows(data: UTKFace, split: str, config: ModelConfig) -> np.ndarray:
    """Rows of one split usable by ``config`` (each head may restrict them, e.g. an ordinal head's age range)."""
    rows = data.indices(split)
    for head in heads.for_config(config):
        rows = head.rows(data.table, rows, config)
    return rows


def training_rows(data: UTKFace, config: ModelConfig, profile: Profile) -> np.ndarray:
    """The training rows a profile trains on: all of them, or its fixed sample of ``train_faces`` (seed 0 for every
    run, so that runs of different seeds differ by their seed alone)."""
    rows = select_rows(data, "train", config)
    if profile.train_faces and profile.train_faces < len(rows):
        rows = np.sort(np.random.default_rng(0).choice(rows, size=profile.train_faces, replace=False))
    return rows


def targets(data: UTKFace, rows: np.ndarray, config: ModelConfig) -> dict[str, np.ndarray]:
    """Per-output targets, as each head wants them (normalised age, age rank, gender 0/1)."""
    return {head.output: head.targets(data.table, rows, config) for head in heads.for_config(config)}


PIPELINE_THREADS = min(4, os.cpu_count() or 1)
"""Batches gathered in parallel and kept ready ahead of the model (fixed: see ``make_pipeline``)."""


class ArrayBatches(keras.utils.PyDataset):
    """The same batches as ``make_pipeline`` for a backend without tf.data: (float images in [0, 1], targets), read
    from the uint8 array one batch at a time, reshuffled after every epoch when ``shuffle``."""

    def __init__(
        self,
        images: np.ndarray,
        y: dict[str, np.ndarray],
        rows: np.ndarray,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        self.images, self.y, self.rows, self.batch_size = images, y, np.asarray(rows), batch_size
        self.shuffle, self.rng = shuffle, np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.rows)) if shuffle else np.arange(len(self.rows))

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def __getitem__(self, i: int):
        pos = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        idx = self.rows[pos]
        order = np.argsort(idx)  # read the memory-mapped cache in order, then restore the batch order
        batch = np.empty((len(idx), *self.images.shape[1:]), np.uint8)
        batch[order] = self.images[idx[order]]
        return batch.astype(np.float32) / 255.0, {k: v[pos] for k, v in self.y.items()}

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(len(self.rows))


class ImagesOnly:
    """The images of a pipeline's batches, without their targets (what BatchNorm re-measuring feeds the model)."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        if isinstance(self.batches, keras.utils.PyDataset):
            for i in range(len(self.batches)):
                yield self.batches[i][0]
        else:
            for x, _ in self.batches:
                yield x


def make_pipeline(
    images: np.ndarray,
    y: dict[str, np.ndarray],
    rows: np.ndarray,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    autotune: bool = False,
):
    """Batches of (float images in [0, 1], targets), gathered from the uint8 array batch by batch (no full copy):
    a tf.data pipeline on TensorFlow, an ``ArrayBatches`` PyDataset on another backend.

    tf.data's autotuner is off by default: inside ``model.fit`` its background thread made the main thread wait
    about 15 s in most epochs on the 2-core CPU (40 s epochs instead of 23 s); fixed parallelism costs nothing.
    """
    if tf is None:
        return ArrayBatches(images, y, rows, batch_size, shuffle, seed)
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
    """What a checkpoint must match to be resumed: network, training settings, seed, dataset and split."""
    ident = [config.to_dict(), profile.training_key(), seed, data.kind, data.fingerprint, data.split_id]
    return hashlib.blake2b(json.dumps(ident, sort_keys=True).encode(), digest_size=8).hexdigest()


def fit(
    model: keras.Model,
    data: UTKFace,
    config: ModelConfig,
    profile: Profile,
    seed: int = 0,
    verbose: int | str = "auto",
    callbacks: list | None = None,
    checkpoint_dir: Path | None = None,
    checkpoint_key: str = "",
    resume: dict | None = None,
):
    """Train with early stopping on validation loss (best weights restored); return (history dict, epoch seconds).

    Extra ``callbacks`` run after the epoch timer, so the time they take is not counted in the epoch seconds.
    ``verbose="progress"``: one plain line per epoch (``ProgressLine``) instead of Keras' progress bar.
    With ``checkpoint_dir`` every epoch is saved there; ``resume`` (from :func:`read_checkpoint`) continues a run
    from its last saved epoch, with its history, epoch times and early-stopping state.
    """
    start = resume["epochs_done"] if resume else 0
    tr, va = training_rows(data, config, profile), select_rows(data, "val", config)
    # a resumed run shuffles with a seed of its own, so it does not replay the first epochs' order
    train_ds = make_pipeline(
        data.images, targets(data, tr, config), tr, profile.batch_size, shuffle=True, seed=seed + 7919 * start
    )
    val_ds = make_pipeline(data.images, targets(data, va, config), va, profile.batch_size)
    timer = EpochTimer(resume["epoch_seconds"] if resume else None)
    stop = WarmEarlyStopping(
        profile.min_epochs, monitor="val_loss", patience=profile.patience, restore_best_weights=True, resume=resume
    )
    # rule callbacks run before early stopping and the timer: validation must see the re-measured statistics
    rules = rule_callbacks(profile, data, config, seed)
    extra = list(callbacks or [])
    if checkpoint_dir is not None:
        extra.append(
            EpochCheckpoint(
                checkpoint_dir,
                checkpoint_key,
                stop,
                timer,
                resume["history"] if resume else None,
                resume["wall_seconds"] if resume else 0.0,
                (resume["resumed_at"] + [start]) if resume else None,
            )
        )
    if verbose == "progress":  # after early stopping has counted this epoch
        extra.append(ProgressLine(stop, timer, profile.epochs, profile.min_epochs))
        verbose = 0
    history = {k: list(v) for k, v in resume["history"].items()} if resume else {}
    if resume and (resume["stop"]["stopped"] or start >= profile.epochs):
        stop.set_model(model)
        stop.on_train_begin()  # loads the kept best weights from the checkpoint
        stop.on_train_end()  # the run had finished: only the best weights remain to be restored
        return history, timer.times
    hist = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=profile.epochs,
        initial_epoch=start,
        callbacks=[*rules, stop, timer, *extra, keras.callbacks.TerminateOnNaN()],
        shuffle=False,
        verbose=verbose,
    )  # the pipeline already shuffles
    for k, vals in hist.history.items():
        history.setdefault(k, []).extend(float(v) for v in vals)
    return history, timer.times


def evaluate(
    model: keras.Model, data: UTKFace, config: ModelConfig, batch_size: int = 256, split: str = "test"
) -> tuple[dict, dict]:
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


def fit_in_phases(
    model: keras.Model,
    data: UTKFace,
    config: ModelConfig,
    profile: Profile,
    seed: int = 0,
    verbose: int | str = "auto",
    callbacks: list | None = None,
):
    """``fit``, or for ``config.freeze_epochs`` > 0: the heads alone on a frozen pretrained body, then everything
    fine-tuned.

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
        rest = replace(
            profile, epochs=profile.epochs - len(seconds), min_epochs=max(profile.min_epochs - len(seconds), 0)
        )
        more, more_seconds = fit(model, data, config, rest, seed + 1, verbose, callbacks)
        history = {k: v + more.get(k, []) for k, v in history.items()}
        seconds = seconds + more_seconds
    return history, seconds


def train_run(
    config: ModelConfig,
    data: UTKFace,
    profile: Profile,
    seed: int = 0,
    verbose: int | str = "auto",
    precision: str = "auto",
    save_to: Path | None = None,
    probes: list | None = None,
    checkpoint_dir: Path | None = None,
    jit_compile: bool | str = "auto",
    build: Callable[[ModelConfig, int], keras.Model] | None = None,
) -> Run:
    """Train one variant with one seed and return a complete run record (config, metrics, history, predictions).

    ``probes`` are callbacks with a ``key`` and a ``record`` dict (e.g. ``probes.BNProbe``); their records are kept.
    ``checkpoint_dir``: save every epoch there and resume from it when it holds this run's state (runs with probes,
    and freeze-then-unfreeze runs, always start afresh: a probe's measurements and the phases are not saved).
    ``jit_compile``: Keras' setting ('auto' uses XLA on a GPU only).
    ``save_to``: keep the trained model there as a serving model (``serving.save``: preprocessing and decoding inside).
    ``build``: a model-building function ``build(config, image_size)`` that returns a *compiled* Keras model with one
    output per head, named as the heads name them ('age', 'gender'): e.g. notebook 02's plain-Keras network. Default:
    ``models.build_model``. ``config`` still says what the heads expect (targets, decoding) and how the run is stored.
    A run built by another function starts afresh (no checkpoint: the checkpoint key cannot tell two builders apart).
    The seed and the dtype policy are set for the run only (``settings.run_settings``): the caller's are put back.
    """
    policy = resolve_precision(precision)
    with run_settings(seed, policy):
        return _train_run(
            config, data, profile, seed, verbose, policy, save_to, probes, checkpoint_dir, jit_compile, build
        )


def _train_run(
    config: ModelConfig,
    data: UTKFace,
    profile: Profile,
    seed: int,
    verbose: int | str,
    policy: str,
    save_to: Path | None,
    probes: list | None,
    checkpoint_dir: Path | None,
    jit_compile: bool | str,
    build: Callable[[ModelConfig, int], keras.Model] | None,
) -> Run:
    t0 = time.perf_counter()
    key = run_key(config, profile, seed, data)
    if probes or config.freeze_epochs or build is not None:
        checkpoint_dir = None
    if checkpoint_dir is None:
        return _train_from(
            None, key, config, data, profile, seed, verbose, policy, save_to, probes, jit_compile, build, t0
        )
    Path(checkpoint_dir).parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{checkpoint_dir}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RuntimeError(
            f"another process is training this run now (checkpoint {shown(checkpoint_dir)} is locked); "
            "wait for it, or stop it first"
        ) from None
    try:
        return _train_from(
            checkpoint_dir, key, config, data, profile, seed, verbose, policy, save_to, probes, jit_compile, build, t0
        )
    finally:
        lock.release()


def _train_from(
    checkpoint_dir: Path | None,
    key: str,
    config: ModelConfig,
    data: UTKFace,
    profile: Profile,
    seed: int,
    verbose: int | str,
    policy: str,
    save_to: Path | None,
    probes: list | None,
    jit_compile: bool | str,
    build: Callable | None,
    t0: float,
) -> Run:
    resume = read_checkpoint(checkpoint_dir, key)
    model = None
    if resume:
        try:
            model = keras.saving.load_model(Path(resume["folder"]) / resume["model"])
            print(f"resuming from {shown(checkpoint_dir)} after epoch {resume['epochs_done']}", flush=True)
        except Exception as exc:  # noqa: BLE001 - a checkpoint from older code: start afresh, say so
            print(
                f"checkpoint {shown(checkpoint_dir)} could not be loaded ({type(exc).__name__}: {exc}); "
                "the run starts from epoch 1",
                flush=True,
            )
            resume = None
    if model is None:
        model = build_model(config, data.size, seed=seed) if build is None else build(config, data.size)
    if jit_compile != "auto":
        model.jit_compile = jit_compile
    if config.freeze_epochs:
        history, epoch_seconds = fit_in_phases(model, data, config, profile, seed, verbose, callbacks=probes)
    else:
        history, epoch_seconds = fit(
            model,
            data,
            config,
            profile,
            seed,
            verbose,
            callbacks=probes,
            checkpoint_dir=checkpoint_dir,
            checkpoint_key=key,
            resume=resume,
        )
    metrics, preds = evaluate(model, data, config)
    if save_to is not None:  # the serving form: uint8 images in, years and P(female) out (utils.nets.serving)
        from ..nets import serving

        serving.save(model, config, data.size, Path(save_to))
    best = int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else len(epoch_seconds)
    record = {
        "config": config.to_dict(),
        "seed": seed,
        "profile": profile.to_dict(),
        "data": {
            "kind": data.kind,
            "fingerprint": data.fingerprint,
            "split_id": data.split_id,
            "image_size": data.size,
            "train": int(len(training_rows(data, config, profile))),
            "test": int(len(preds["file"])),
        },
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
        "versions": versions(),
        "device": device_name(),
        "predictions": preds,
    }
    if resume:
        record["resumed_at"] = resume["resumed_at"] + [resume["epochs_done"]]  # epochs after which it was restarted
    if probes:
        record["probes"] = {p.key: p.record for p in probes}
    return Run.from_dict(record)
