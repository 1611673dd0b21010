"""The course's command line: list the article's experiments, train what the store lacks (resumable), print tables.

python -m utils list
python -m utils run final augmentation --profile laptop --seeds 0 1 2
python -m utils table conv_stack --profile laptop
python -m utils pool ~/class/*/results        # a class's runs into results/: one store, every seed
python -m utils.queue --hours 3        # every run the course lacks, most important first
"""

from __future__ import annotations

if __name__ == "__main__":  # a command line: TensorFlow's start-up lines stay off stderr (utils.base.quiet)
    from .base.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()

import argparse
import sys
from pathlib import Path

from .base.procs import die_with_parent
from .base.profiles import PROFILES
from .data import DatasetNotFound, datasets
from .read.tables import experiment_table
from .train.experiments import EXPERIMENTS, get
from .train.pool import pool
from .train.runner import collect_from, run
from .train.runs import SEED_RANGE
from .train.store import stored_folder


def _seed(text: str) -> int:
    """argparse type: an integer seed in 0..2**32-1 (what numpy and Keras accept)."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer, got {text!r}") from None
    if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise argparse.ArgumentTypeError(f"seed must be in 0..{SEED_RANGE[1]}, got {seed}")
    return seed


def _profile(text: str) -> str:
    """argparse type: a profile name or 'auto'."""
    if text != "auto" and text not in PROFILES:
        raise argparse.ArgumentTypeError(f"unknown profile {text!r}; choose one of {', '.join(PROFILES)} or 'auto'")
    return text


def main(argv: list[str] | None = None) -> int:
    """Command line: list experiments, run them (resumable), or print their tables. Bad arguments: one line, exit 2."""
    parser = argparse.ArgumentParser(
        prog="python -m utils", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the experiments and their variants")
    for cmd in ("run", "table"):
        p = sub.add_parser(cmd, help=f"{cmd} experiments")
        p.add_argument("names", nargs="+", help="experiment names, or 'all'")
        p.add_argument("--profile", type=_profile, default="auto", help="smoke, laptop, full or auto (default)")
        p.add_argument("--seeds", type=_seed, nargs="+", default=None, help="seeds (default: each experiment's own)")
        p.add_argument("--source", help="UTKFace folder or archive (default: $UTKFACE_DIR or data/)")
        p.add_argument(
            "--only", nargs="+", default=None, metavar="LABEL", help="train only these variants (their labels)"
        )
    p = sub.add_parser("pool", help="copy runs trained elsewhere (students' results/ folders) into one store")
    p.add_argument("sources", nargs="+", type=Path, help="folders (searched whole) or record files")
    p.add_argument("--into", type=Path, default=None, help="the store to add them to (default: results/)")
    args = parser.parse_args(argv)
    die_with_parent()  # started by the queue: stop when it stops
    if args.cmd == "pool":
        absent = [str(s) for s in args.sources if not s.exists()]
        if absent:
            parser.error(f"no such file or folder: {', '.join(absent)}")
        print(pool(args.sources, args.into).text())
        return 0
    if args.cmd == "list":
        for e in EXPERIMENTS.values():
            print(
                f"{e.name:16s} notebook {e.notebook}  seeds {','.join(map(str, e.seeds))}  {e.title}: "
                + "; ".join(v.label for v in e.variants)
            )
        return 0
    names = list(EXPERIMENTS) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}; choose from: {', '.join(EXPERIMENTS)} or 'all'")
    labels = {v.label for n in names for v in get(n).variants}
    if args.only and not set(args.only) <= labels:
        parser.error(
            f"unknown variant(s) {', '.join(sorted(set(args.only) - labels))}; choose from: {', '.join(sorted(labels))}"
        )
    profile = datasets.resolve_profile(args.profile)
    try:
        data = datasets.for_profile(profile, args.source) if args.source or args.cmd == "table" else None
        results = run(
            names, profile, args.seeds, data=data, train_missing=args.cmd == "run", verbose="progress", only=args.only
        )
    except DatasetNotFound as exc:
        if args.cmd == "run":
            parser.exit(2, f"{parser.prog}: error: {str(exc).splitlines()[0]}\n")
        folder = stored_folder(profile.name, profile.data)
        if folder is None:
            parser.exit(
                2, f"{parser.prog}: error: no data and no stored runs of profile {profile.name!r} in results/\n"
            )
        print(f"UTKFace is not here: showing the stored runs in {folder.name}/")
        results = {n: collect_from(n, folder) for n in names}
    for n in names:
        print(f"\n== {get(n).title} ({n})")
        print(experiment_table(get(n), results[n], profile).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
