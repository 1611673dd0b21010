"""The run queue: every run the course's tables lack, most important first, each with its cost on this machine; it
trains those that fit the hours you give it, one at a time, each in its own process, each stored the moment it ends;
stopping the queue stops its training too (``utils.base.procs``).

    python -m utils.queue                     # what is missing, and what each run would cost here
    python -m utils.queue --hours 3           # train what fits in 3 hours (make runs HOURS=3)
    python -m utils.queue --hours 3 --commit  # and commit each run to git as it lands (maintainers)
    python -m utils.queue --hours 3 --fill    # then start a run that no longer fits, until the deadline
    python -m utils.queue --hours 3 --fill --stretches 2   # ... even one that two more stretches here must finish

The order (stages a-g) is the course's: the article's setting first (128 px, the final table, then the separate
networks), then the 64 px rows that still rest on the superseded shared-seed augmentation, then the decomposition
arms of notebook 02, then a gender network for notebook 09's kept model, then the class profile's runs (minutes each),
then seeds 1 and 2 of notebook 03's ReLU -> BN and age-ReLU rows (with one seed, their verdicts were one run's
outcome). Every stage first gets two seeds; a second pass adds the third where the hours allow. A run's cost is a
measured epoch time here (from this machine's stored runs of its kind, else its checkpoint, else a short timing of 20
training steps) times its expected epochs (the median of the stored runs of its profile, else three patiences):
``utils.timing``. Checkpoints live outside the work tree (``paths.CHECKPOINT_DIR``): a later queue on the same machine
resumes a run cut short; a new machine starts it again. That is what ``--fill`` is for: the hours after the last run
that fits would idle, so it starts one of the rest, a run with a checkpoint here first, else the shortest (if one more
stretch of the same hours could finish it; ``--stretches N``: N more) and stops it at the deadline, its finished
epochs kept for the next stretch of work on this machine. A run longer than any one stretch (the augmented 128 px
final table on a 2-core CPU) is trained that way, on a machine that has kept its checkpoints before.
"""

from __future__ import annotations

if __name__ == "__main__":  # a command line: TensorFlow's start-up lines stay off stderr (utils.base.quiet)
    from .base.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from . import timing
from .base.paths import REPO_ROOT, USER_CACHE
from .base.procs import PAST_DEADLINE, run_child
from .base.profiles import PROFILES


@dataclass(frozen=True)
class Stage:
    """A step of the queue: rows of experiments (experiment name, variant labels) trained under one profile."""

    tag: str
    what: str
    profile: str
    rows: tuple[tuple[str, tuple[str, ...]], ...]
    seeds: tuple[int, ...] = (0, 1)  # the first pass
    more: tuple[int, ...] = (2,)  # added in the second pass, after every stage has its first seeds

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise ValueError(f"stage {self.tag}: unknown profile {self.profile!r}")


ORDINAL_ROWS = ("MSE regression", "CE-CNN", "OR-CNN", "CORAL-CNN", "CORN-CNN")
STAGES: tuple[Stage, ...] = (
    Stage(
        "a",
        "128 px, the article's final table",
        "full",
        (("augmentation", ("without augmentation", "with augmentation")),),
    ),
    Stage(
        "b",
        "128 px, separate age and gender networks",
        "full",
        (("separate_age", ("separate age network",)), ("separate_gender", ("separate gender network",))),
    ),
    Stage(
        "c",
        "64 px, the augmented rows with independent draws",
        "laptop",
        (
            ("augmentation", ("with augmentation",)),
            ("separate_age", ("separate age network",)),
            ("separate_gender", ("separate gender network",)),
            ("ordinal", ORDINAL_ROWS),
        ),
        seeds=(0, 1, 2),
        more=(),
    ),
    *(
        Stage(f"d{i}", f"64 px, decomposition arm '{arm}'", arm, (("final", ("article network",)),), more=())
        for i, arm in enumerate(("laptop-precise-bn", "laptop-long", "laptop-plateau"), 1)
    ),
    Stage(
        "e",
        "a gender network for notebook 09's kept model",
        "laptop",
        (("use_model", ("gender: separate network",)),),
        seeds=(0,),
        more=(),
    ),
    Stage(
        "f",
        "the class profile (32 px, 6,000 faces): what a lesson-sized run costs",
        "class",
        (("final", ("article network",)), ("ordinal", ("OR-CNN",))),
        seeds=(0, 1),
        more=(2,),
    ),
    Stage(
        "g",
        "64 px, notebook 03's two rows that decide two of the article's verdicts (ReLU before BN, a ReLU on age)",
        "laptop",
        (("bn_order", ("ReLU -> BN",)), ("age_relu", ("ReLU on age output",))),
        seeds=(1, 2),
        more=(),
    ),
)


