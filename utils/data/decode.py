"""Decoding the JPEGs in parallel worker processes, resized, with every failure counted and Ctrl-C honoured."""

from __future__ import annotations

import io
import math
import multiprocessing as mp
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..base import files as safe
from .scan import IMAGE_LIMIT

DECODE_VERSION = 1  # bump when decoding or resizing changes, so old caches are not reused
CHUNK = 128  # most images one decode task holds
MIN_SIZE, MAX_SIZE = 8, 512
DELAY_ENV = "UTKFACE_DECODE_DELAY_S"  # tests only: seconds each decode task sleeps, to make races reproducible

# ----------------------------------------------------------------------------------------- decoding


def decode_one(path: str, size: int) -> tuple[np.ndarray | None, str]:
    """Decode one image to an RGB uint8 square of ``size``; return (None, reason) when it cannot be read.

    The file is read as a regular file of at most IMAGE_LIMIT bytes: one swapped for a FIFO or a device after the scan
    is skipped, never blocks or floods a worker.
    """
    try:
        data = safe.read_bytes(path, IMAGE_LIMIT, "image")
    except safe.UnsafeFile:
        return None, "changed after the scan (not a regular file any more, or larger than the cap)"
    except OSError:
        return None, "corrupt or unreadable image"
    try:
        with Image.open(io.BytesIO(data)) as img:
            mode = img.mode
            if img.format == "JPEG":
                img.draft("RGB", (size, size))  # let libjpeg downscale by 1/2, 1/4 or 1/8 while decoding
            img = img.convert("RGB")
            w, h = img.size
            if w != h:
                side = min(w, h)
                img = img.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
            img = img.resize((size, size), Image.Resampling.LANCZOS)
            note = "" if mode == "RGB" else f"converted from {mode}"
            return np.asarray(img, dtype=np.uint8), note
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        return None, "corrupt or unreadable image"


def _decode_chunk(args: tuple[list[str], int]) -> tuple[np.ndarray, list[str], list[bool]]:
    paths, size = args
    if delay := float(os.environ.get(DELAY_ENV) or 0):
        time.sleep(delay)
    out = np.zeros((len(paths), size, size, 3), np.uint8)
    notes, ok = [], []
    for i, p in enumerate(paths):
        arr, note = decode_one(p, size)
        ok.append(arr is not None)
        notes.append(note)
        if arr is not None:
            out[i] = arr
    return out, notes, ok


def _worker_init(parent: int) -> None:
    """In each decode worker: leave Ctrl-C to the parent, and exit as soon as the parent is gone (even kill -9)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # the parent held signals back while it started us: take SIGTERM again
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def check_workers(workers: int | None) -> None:
    """Raise ValueError unless ``workers`` is None (all cores) or a whole number of processes >= 1."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(
            f"workers must be a whole number of decode processes >= 1 (or None for all "
            f"{os.cpu_count() or 1} cores), got {workers!r}"
        )


def check_size(size: int) -> None:
    """Raise ValueError unless ``size`` is a whole number of pixels between MIN_SIZE and MAX_SIZE."""
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be a whole number of pixels between {MIN_SIZE} and {MAX_SIZE}, got {size!r}")


_POOL_RUNNING = threading.Event()
_STOP_REQUEST: dict[str, int | None] = {"signal": None}


def _on_stop_signal(signum: int, _frame: object) -> None:
    """The command line's Ctrl-C and SIGTERM: while decode workers run, ask the decode loop to stop (it checks between
    results, outside multiprocessing's own code); otherwise stop at once."""
    if _POOL_RUNNING.is_set():
        _STOP_REQUEST["signal"] = signum
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _results_until_stopped(results):
    """The pool's results in order, checking every 0.2 s whether the command line was asked to stop."""
    while True:
        try:
            yield results.next(timeout=0.2)
        except StopIteration:
            return
        except mp.TimeoutError:
            pass
        signum = _STOP_REQUEST["signal"]
        if signum is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)


@contextmanager
def _signals_held():
    """Hold Ctrl-C and SIGTERM back in the main thread while the block runs; they arrive when it ends."""
    main = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask")
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM}) if main else None
    try:
        yield
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def decode_images(
    paths: list[Path], size: int, out: np.ndarray, workers: int | None = None
) -> tuple[list[str], list[bool]]:
    """Decode ``paths`` into the preallocated ``out`` array on all cores; return per-file notes and success flags.

    Workers ignore Ctrl-C and are terminated at once when the parent is interrupted or fails, and exit on their own
    when the parent dies.
    """
    check_workers(workers)
    workers = workers or os.cpu_count() or 1
    step = CHUNK if workers == 1 else max(8, min(CHUNK, math.ceil(len(paths) / (4 * workers))))
    chunks = [([str(p) for p in paths[i : i + step]], size) for i in range(0, len(paths), step)]
    notes: list[str] = []
    ok: list[bool] = []
    pool = None
    try:
        if workers == 1 or len(chunks) == 1:
            results = map(_decode_chunk, chunks)
        else:
            with (
                _signals_held()
            ):  # an interrupt while the workers start arrives once `pool` is set, so it is terminated
                pool = mp.get_context("spawn").Pool(
                    min(workers, len(chunks)), initializer=_worker_init, initargs=(os.getpid(),)
                )
                _STOP_REQUEST["signal"] = None
                _POOL_RUNNING.set()
            results = _results_until_stopped(pool.imap(_decode_chunk, chunks))
        for i, (arr, n, k) in enumerate(results):
            out[i * step : i * step + len(arr)] = arr
            notes += n
            ok += k
    except BaseException:
        if pool is not None:
            pool.terminate()
        raise
    finally:
        _POOL_RUNNING.clear()
        if pool is not None:
            pool.close()
            pool.join()
    return notes, ok
