"""The runs an exercise trains: minutes in the ``class`` profile on real data, seconds on synthetic faces.

The solution notebooks (``notebooks/solutions/``) train through :func:`run`. It stores each run it trains in the
results store, under ``exercises/`` beside the course's own runs, so a second Run All reads it back instead of
training again. Like every notebook, it trains only when the reader asks for it (``TRAIN = True``), or on synthetic
faces, which take seconds.
"""

from __future__ import annotations

from .course import Session
from .data import UTKFace
from .datasets import for_profile
from .experiments import may_train
from .models import ModelConfig
from .profiles import PROFILES, Profile
from .runs import Run
from .store import ResultsStore

SUB = "exercises"
"""The results store's subfolder for the runs exercises train (never read as one of the course's tables)."""


def profile(session: Session) -> Profile:
    """The profile an exercise trains in: ``class`` on real data (minutes per run), the session's own on synthetic."""
    return PROFILES["class"] if session.data.kind == "real" else session.profile


def data(session: Session) -> UTKFace:
    """The faces an exercise trains on: the session's own when its size fits the exercise profile, else loaded."""
    prof = profile(session)
    return session.data if session.data.size == prof.image_size else for_profile(prof, verbose=False)


def run(config: ModelConfig, session: Session, seed: int = 0, faces: UTKFace | None = None) -> Run | None:
    """The stored exercise run of ``config`` and ``seed``; trained and stored first when allowed, else None (and why).

    ``faces``: the data to train on (default :func:`data`; pass it to load a profile's data once for several runs).
    """
    prof = profile(session)
    faces = faces if faces is not None else data(session)
    store = session.store
    path = store.path(config, seed, prof, faces.kind, faces.fingerprint, faces.split_id, sub=SUB)
    stored = store.read(path)
    if stored is not None:
        return stored
    if not may_train(prof):
        print(
            f"not stored yet: {path.name} in profile {prof.name!r}; set TRAIN = True in the parameters cell "
            f"to train it (minutes in the {prof.name} profile)"
        )
        return None
    from .training import train_run

    record = train_run(config, faces, prof, seed, verbose=0).tagged(experiment=SUB, variant=config_label(config))
    writer = store if store.writable else ResultsStore(store.root, writable=True)
    writer.write(path, record)
    m = record.metrics
    shown = ", ".join(f"{k} {m[k]:.3f}" for k in ("age_mae_years", "gender_accuracy") if k in m)
    print(f"trained and stored {path.name} ({prof.name}, {faces.kind} data): {shown}; {record.epochs_run} epochs")
    return record


def config_label(config: ModelConfig) -> str:
    """A short label for an exercise's run: its tasks and age head."""
    return f"{config.tasks}, {config.age_head}" if config.tasks != "gender" else config.tasks