@dataclass
class Item:
    """One run of the queue and what it costs here."""

    stage: Stage
    experiment: str
    variant: str
    seed: int
    path: Path
    data: object = None  # the dataset its profile trains on (utils.data.UTKFace)
    epoch_s: float | None = None
    epochs: float | None = None
    basis: str = ""
    resumes: bool = False  # an epoch checkpoint of it is on this machine

    @property
    def config(self):
        """The variant's network (a ModelConfig)."""
        from .train import experiments

        return next(v.config for v in experiments.get(self.experiment).variants if v.label == self.variant)

    @property
    def hours(self) -> float | None:
        """Expected hours on this machine (None when the epoch time is unknown)."""
        return None if self.epoch_s is None or self.epochs is None else self.epoch_s * self.epochs / 3600

    def command(self) -> list[str]:
        """The command that trains it (resumable: a stored run is never trained again)."""
        return [
            sys.executable,
            "-m",
            "utils",
            "run",
            self.experiment,
            "--profile",
            self.stage.profile,
            "--seeds",
            str(self.seed),
            "--only",
            self.variant,
        ]

    def describe(self) -> str:
        """One line: stage, run, seed, cost."""
        cost = (
            "cost unknown"
            if self.hours is None
            else (f"~{self.hours * 60:.0f} min ({self.epochs:.0f} epochs to go x {self.epoch_s:.0f} s, {self.basis})")
        )
        return (
            f"{self.stage.tag:3s} {self.stage.profile:18s} {self.experiment}: {self.variant}, seed {self.seed} - {cost}"
        )


def items(stages: tuple[Stage, ...] = STAGES) -> list[Item]:
    """Every run the stages ask for that the store lacks, in queue order (first pass, then second), each once."""
    from .data import datasets
    from .train import runner
    from .train.store import ResultsStore

    store = ResultsStore(writable=False)
    data_for: dict[int, object] = {}
    out, seen = [], set()
    for pass_seeds in ("seeds", "more"):
        for stage in stages:
            profile = PROFILES[stage.profile]
            if profile.image_size not in data_for:
                data_for[profile.image_size] = datasets.for_profile(profile, verbose=False)
            data = data_for[profile.image_size]
            ident = (profile, data.kind, data.fingerprint, data.split_id)
            for seed in getattr(stage, pass_seeds):
                for name, labels in stage.rows:
                    for exp, label, _config, s, path in runner.missing([name], [seed], ident, store, list(labels)):
                        if path not in seen:
                            seen.add(path)
                            out.append(Item(stage, exp.name, label, s, path, data))
    return out


LOCK = USER_CACHE / "queue.lock"


def main(argv: list[str] | None = None) -> int:
    """List the missing runs with their cost here; with --hours, train those that fit, in order."""
    parser = argparse.ArgumentParser(
        prog="python -m utils.queue", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=0.0, help="train what fits in this many hours (0: only list)")
    parser.add_argument("--commit", action="store_true", help="git-commit each run's record as it lands")
    parser.add_argument(
        "--fill",
        action="store_true",
        help="then train a run that does not fit (one with a checkpoint here first, else the shortest) until the "
        "deadline (it resumes later here)",
    )
    parser.add_argument(
        "--stretches",
        type=int,
        default=1,
        help="--fill: how many more stretches of the same hours may finish that run (default 1)",
    )
    parser.add_argument(
        "--stages", nargs="+", default=None, help=f"only these stages ({' '.join(s.tag for s in STAGES)})"
    )
    args = parser.parse_args(argv)
    if args.hours < 0:
        parser.error(f"--hours must be 0 or more, got {args.hours}")
    if args.stretches < 1:
        parser.error(f"--stretches must be 1 or more, got {args.stretches}")
    if args.stretches > 1 and not args.fill:
        parser.error("--stretches only changes what --fill starts: give --fill too")
    stages = tuple(s for s in STAGES if args.stages is None or s.tag in args.stages or s.tag[0] in args.stages)
    if not stages:
        parser.error(f"no stage matches {args.stages}; choose from {' '.join(s.tag for s in STAGES)}")
    if args.hours == 0:  # only a list: it trains nothing, so it needs no lock
        return _serve(stages, 0.0, False, False, 1)
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"another queue is training on this machine (lock {LOCK}); one training at a time: wait for it")
        return 1
    try:
        return _serve(stages, args.hours, args.commit, args.fill, args.stretches)
    finally:
        lock.release()


