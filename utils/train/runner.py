"""The resumable runner of the article's experiments (``experiments``): it trains only the runs the results store
lacks, reads the stored ones back tagged with their table's row, and finds a kept model.

Its command line is the package's own (``utils/__main__.py``):

    python -m utils list
    python -m utils run final augmentation --profile laptop --seeds 0 1 2
    python -m utils.queue --hours 3                        # every run the course lacks, most important first
    python -m utils table conv_stack --profile laptop
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from ..base.paths import checkpoint_folder
from ..base.profiles import Profile
from ..data import UTKFace, datasets
from ..nets.models import ModelConfig
from .experiments import EXPERIMENTS, Experiment, get
from .runs import Run, current
from .store import ResultsStore

TRAIN_ENV = "UTKFACE_TRAIN_MISSING"
"""1: train the runs the store lacks (``TRAIN = True``, ``render --train``); 0: train nothing.
Unset: synthetic faces only."""


def may_train(profile: Profile | None = None) -> bool:
    """Whether missing runs are trained: as ``TRAIN_ENV`` says when it is set (a notebook's ``TRAIN`` parameter, the
    command line); otherwise only for a synthetic profile (seconds), so that Run All on real data never starts hours
    of training unasked."""
    value = os.environ.get(TRAIN_ENV)
    if value is not None:
        return value != "0"
    return profile is not None and profile.data == "synthetic"


def missing(
    names: list[str], seeds: list[int] | None, ident: tuple, store: ResultsStore, only: list[str] | None = None
) -> list[tuple[Experiment, str, ModelConfig, int, Path]]:
    """The runs the named experiments lack, seed by seed (a config two tables share counts once; superseded rows never).

    ``ident``: (profile, data kind, fingerprint, split id); ``only``: the variant labels to consider (default: all).
    """
    exps = [get(n) for n in names]
    todo, planned = [], set()
    for s in dict.fromkeys(s for e in exps for s in (seeds if seeds is not None else e.seeds)):
        for exp in exps:  # seed by seed, so an interrupted grid has every variant at its first seeds
            if s not in (seeds if seeds is not None else exp.seeds):
                continue
            for v in exp.variants:
                if v.superseded or (only is not None and v.label not in only):
                    continue
                path = store.path(v.config, s, *ident, sub=exp.sub)
                if path not in planned and store.read(path) is None:
                    planned.add(path)
                    todo.append((exp, v.label, v.config, s, path))
    return todo


def check_size(data: UTKFace, profile: Profile) -> None:
    """Refuse to train faces of another size than the profile's: the store files a run by its profile, so a 128 px
    run filed as a 64 px one would lie."""
    if data.size != profile.image_size:
        raise ValueError(
            f"the faces are {data.size} px but profile {profile.name!r} trains at {profile.image_size} px; "
            f"load them for it: datasets.for_profile(profiles.PROFILES[{profile.name!r}])"
        )


def run(
    names: list[str],
    profile: Profile,
    seeds: list[int] | None = None,
    data: UTKFace | None = None,
    store: ResultsStore | None = None,
    train_missing: bool | None = None,
    verbose: int | str = 2,
    only: list[str] | None = None,
) -> dict[str, list[Run]]:
    """Make sure every variant of the named experiments has a stored run for each seed; return the runs by experiment.

    ``seeds`` None: each experiment's own seeds; ``only``: train just these variant labels. Superseded rows are read,
    never trained. Showing only (``train_missing`` False) never moves a stored file.
    """
    if train_missing is None:
        train_missing = may_train(profile)
    store = store or ResultsStore(writable=train_missing)
    data = data if data is not None else datasets.for_profile(profile)
    ident = (profile, data.kind, data.fingerprint, data.split_id)
    todo = missing(names, seeds, ident, store, only)
    if todo and not train_missing:
        print(
            f"{len(todo)} run(s) not stored yet, not trained now (TRAIN = True in the parameters cell, or "
            f"`python -m utils.queue`, trains them): the tables show the stored runs only"
        )
    if todo and train_missing:
        from .training import train_run

        check_size(data, profile)
        print(f"{len(todo)} run(s) to train in profile {profile.name!r} on {data.kind} data")
        for i, (exp, label, config, seed, path) in enumerate(todo, 1):
            t0 = time.perf_counter()
            print(f"[{i}/{len(todo)}] {exp.name}: {label}, seed {seed}", flush=True)
            ckpt = checkpoint_folder(path)
            record = train_run(
                config,
                data,
                profile,
                seed,
                verbose=verbose,
                probes=_probes(exp, config, data, profile, seed),
                checkpoint_dir=ckpt,
                save_to=path.with_suffix(".keras") if exp.keep_model else None,
            )
            record = record.tagged(experiment=exp.name, variant=label)
            store.write(path, record)
            shutil.rmtree(ckpt, ignore_errors=True)  # stored: the epoch checkpoints are no longer needed
            m = record.metrics
            shown = ", ".join(f"{k} {m[k]:.4f}" for k in ("loss", "age_mae_years", "gender_accuracy") if k in m)
            print(
                f"    stored {path.name}: {shown}; {record.epochs_run} epochs, {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
    return {name: collect(name, profile, data, store) for name in names}


def kept_model(
    name: str,
    profile: Profile,
    data: UTKFace,
    seed: int = 0,
    variant: str | None = None,
    store: ResultsStore | None = None,
) -> Path:
    """The model experiment ``name`` kept for one variant (default: its first), profile, data and seed (.keras).

    Raises FileNotFoundError with what to do when the run is not stored in this profile, or its model is not.
    """
    exp = get(name)
    if not exp.keep_model:
        raise ValueError(
            f"experiment {name!r} keeps no model; {', '.join(e.name for e in EXPERIMENTS.values() if e.keep_model)} do"
        )
    chosen = [v for v in exp.variants if variant is None or v.label == variant]
    if not chosen:
        raise KeyError(
            f"experiment {name!r} has no variant {variant!r}; choose one of {[v.label for v in exp.variants]}"
        )
    store = store or ResultsStore(writable=False)
    record = store.path(chosen[0].config, seed, profile, data.kind, data.fingerprint, data.split_id, sub=exp.sub)
    path = record.with_suffix(".keras")
    if not record.exists():
        raise FileNotFoundError(
            f"no kept model of {name!r} (seed {seed}) is stored in profile {profile.name!r}: set TRAIN = True to train "
            f'it (`python -m utils run {name} --profile {profile.name} --seeds {seed}`), or PROFILE = "laptop" to '
            "use the committed one"
        )
    if not path.exists():
        raise FileNotFoundError(
            f"{path.name} is missing beside its run record {record.name}: delete the record and run "
            f"`python -m utils run {name} --profile {profile.name} --seeds {seed}` to train it again"
        )
    return path


def _probes(exp: Experiment, config: ModelConfig, data: UTKFace, profile: Profile, seed: int) -> list:
    if not exp.probe:
        return []
    from .probes import BNProbe

    return [BNProbe(data, config, profile.batch_size, seed=seed)]


def collect(name: str, profile: Profile, data: UTKFace, store: ResultsStore | None = None) -> list[Run]:
    """Every stored run (any seed) of the variants of one experiment, each tagged with its variant label."""
    store = store or ResultsStore(writable=False)
    return collect_from(name, store.folder(profile, data.kind, data.fingerprint, data.split_id), store)


def collect_from(name: str, folder: Path, store: ResultsStore | None = None) -> list[Run]:
    """The same, from one results folder (probed experiments read its ``probes/`` subfolder). A superseded row's runs
    come back only while its live row has fewer than two seeds (``runs.current``), so every table, plot and note
    reads one set."""
    store = store or ResultsStore(Path(folder).parent, writable=False)
    return current(_tagged(name, Path(folder), store))


def _tagged(name: str, folder: Path, store: ResultsStore, only_superseded: bool = False) -> list[Run]:
    exp = get(name)
    return [
        r.tagged(experiment=name, variant=v.label)
        for v in exp.variants
        if v.superseded or not only_superseded
        for r in store.runs_in(folder / exp.sub, v.config)
    ]


def superseded(name: str, profile: Profile, data: UTKFace, store: ResultsStore | None = None) -> list[Run]:
    """Every stored run of an experiment's superseded rows (shared augmentation draws), whether or not a live row has
    replaced them: what ``collect`` stops showing once it has, kept readable for the prose that compares the two."""
    store = store or ResultsStore(writable=False)
    folder = store.folder(profile, data.kind, data.fingerprint, data.split_id)
    return _tagged(name, folder, store, only_superseded=True)
