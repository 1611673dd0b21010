"""The step a lent GPU machine runs (``python3 -m utils.device gpu``, in the call ``device`` prepares): the 128 px
queue (stages a and b) on the JAX backend from the carried re-encoded copy, its epoch times measured first, then what
fits in the budget trained, and the new records packed into one tar that comes back. It needs only the standard
library and the queue: the machine has JAX but neither TensorFlow nor Keras until the carried wheels are installed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

from .base.paths import REPO_ROOT, RESULTS_DIR

CARRY = ".carry"  # ignored (.git/info/exclude): what the run call carries
DATA = f"{CARRY}/utkface-128-webp"
SECONDS = 540  # the gpu step's own budget inside it: pip before, packing after
STAGES = ("a", "b")
PER_RUN_S = 90  # what a run costs beyond its epochs (a process, the data, compiling, the test split): kept back
TARBALL = "runs.tar.gz"


def _files(root: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _say(log, text: str) -> None:
    """A line to stdout (the run's output_tail) and to the log that comes back."""
    print(text, flush=True)
    log.write(text + "\n")
    log.flush()


def _run_logged(cmd: list[str], env: dict[str, str], log, until: float) -> int:
    """Run ``cmd``, its output to stdout and ``log``; at ``until`` stop it (its process group: the queue stops its
    training); return its exit status (124 when stopped)."""
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )

    def copy() -> None:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(line)
            log.flush()

    reader = threading.Thread(target=copy, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=max(until - time.time(), 1))
    except subprocess.TimeoutExpired:
        _say(log, f"== out of time: stopping {' '.join(cmd[1:])}")
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
        rc = 124
    reader.join(timeout=5)
    return rc


def pack(new: list[Path], out: Path, results: Path | None = None) -> Path:
    """The new files under results/ as one tar, each named ``results/<path inside it>``."""
    results = Path(results or RESULTS_DIR)
    tar = out / TARBALL
    with tarfile.open(tar, "w:gz") as tf:
        for path in sorted(new):
            tf.add(path, arcname=f"results/{path.relative_to(results).as_posix()}")
    return tar


def gpu(
    out: Path,
    seconds: int = SECONDS,
    stages: tuple[str, ...] = STAGES,
    allow_cpu: bool = False,
    queue: list[str] | None = None,
) -> int:
    """On the lent machine: the queue of ``stages`` on the JAX backend from the carried copy, for ``seconds`` at most
    (its epoch times measured first, then what fits trained), the new records packed into ``out/runs.tar.gz``."""
    until = time.time() + seconds
    out.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "UTKFACE_DIR": str(REPO_ROOT / DATA),
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",  # the queue times on the GPU, then each run is a process of its own
        "PYTHONUNBUFFERED": "1",
    }
    queue = queue or [sys.executable, "-m", "utils.queue"]
    results = Path(RESULTS_DIR)
    before = _files(results)
    with open(out / "queue.log", "a") as log:
        probe = "import jax, keras; print(jax.default_backend(), jax.devices()[0].device_kind, keras.__version__)"
        found = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
        _say(log, f"== backend: {found.stdout.strip() or found.stderr[-2000:]}")
        if found.returncode != 0 or (not found.stdout.startswith("gpu") and not allow_cpu):
            _say(log, "== no GPU under JAX here: nothing trained (the 128 px queue is for a GPU)")
            return 3
        # first the epoch times (kept in the speed file; nothing fits in a second), then what fits in what is left
        rc = _run_logged([*queue, "--stages", *stages, "--hours", "0.0003"], env, log, until)
        left = until - time.time() - PER_RUN_S
        if rc == 0 and left > 0:
            rc = _run_logged([*queue, "--stages", *stages, "--hours", f"{left / 3600:.4f}"], env, log, until)
        new = [p for p, st in _files(results).items() if before.get(p) != st]
        tar = pack(new, out, results)
        names = ", ".join(p.name for p in sorted(new))
        _say(log, f"== {time.time() - until + seconds:.0f} s; packed {len(new)} file(s) into {tar.name}: {names}")
    return rc