def _serve(stages: tuple[Stage, ...], hours: float, commit: bool, fill: bool, stretches: int) -> int:
    from .train.machine import device_name, resolve_precision

    device, precision = device_name(), resolve_precision("auto")
    todo = items(stages)
    print(f"{len(todo)} run(s) missing; costs on {device}, {precision}:")
    for item in todo:
        profile = PROFILES[item.stage.profile]
        item.epoch_s, item.basis = timing.epoch_seconds(
            item.config, profile, item.path, item.data, device, precision, measure=hours > 0
        )
        expected, how = timing.expected_epochs(profile, item.experiment, item.config)
        state = timing.checkpoint_state(item.path)
        item.epochs = timing.epochs_left(profile, expected, state)
        item.resumes = bool(state and "epochs_done" in state)
        done = f", {state['epochs_done']} done in its checkpoint" if item.resumes else ""
        item.basis = f"{item.basis}; epochs {how}{done}"
        print("  " + item.describe(), flush=True)
    if hours <= 0 or not todo:
        print(
            "nothing trained (give --hours to train what fits)" if todo else "the store holds every run the queue lists"
        )
        return 0
    deadline = time.time() + hours * 3600
    failed, skipped = 0, []
    for item in todo:
        left = (deadline - time.time()) / 3600
        if item.hours is None or item.hours > left:
            print(f"skip (needs ~{item.hours or 0:.1f} h, {left:.1f} h left): {item.describe()}", flush=True)
            skipped.append(item)
            continue
        failed += _train(item, commit)
    start = _filler(skipped, (deadline - time.time()) / 3600, hours * stretches) if fill else None
    if start is not None:
        print(f"\n== start (it cannot end in the hours left; stopped at the deadline): {start.describe()}", flush=True)
        failed += _train(start, commit, deadline)
    return 1 if failed else 0


def _filler(skipped: list[Item], left_h: float, later_h: float) -> Item | None:
    """The run that --fill starts in the hours left: of those skipped whose two epochs fit now and whose whole could end
    within ``later_h`` more hours here, one with a checkpoint here first (its epochs are done), else the shortest."""
    known = [
        i
        for i in skipped
        if i.hours is not None
        and i.epoch_s is not None
        and 2 * i.epoch_s <= left_h * 3600
        and i.hours <= left_h + later_h
    ]
    return min(known, key=lambda i: (not i.resumes, i.hours or 0.0), default=None)


def _train(item: Item, commit: bool, deadline: float | None = None) -> int:
    """Train one run in its own process (until the deadline, if one is given); 1 if it failed, else 0."""
    if deadline is None:
        print(f"\n== train: {item.describe()}", flush=True)
    t0 = time.time()
    rc = run_child(item.command(), cwd=REPO_ROOT, deadline=deadline)
    took = f"after {(time.time() - t0) / 60:.0f} min: {item.path.name}"
    if rc == PAST_DEADLINE:
        print(f"== stopped at the deadline {took}; its epoch checkpoints stay for a later queue here", flush=True)
        return 0
    print(f"== {'stored' if rc == 0 else f'failed (exit {rc})'} {took}", flush=True)
    if rc == 0 and commit:
        _commit(item)
    return 0 if rc == 0 else 1


def _commit(item: Item) -> None:
    """Commit the run's record (and a kept model beside it) to git, with the README's results section rewritten."""
    subprocess.call([sys.executable, "-m", "utils.summary", "--write"], cwd=REPO_ROOT)
    paths = [p for p in (item.path, item.path.with_suffix(".keras"), REPO_ROOT / "README.md") if p.exists()]
    msg = (
        f"Run landed: {item.experiment} / {item.variant}, profile {item.stage.profile}, seed {item.seed} "
        f"(queue stage {item.stage.tag})"
    )
    subprocess.call(["git", "add", "--", *map(str, paths)], cwd=REPO_ROOT)
    subprocess.call(["git", "commit", "-q", "-m", msg, "--", *map(str, paths)], cwd=REPO_ROOT)


if __name__ == "__main__":
    sys.exit(main())
