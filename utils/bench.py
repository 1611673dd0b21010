"""Speed and memory of the course's way against the plain way, measured side by side on this machine.

    python -m utils.bench                 # prep, train and course (4.5 minutes measured on 2 CPU cores)
    python -m utils.bench --only prep     # one part: prep, train, course
    python -m utils.bench --only epoch    # one full-profile epoch (128 px) on the GPU, if there is one

Each measurement runs in a fresh child process, so peak memory (max RSS) belongs to that measurement alone.
Uses the real UTKFace when it is found, otherwise synthetic faces of the same size (and says so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .base.paths import BUILD_DIR, REPO_ROOT

TARGETS = {"prep": 1.8, "train_128": 1.5, "reload_s": 2.0, "train_rss_gb": 2.5, "course_min": 5.0}


# ----------------------------------------------------------------------------------------- children


def _emit(result: dict) -> None:
    print("BENCH " + json.dumps(result), flush=True)


def _source(synthetic: int = 0) -> tuple[Path, bool]:
    """UTKFace if it is found (and ``synthetic`` is 0), else that many synthetic faces (3,000 by default)."""
    from .data.datasets import folder

    return folder(synthetic=synthetic, fallback=3000)


def prep_ours(size: int, cache_dir: str, synthetic: int = 0) -> None:
    """Child: the course's loader, cold (empty cache) then warm."""
    from .data import load_utkface

    folder, synthetic = _source(synthetic)
    t0 = time.perf_counter()
    ds = load_utkface(folder, size, cache_dir=Path(cache_dir), split_file=Path(cache_dir) / "split.csv", verbose=False)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_utkface(folder, size, cache_dir=Path(cache_dir), split_file=Path(cache_dir) / "split.csv", verbose=False)
    _emit({"cold_s": cold, "warm_s": time.perf_counter() - t0, "images": len(ds.table), "synthetic": synthetic})


def prep_plain(size: int, synthetic: int = 0) -> None:
    """Child: the usual first attempt, a single-process PIL loop into a float32 array."""
    import numpy as np
    from PIL import Image

    folder, synthetic = _source(synthetic)
    t0 = time.perf_counter()
    images = []
    for path in sorted(folder.iterdir()):
        if ".jpg" not in path.name:
            continue
        try:
            img = Image.open(path).convert("RGB").resize((size, size))
        except OSError:
            continue
        images.append(np.asarray(img, dtype=np.float32) / 255.0)
    x = np.stack(images)
    _emit({"cold_s": time.perf_counter() - t0, "images": len(x), "synthetic": synthetic})


def _clock(warmup: int):
    """A callback that times the training steps after the first ``warmup`` ones (graph tracing, caches)."""
    import keras

    class Clock(keras.callbacks.Callback):
        t0 = t1 = 0.0

        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 == warmup:
                self.t0 = time.perf_counter()
            self.t1 = time.perf_counter()

    return Clock()


def train_ours(size: int, steps: int, warmup: int, batch: int, synthetic: int = 0) -> None:
    """Child: uint8 arrays, batch-wise tf.data pipeline, mixed precision where it pays, fused BatchNorm."""
    from .data import load_utkface
    from .nets.models import ARTICLE, build_model
    from .train.machine import set_precision
    from .train.pipeline import make_pipeline, targets

    folder, synthetic = _source(synthetic)
    policy = set_precision("auto")
    ds = load_utkface(folder, size, synthetic=synthetic, verbose=False)
    rows = ds.indices("train")
    pipe = make_pipeline(ds.images, targets(ds, rows, ARTICLE), rows, batch, shuffle=True).repeat()
    model = build_model(ARTICLE, size)
    clock = _clock(warmup)
    model.fit(pipe, epochs=1, steps_per_epoch=warmup + steps, callbacks=[clock], verbose=0)
    _emit(
        {
            "images_per_s": steps * batch / (clock.t1 - clock.t0),
            "precision": policy,
            "synthetic": synthetic,
            "train_images": len(rows),
        }
    )


