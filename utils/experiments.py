"""The article's experiments as data, and a resumable runner that trains only what the results store lacks.

    python -m utils.experiments list
    python -m utils.experiments run final augmentation --profile laptop --seeds 0 1 2
    python -m utils.experiments table conv_stack --profile laptop
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .augment import AugmentConfig
from .models import ARTICLE, ModelConfig
from .paths import CHECKPOINT_DIR
from .profiles import Profile, resolve
from .store import ResultsStore


@dataclass(frozen=True)
class Variant:
    """One row of an article table: a label (as the article names it) and the network it stands for."""

    label: str
    config: ModelConfig


@dataclass(frozen=True)
class Experiment:
    """One article table: its variants and the metrics the article reports for it."""

    name: str
    title: str
    variants: tuple[Variant, ...]
    metrics: tuple[str, ...] = ("loss",)
    notebook: str = ""
    probe: str = ""  # "bn": train with diagnostics.BNProbe, stored apart under probes/

    @property
    def sub(self) -> str:
        """The results subfolder of this experiment's runs ('' for plain runs)."""
        return "probes" if self.probe else ""


AUG = ARTICLE.with_(augment=AugmentConfig())
AGE_ONLY_AUG = AUG.with_(tasks="age")


def _ordinal(head: str) -> ModelConfig:
    return AGE_ONLY_AUG.with_(age_head=head)


# Each search table changes one setting of the article's final network and keeps the others.
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    Experiment("final", "The article's final network", (Variant("article network", ARTICLE),),
               ("loss", "age_loss", "gender_loss", "age_mae", "gender_accuracy"), "02"),
    Experiment("diagnosis", "Why age learns slowly: loss balance, learning rate, BatchNorm statistics", (
        Variant("article network", ARTICLE), Variant("age loss weight 20", ARTICLE.with_(loss_weights=(20.0, 1.0))),
        Variant("learning rate 3e-4", ARTICLE.with_(learning_rate=3e-4)), Variant("BN momentum 0.9", ARTICLE.with_(bn_momentum=0.9))),
        ("loss", "age_mae", "gender_accuracy"), "02"),
    Experiment("bn_probe", "Which part of the network makes the validation curve jump: BatchNorm's averages or the weights", (
        Variant("article network", ARTICLE), Variant("separate age network", AGE_ONLY_AUG)),
        ("loss", "age_mae"), "02", probe="bn"),
    Experiment("conv_stack", "Convolutional stacks", tuple(
        Variant(f"{len(f)} CL {' '.join(map(str, f))}", ARTICLE.with_(conv_filters=f))
        for f in [(128, 64, 32), (128, 64, 32, 16), (128, 64, 32, 32), (128, 64, 64, 32), (128, 64, 64, 32, 32)]), notebook="03"),
    Experiment("bn_order", "BatchNorm before or after ReLU", (
        Variant("BN -> ReLU", ARTICLE), Variant("ReLU -> BN", ARTICLE.with_(order="relu_bn"))), notebook="03"),
    Experiment("age_relu", "ReLU on the age output", (
        Variant("ReLU on age output", ARTICLE.with_(age_relu=True)), Variant("linear age output", ARTICLE)), notebook="03"),
    Experiment("dense", "Width of the dense layer", (
        Variant("dense 512", ARTICLE), Variant("dense 1024", ARTICLE.with_(dense_units=1024))), notebook="03"),
    Experiment("dropout", "Dropout rate before the dense layer", tuple(
        Variant(f"dropout {r}", ARTICLE.with_(dropout=r)) for r in (0.4, 0.5, 0.6, 0.7)), notebook="03"),
    Experiment("optimizer", "Optimizer", (
        Variant("RMSprop", ARTICLE.with_(optimizer="rmsprop")), Variant("Adam", ARTICLE)), notebook="03"),
    Experiment("augmentation", "Data augmentation with early stopping", (
        Variant("with augmentation", AUG), Variant("without augmentation", ARTICLE)),
        ("loss", "age_loss", "gender_loss", "age_mae", "gender_accuracy"), "04"),
    Experiment("separate_age", "A separate age network", (
        Variant("separate age network", AGE_ONLY_AUG), Variant("multi-output (augmented)", AUG)),
        ("age_loss", "age_mae"), "05"),
    Experiment("separate_gender", "A separate gender network", (
        Variant("separate gender network", AUG.with_(tasks="gender")), Variant("multi-output (augmented)", AUG)),
        ("gender_loss", "gender_accuracy"), "05"),
    Experiment("ordinal", "Ordinal regression heads on the same body", (
        Variant("MSE regression", AGE_ONLY_AUG), Variant("CE-CNN", _ordinal("ce")), Variant("OR-CNN", _ordinal("or")),
        Variant("CORAL-CNN", _ordinal("coral")), Variant("CORN-CNN", _ordinal("corn"))),
        ("age_mae", "age_rmse_years"), "06"),
]}


PLAN: tuple[tuple[tuple[str, ...], tuple[int, ...]], ...] = (
    (("final",), (0, 1, 2)),
    (("diagnosis",), (0,)),
    (("augmentation",), (0, 1, 2)),
    (("conv_stack", "bn_order", "age_relu", "dense", "dropout", "optimizer"), (0,)),
    (("separate_age", "separate_gender"), (0, 1, 2)),
    (("ordinal",), (0, 1, 2)),
    (("bn_probe",), (0, 1)),  # notebook 02 probes S.seeds[:2]
)
"""Every run the course's tables need, most important first: ``python -m utils.experiments plan --profile laptop``."""


