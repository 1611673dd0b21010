"""The runs an exercise trains: minutes in the ``class`` profile on real data, seconds on synthetic faces.

The solution notebooks (``notebooks/solutions/``) train through :func:`run`. It stores each run it trains in the
results store, under ``exercises/`` beside the course's own runs, so a second Run All reads it back instead of
training again. Like every notebook, it trains only when the reader asks for it (``TRAIN = True``), or on synthetic
faces, which take seconds.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from .base.profiles import PROFILES, Profile, longer
from .course import Session
from .data import UTKFace
from .data.datasets import for_profile
from .nets import heads
from .nets.head import AddedHead, add_head
from .nets.models import ARTICLE, ModelConfig
from .read.calibration import tempered
from .read.replay import replay, stopped_at
from .train.probes import GradientProbe
from .train.runner import check_size, may_train
from .train.runs import SUPERSEDED, Run
from .train.store import EXERCISES, ResultsStore, subfolder

# What a worked answer reaches through ``exercises.``: the runs it trains and reads (here), the heads it adds (here,
# registered with ``add_head``), and tools that live with their own concern (profiles, replay, calibration, probes).
__all__ = [
    "TRAIN_ENV",
    "SUB",
    "profile",
    "data",
    "run",
    "config_label",
    "course_runs",
    "reference",
    "LogAge",
    "ExpectedRank",
    "AddedHead",
    "add_head",
    "longer",
    "replay",
    "stopped_at",
    "tempered",
    "GradientProbe",
]

TRAIN_ENV = "UTKFACE_TRAIN_EXERCISES"
"""Set to 1 to let the exercise runs train (only they): how the renderer fills the committed solution notebooks."""
SUB = EXERCISES
"""The results store's subfolder for the runs exercises train (never read as one of the course's tables)."""


def profile(session: Session) -> Profile:
    """The profile an exercise trains in: ``class`` on real data (minutes per run), the session's own on synthetic."""
    return PROFILES["class"] if session.data.kind == "real" else session.profile


def data(session: Session) -> UTKFace:
    """The faces an exercise trains on: the session's own when its size fits the exercise profile, else loaded."""
    prof = profile(session)
    return session.data if session.data.size == prof.image_size else for_profile(prof, verbose=False)


def run(
    config: ModelConfig,
    session: Session,
    seed: int = 0,
    faces: UTKFace | None = None,
    prof: Profile | None = None,
    probes: list | None = None,
) -> Run | None:
    """The stored exercise run of ``config`` and ``seed``; trained and stored first when allowed, else None (and why).

    ``faces``: the data to train on (default :func:`data`; pass it to load a profile's data once for several runs).
    ``prof``: the profile to train in (default :func:`profile`; e.g. :func:`longer` of it, at the same image size).
    ``probes``: callbacks whose records the run keeps (e.g. :class:`GradientProbe`); a stored run without them is
    trained again when allowed.
    """
    prof = prof or profile(session)
    allowed = may_train(prof) or os.environ.get(TRAIN_ENV) == "1"
    faces = faces if faces is not None else data(session)
    store = session.store
    path = store.path(config, seed, prof, faces.kind, faces.fingerprint, faces.split_id, sub=subfolder(SUB))
    stored = store.read(path)
    if stored is not None and (all(p.key in stored.probes for p in probes or []) or not allowed):
        _report("read from the store:", path.name, prof, faces.kind, stored)
        return stored
    if not allowed:
        print(
            f"not stored yet: {path.name} in profile {prof.name!r}; set TRAIN = True in the parameters cell "
            f"to train it (minutes in the {prof.name} profile)"
        )
        return None
    from .train.training import train_run

    check_size(faces, prof)
    record = train_run(config, faces, prof, seed, verbose=0, probes=probes).tagged(
        experiment=SUB, variant=config_label(config)
    )
    writer = store if store.writable else ResultsStore(store.root, writable=True)
    writer.write(path, record)
    _report("trained and stored", path.name, prof, faces.kind, record)
    return record


