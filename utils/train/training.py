"""Training engine: fit with the course's rules, evaluate on the test split, two-phase fine-tuning, and the
record of a run (``train_run``).

Its parts live beside it: ``machine`` (backend, precision, device), ``pipeline`` (rows, targets, batches) and
``callbacks`` (what happens at each epoch's end).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
from filelock import FileLock, Timeout

from ..base.paths import shown
from ..base.profiles import Profile
from ..base.settings import run_settings
from ..data import UTKFace
from ..nets.layers import FusedBatchNormalization
from ..nets.models import ModelConfig, build_model, compile_model, set_body_trainable
from .callbacks import (
    EpochCheckpoint,
    EpochTimer,
    ProgressLine,
    WarmEarlyStopping,
    read_checkpoint,
    rule_callbacks,
    run_key,
)
from .machine import (
    device_name,
    resolve_precision,
    versions,
)
from .pipeline import make_pipeline, select_rows, targets, training_rows
from .runs import Run


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
    for head in config.heads:
        m, p = head.score(raw[head.output], data.table, rows, keras_metrics)
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
    fine-tuned; if fine-tuning never beats the frozen phase's best validation loss, the model ends with that phase's
    best weights, so the kept epoch (the lowest validation loss of the joined history) is the one it holds.

    Returns one history and one list of epoch seconds over both phases.
    """
    if not config.freeze_epochs:
        return fit(model, data, config, profile, seed, verbose, callbacks)
    set_body_trainable(model, config, False)
    compile_model(model, config)
    first = replace(profile, epochs=min(config.freeze_epochs, profile.epochs), min_epochs=0)
    history, seconds = fit(model, data, config, first, seed, verbose, callbacks)
    if profile.epochs > len(seconds):
        frozen_best = np.nanmin(history.get("val_loss", [np.inf]))  # early stopping left this epoch's weights in place
        frozen_weights = {v.path: v.numpy() for v in model.weights}  # by path, whatever order model.weights keeps
        set_body_trainable(model, config, True)
        compile_model(model, config, learning_rate=config.learning_rate * FINE_TUNE_LR)
        rest = replace(
            profile, epochs=profile.epochs - len(seconds), min_epochs=max(profile.min_epochs - len(seconds), 0)
        )
        more, more_seconds = fit(model, data, config, rest, seed + 1, verbose, callbacks)
        history = {k: v + more.get(k, []) for k, v in history.items()}
        seconds = seconds + more_seconds
        if not np.nanmin(more.get("val_loss", [np.inf])) < frozen_best:
            for v in model.weights:
                v.assign(frozen_weights[v.path])
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
        job = _Job(config, data, profile, seed, verbose, policy, save_to, probes, jit_compile, build)
        return _train_run(job, checkpoint_dir)


@dataclass(frozen=True)
class _Job:
    """One run's arguments, as ``train_run`` resolved them (the precision is a policy name by now)."""

    config: ModelConfig
    data: UTKFace
    profile: Profile
    seed: int
    verbose: int | str
    policy: str
    save_to: Path | None
    probes: list | None
    jit_compile: bool | str
    build: Callable[[ModelConfig, int], keras.Model] | None
    t0: float = field(default_factory=time.perf_counter)

    @property
    def key(self) -> str:
        """The checkpoint key: what the run is (``run_key``)."""
        return run_key(self.config, self.profile, self.seed, self.data)


def _train_run(job: _Job, checkpoint_dir: Path | None) -> Run:
    if job.probes or job.config.freeze_epochs or job.build is not None:
        checkpoint_dir = None
    if checkpoint_dir is None:
        return _train_from(job, None)
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
        return _train_from(job, checkpoint_dir)
    finally:
        lock.release()


def _train_from(job: _Job, checkpoint_dir: Path | None) -> Run:
    config, data, profile, seed, verbose, policy = job.config, job.data, job.profile, job.seed, job.verbose, job.policy
    save_to, probes, jit_compile, build, key = job.save_to, job.probes, job.jit_compile, job.build, job.key
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
    losses = np.asarray(history.get("val_loss", []), float)
    best = int(np.nanargmin(losses)) + 1 if np.isfinite(losses).any() else len(epoch_seconds)
    record = {
        "config": config.to_dict(),
        "seed": seed,
        "profile": profile.to_dict(),
        "data": {
            "kind": data.kind,
            "fingerprint": data.fingerprint,
            "split_id": data.split_id,
            "image_size": data.size,
            "encoding": data.encoding,  # how the pixels came: "jpeg" (the original files) or re-encoded ("webp-q80")
            "train": int(len(training_rows(data, config, profile))),
            "test": int(len(preds["file"])),
        },
        "metrics": metrics,
        "history": history,
        "epochs_run": len(epoch_seconds),
        "best_epoch": best,
        "epoch_seconds": [round(t, 2) for t in epoch_seconds],
        "wall_seconds": round(time.perf_counter() - job.t0 + (resume["wall_seconds"] if resume else 0.0), 1),
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