def get(name: str) -> Experiment:
    """Look an experiment up by name, with a helpful error."""
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; choose one of: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def load_data(profile: Profile, source=None, verbose: bool = True):
    """The dataset a profile trains on: synthetic faces for 'smoke', UTKFace otherwise."""
    from .data import load_utkface

    if profile.data == "synthetic":
        from .synthetic import make_synthetic

        return load_utkface(make_synthetic(profile.n_synthetic), profile.image_size, synthetic=True, verbose=verbose)
    return load_utkface(source, profile.image_size, verbose=verbose)


TRAIN_ENV = "UTKFACE_TRAIN_MISSING"
"""Set to 0 (``python -m utils.notebooks render --no-train``) to show stored runs only and train nothing."""


def run(names: list[str], profile: Profile, seeds: list[int], data=None, store: ResultsStore | None = None,
        train_missing: bool | None = None, verbose: int | str = 2) -> dict[str, list[dict]]:
    """Make sure every variant of the named experiments has a stored run for each seed; return the runs by experiment."""
    if train_missing is None:
        train_missing = os.environ.get(TRAIN_ENV, "1") != "0"
    store = store or ResultsStore()
    data = data if data is not None else load_data(profile)
    ident = (profile, data.kind, data.fingerprint, data.split_id)
    todo, planned = [], set()
    for s in seeds:  # seed by seed, so an interrupted grid has every variant at its first seeds
        for name in names:
            for v in get(name).variants:
                path = store.path(v.config, s, *ident, sub=get(name).sub)
                if path not in planned and store.read(path) is None:  # one config shared by two tables trains once
                    planned.add(path)
                    todo.append((name, v.label, v.config, s, path))
    if todo and not train_missing:
        print(f"{len(todo)} run(s) not stored yet and not trained now ({TRAIN_ENV}=0): the tables show the stored runs only")
    if todo and train_missing:
        from .training import train_run

        print(f"{len(todo)} run(s) to train in profile {profile.name!r} on {data.kind} data")
        for i, (name, label, config, seed, path) in enumerate(todo, 1):
            t0 = time.perf_counter()
            print(f"[{i}/{len(todo)}] {name}: {label}, seed {seed}", flush=True)
            probes = _probes(get(name), config, data, profile, seed)
            ckpt = CHECKPOINT_DIR / path.parent.name / path.stem
            record = train_run(config, data, profile, seed, verbose=verbose, probes=probes, checkpoint_dir=ckpt)
            record.update(experiment=name, variant=label)
            store.write(path, record)
            shutil.rmtree(ckpt, ignore_errors=True)  # stored: the epoch checkpoints are no longer needed
            m = record["metrics"]
            shown = ", ".join(f"{k} {m[k]:.4f}" for k in ("loss", "age_mae_years", "gender_accuracy") if k in m)
            print(f"    stored {path.name}: {shown}; {record['epochs_run']} epochs, {time.perf_counter() - t0:.0f} s", flush=True)
    return {name: collect(name, profile, data, store) for name in names}


def _probes(exp: Experiment, config: ModelConfig, data, profile: Profile, seed: int) -> list:
    if not exp.probe:
        return []
    from .diagnostics import BNProbe

    return [BNProbe(data, config, profile.batch_size, seed=seed)]


def collect(name: str, profile: Profile, data, store: ResultsStore | None = None) -> list[dict]:
    """Every stored run (any seed) of the variants of one experiment, each tagged with its variant label."""
    store = store or ResultsStore()
    return collect_from(name, store.folder(profile, data.kind, data.fingerprint, data.split_id), store)


def collect_from(name: str, folder: Path, store: ResultsStore | None = None) -> list[dict]:
    """The same, from one results folder (probed experiments read its ``probes/`` subfolder)."""
    store = store or ResultsStore(Path(folder).parent)
    exp = get(name)
    return [{**r, "variant": v.label} for v in exp.variants for r in store.runs_in(Path(folder) / exp.sub, v.config)]


def main(argv: list[str] | None = None) -> int:
    """Command line: list experiments, run them (resumable), or print their tables."""
    parser = argparse.ArgumentParser(prog="python -m utils.experiments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the experiments and their variants")
    plan = sub.add_parser("plan", help="train every run the course needs, in priority order (resumable)")
    plan.add_argument("--profile", default="auto", help="smoke, laptop, full or auto (default)")
    for cmd in ("run", "table"):
        p = sub.add_parser(cmd, help=f"{cmd} experiments")
        p.add_argument("names", nargs="+", help="experiment names, or 'all'")
        p.add_argument("--profile", default="auto", help="smoke, laptop, full or auto (default)")
        p.add_argument("--seeds", type=int, nargs="+", default=[0])
        p.add_argument("--source", help="UTKFace folder or archive (default: $UTKFACE_DIR or data/)")
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for e in EXPERIMENTS.values():
            print(f"{e.name:16s} notebook {e.notebook}  {e.title}: " + "; ".join(v.label for v in e.variants))
        return 0
    if args.cmd == "plan":
        profile = resolve(args.profile)
        data = load_data(profile)
        for names, seeds in PLAN:
            run(list(names), profile, list(seeds), data=data, verbose=2)
        return 0
    names = list(EXPERIMENTS) if args.names == ["all"] else args.names
    for n in names:
        get(n)
    profile = resolve(args.profile)
    data = None
    if args.source:
        from .data import load_utkface

        data = load_utkface(args.source, profile.image_size)
    results = run(names, profile, args.seeds, data=data, train_missing=args.cmd == "run", verbose=2)
    from .reporting import experiment_table

    for n in names:
        print(f"\n== {get(n).title} ({n})")
        print(experiment_table(n, results[n], profile).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