def train_plain(size: int, steps: int, warmup: int, batch: int, synthetic: int = 0) -> None:
    """Child: every training image as float32 in memory, passed to model.fit, float32 and Keras' own BatchNorm."""
    import numpy as np

    from .base.labels import years_to_unit
    from .data import load_utkface
    from .nets.models import ARTICLE, build_model

    folder, synthetic = _source(synthetic)
    ds = load_utkface(folder, size, synthetic=synthetic, verbose=False)
    rows = ds.indices("train")
    x = np.asarray(ds.images[rows], dtype=np.float32) / 255.0
    y = {
        "age": years_to_unit(ds.table.age.to_numpy()[rows]),
        "gender": ds.table.gender.to_numpy()[rows].astype("float32"),
    }
    model = build_model(ARTICLE, size, fused_bn=False)
    clock = _clock(warmup)
    model.fit(x, y, batch_size=batch, epochs=1, steps_per_epoch=warmup + steps, callbacks=[clock], verbose=0)
    _emit(
        {
            "images_per_s": steps * batch / (clock.t1 - clock.t0),
            "precision": "float32",
            "synthetic": synthetic,
            "train_images": len(rows),
        }
    )


def epoch_full(synthetic: int = 0) -> None:
    """Child: one epoch of the full profile (128 px, batch 64) of the article's network, on whatever device is there."""
    from .base.profiles import PROFILES
    from .data import load_utkface
    from .nets.models import ARTICLE, build_model
    from .train.machine import device_name, set_precision
    from .train.pipeline import make_pipeline, targets

    profile = PROFILES["full"]
    folder, synthetic = _source(synthetic)
    policy = set_precision("auto")
    ds = load_utkface(folder, profile.image_size, synthetic=synthetic, verbose=False)
    rows = ds.indices("train")
    pipe = make_pipeline(ds.images, targets(ds, rows, ARTICLE), rows, profile.batch_size, shuffle=True)
    model = build_model(ARTICLE, profile.image_size)
    model.fit(pipe.take(3), epochs=1, verbose=0)  # tracing and warm-up outside the timed epoch
    t0 = time.perf_counter()
    model.fit(pipe, epochs=1, verbose=0)
    seconds = time.perf_counter() - t0
    _emit(
        {
            "epoch_s": seconds,
            "images_per_s": len(rows) / seconds,
            "device": device_name(),
            "precision": policy,
            "synthetic": synthetic,
            "train_images": len(rows),
        }
    )


# ----------------------------------------------------------------------------------------- parent


def _run_child(func: str, *args) -> dict:
    """Run one measurement in a fresh interpreter; return its result with the child's own peak RSS in GB."""
    code = f"from utils.bench import {func}; {func}(*{args!r})"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=out, stderr=err, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)  # reap it ourselves to read its resource usage
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith("BENCH ")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"{func}{args} failed:\n{err.read()[-3000:]}")
    result = json.loads(lines[-1][6:])
    result["peak_rss_gb"] = usage.ru_maxrss / 1024**2  # Linux reports KiB
    return result


def bench_prep(size: int = 128, synthetic: int = 0) -> list[dict]:
    """Data preparation at ``size`` px: ours (cold, warm) against a single-process PIL loop into float32."""
    with tempfile.TemporaryDirectory() as tmp:
        ours = _run_child("prep_ours", size, tmp, synthetic)
    plain = _run_child("prep_plain", size, synthetic)
    kind = "synthetic" if ours["synthetic"] else "real"
    return [
        {
            "measure": f"data preparation, {ours['images']:,} {kind} images at {size} px (s)",
            "ours": ours["cold_s"],
            "plain": plain["cold_s"],
            "ratio": plain["cold_s"] / ours["cold_s"],
            "target": f"≥ {TARGETS['prep']}×",
            "met": plain["cold_s"] / ours["cold_s"] >= TARGETS["prep"],
        },
        {
            "measure": "cached reload (s)",
            "ours": ours["warm_s"],
            "plain": None,
            "ratio": None,
            "target": f"< {TARGETS['reload_s']} s",
            "met": ours["warm_s"] < TARGETS["reload_s"],
        },
        {
            "measure": "peak RSS during preparation (GB)",
            "ours": ours["peak_rss_gb"],
            "plain": plain["peak_rss_gb"],
            "ratio": plain["peak_rss_gb"] / ours["peak_rss_gb"],
            "target": "",
            "met": None,
        },
    ]