def _report(verb: str, name: str, prof: Profile, kind: str, record: Run) -> None:
    """One line on an exercise run: where it came from, its test figures, its epochs and the hardware it trained on
    (the same line whether it was just trained or read back, so a re-rendered solution says what it shows)."""
    m = record.metrics
    shown = ", ".join(f"{k} {m[k]:.3f}" for k in ("age_mae_years", "gender_accuracy") if k in m)
    print(f"{verb} {name} ({prof.name}, {kind} data): {shown}; {record.epochs_run} epochs on {record.hardware}")


def config_label(config: ModelConfig) -> str:
    """A short label for an exercise's run: its tasks and age head."""
    return f"{config.tasks}, {config.age_head}" if config.tasks != "gender" else config.tasks


def course_runs(
    names: list[str], session: Session, seeds: list[int] | None = None, only: list[str] | None = None
) -> dict[str, list[Run]]:
    """The course's own runs of these experiments, of these variant labels (``only``; a superseded row counts as its
    live one): on real data every stored seed, read, never trained; on synthetic faces, trained for ``seeds``."""
    from .train.runner import collect
    from .train.runner import run as run_experiments

    if session.data.kind == "real":
        found = {name: collect(name, session.profile, session.data) for name in names}
    else:
        found = run_experiments(
            names, session.profile, seeds, data=session.data, train_missing=True, verbose=0, only=only
        )
    return {name: [r for r in runs if only is None or _label(r.variant) in only] for name, runs in found.items()}


def _label(variant: str) -> str:
    """A row's live label: 'OR-CNN' for both 'OR-CNN' and its superseded 'OR-CNN (shared draws)'."""
    return variant.removesuffix(SUPERSEDED)


class LogAge(heads.AgeHead):
    """Notebook 07's remedy: one linear unit trained with MSE on log(age); its age, exp(output), is never below 0."""

    key, loss_label = "log_age", "MSE on log(age)"

    def layer(self, x):
        """Dense(1), float32, starting at log(30 years)."""
        start = keras.initializers.Constant(float(np.log(30.0)))
        return keras.layers.Dense(1, name="age", dtype="float32", bias_initializer=start)(x)

    def loss(self):
        """Mean squared error of log(age)."""
        return "mse"

    def metrics(self):
        """MAE in years."""
        return [heads.AgeMAEYears(self.key)]

    def years_error(self, y_true, y_pred):
        """|exp(output) - age| with Keras ops."""
        from keras import ops

        return ops.abs(ops.exp(ops.clip(ops.reshape(y_pred, (-1,)), -5.0, 7.0)) - ops.exp(ops.reshape(y_true, (-1,))))

    def targets(self, table, rows):
        """log(age in years)."""
        return np.log(table.age.to_numpy()[rows].astype(np.float64)).reshape(-1, 1).astype(np.float32)

    def decode(self, raw):
        """exp(output), in years."""
        return np.exp(np.clip(np.asarray(raw, np.float64).reshape(-1), -5.0, 7.0))


class ExpectedRank(heads.Coral):
    """CORAL trained as usual, its age read as the expected rank (youngest age + the sum of P(age > k)) instead of the
    count of P(age > k) above 0.5; the record keeps the counted ages too (``age_pred_count``, ``*_count`` metrics)."""

    key = "coral_expected"

    def decode(self, raw):
        """The expected age: youngest age + the sum of P(age > k); its loss, and the metric shown while training (the
        counted rule), are CORAL's own."""
        return self.above(np.asarray(raw, np.float64)).sum(axis=1) + self.age_range[0]

    def score(self, raw, table, rows, keras_metrics):
        """The expected-rank scores, and the counted rule's beside them."""
        metrics, preds = super().score(raw, table, rows, keras_metrics)
        counted = super().decode(raw)  # CORAL's own rule
        err = counted - table.age.to_numpy()[rows]
        metrics.update(
            age_mae_years_count=float(np.mean(np.abs(err))), age_rmse_years_count=float(np.sqrt(np.mean(err**2)))
        )
        return metrics, {**preds, "age_pred_count": counted.astype(int).tolist()}


def reference(session: Session, seed: int = 0) -> Run | None:
    """The article network's exercise run, trained with a :class:`GradientProbe`: the solutions of 02-04 share it."""
    faces = data(session)
    return run(ARTICLE, session, seed, faces, probes=[GradientProbe(faces, ARTICLE)])
