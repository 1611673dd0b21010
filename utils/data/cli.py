"""``python -m utils.data``: what was loaded and skipped, or prune the caches the loaded set no longer uses."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from .archive import KAGGLE_DATASET, DatasetNotFound, download_kaggle
from .decode import MAX_SIZE, MIN_SIZE, _on_stop_signal
from .load import load_utkface, prune_caches


def _check_args(args: argparse.Namespace) -> str | None:
    """The first problem with the command-line arguments, as one line, or None."""
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        return f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {args.size}"
    if args.workers is not None and args.workers < 1:
        return f"--workers must be at least 1 (leave it out to use all {os.cpu_count() or 1} cores), got {args.workers}"
    if args.synthetic is not None and args.synthetic < 10:
        return f"--synthetic must be at least 10 faces, got {args.synthetic}"
    if args.synthetic is not None and args.source:
        return "give --source or --synthetic, not both"
    return None


def main(argv: list[str] | None = None) -> int:
    """Command line: load a dataset, print a readable summary and one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m utils.data", description=__doc__)
    parser.add_argument("--source", help="folder or archive (.tar.gz/.tgz/.zip); default $UTKFACE_DIR or data/")
    parser.add_argument("--size", type=int, default=128, help="side of the square images in pixels (default 128)")
    parser.add_argument("--synthetic", type=int, metavar="N", help="use N synthetic faces instead of UTKFace")
    parser.add_argument("--workers", type=int, help="decoding processes (default: all cores)")
    parser.add_argument("--cache-dir", type=Path, help="where decoded arrays are kept (default data/cache)")
    parser.add_argument(
        "--download", action="store_true", help=f"download {KAGGLE_DATASET} from Kaggle into data/ first"
    )
    parser.add_argument("--prune", action="store_true", help="after loading, delete cache folders of other data sets")
    args = parser.parse_args(argv)
    if (problem := _check_args(args)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_stop_signal)
        signal.signal(signal.SIGINT, _on_stop_signal)  # also when started with Ctrl-C ignored (a background job)
    try:
        if args.download:
            args.source = args.source or download_kaggle()
        if args.synthetic is not None:
            from .synthetic import make_synthetic

            ds = load_utkface(
                make_synthetic(n=args.synthetic),
                args.size,
                synthetic=True,
                workers=args.workers,
                cache_dir=args.cache_dir,
            )
        else:
            ds = load_utkface(args.source, args.size, workers=args.workers, cache_dir=args.cache_dir)
        if args.prune:
            removed = prune_caches([ds], args.cache_dir)
            freed = sum(n for _f, n in removed)
            print(f"pruned {len(removed)} cache folder(s), {freed / 2**20:,.1f} MiB freed")
    except (DatasetNotFound, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(ds.report.as_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