def bench_train(
    sizes: tuple[int, ...] = (128, 64), steps: int = 20, warmup: int = 5, batch: int = 64, synthetic: int = 0
) -> list[dict]:
    """Training throughput of the article's network: our pipeline against float32 arrays into model.fit."""
    rows = []
    for size in sizes:
        ours = _run_child("train_ours", size, steps, warmup, batch, synthetic)
        plain = _run_child("train_plain", size, steps, warmup, batch, synthetic)
        ratio = ours["images_per_s"] / plain["images_per_s"]
        target = TARGETS["train_128"] if size == 128 else None
        rows.append(
            {
                "measure": f"training at {size} px (images/s; ours {ours['precision']})",
                "ours": ours["images_per_s"],
                "plain": plain["images_per_s"],
                "ratio": ratio,
                "target": f"≥ {target}×" if target else "",
                "met": ratio >= target if target else None,
            }
        )
        rows.append(
            {
                "measure": f"peak RSS while training at {size} px (GB)",
                "ours": ours["peak_rss_gb"],
                "plain": plain["peak_rss_gb"],
                "ratio": plain["peak_rss_gb"] / ours["peak_rss_gb"],
                "target": f"≤ {TARGETS['train_rss_gb']} GB" if size == 128 else "",
                "met": ours["peak_rss_gb"] <= TARGETS["train_rss_gb"] if size == 128 else None,
            }
        )
    return rows


def bench_epoch(synthetic: int = 0) -> list[dict]:
    """Seconds for one full-profile epoch (128 px) on this machine's accelerator, or its CPU."""
    r = _run_child("epoch_full", synthetic)
    return [
        {
            "measure": (
                f"one full-profile epoch, {r['train_images']:,} images at 128 px ({r['device']}, {r['precision']}) (s)"
            ),
            "ours": r["epoch_s"],
            "plain": None,
            "ratio": None,
            "target": "",
            "met": None,
        }
    ]


def bench_course() -> list[dict]:
    """Wall time of every notebook executed in the smoke profile."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "UTKFACE_RESULTS_DIR": tmp}
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "utils.notebooks", "course", "--profile", "smoke"],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        minutes = (time.perf_counter() - t0) / 60
    return [
        {
            "measure": "whole course, smoke profile (min)",
            "ours": minutes,
            "plain": None,
            "ratio": None,
            "target": f"≤ {TARGETS['course_min']} min",
            "met": minutes <= TARGETS["course_min"],
        }
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print a table and write build/bench.json."""
    parser = argparse.ArgumentParser(
        prog="python -m utils.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        nargs="*",
        choices=["prep", "train", "course", "epoch"],
        help="run only these parts ('epoch' times one full-profile epoch, e.g. on a Colab GPU)",
    )
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    parser.add_argument(
        "--synthetic", type=int, default=0, metavar="N", help="use N synthetic faces even if UTKFace is present"
    )
    args = parser.parse_args(argv)
    parts = args.only or ["prep", "train", "course"]
    import pandas as pd

    rows = []
    for part in parts:
        print(f"measuring {part} ...", flush=True)
        run = {
            "prep": lambda: bench_prep(synthetic=args.synthetic),
            "train": lambda: bench_train(steps=args.steps, synthetic=args.synthetic),
            "course": bench_course,
            "epoch": lambda: bench_epoch(synthetic=args.synthetic),
        }[part]
        rows += run()
    table = pd.DataFrame(rows)
    from .train.machine import cpu_model

    machine = f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    BUILD_DIR.mkdir(exist_ok=True)
    (BUILD_DIR / "bench.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
