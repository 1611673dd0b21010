"""Child processes that never outlive their parent: the queue's trainings stop when the queue stops.

A training the queue starts runs in its own process group. Stopping the queue (SIGTERM, SIGINT, SIGHUP, or an
exception in the queue) stops the group; a queue killed outright (SIGKILL) is caught by the child itself, which on
Linux asks the kernel for a SIGTERM when its parent dies (``die_with_parent``, called at the child's start).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PARENT_ENV = "UTKFACE_PARENT_PID"  # set for a child that must not outlive the process that started it
PR_SET_PDEATHSIG = 1
PAST_DEADLINE = 124  # run_child's exit code for a child stopped because its deadline came (as timeout(1) says)


def die_with_parent() -> bool:
    """In a child started by ``run_child``: stop (SIGTERM) when the parent dies; exit now if it already has."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return False
    if os.getppid() != int(parent):  # the parent died before the request was in place
        sys.exit(f"the process that started this one (pid {parent}) has ended; stopping")
    return True


def _signal_group(child: subprocess.Popen, sig: int) -> None:
    """Send sig to the child's process group (nothing when it has already ended)."""
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        pass


def run_child(command: list[str], cwd: Path, grace_s: float = 30.0, deadline: float | None = None) -> int:
    """Run a command in its own process group and return its exit code; a signal to us stops it first, and so does
    the deadline (a ``time.time()``), after which the code is ``PAST_DEADLINE``."""
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    child = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True)
    stopped: list[tuple[int, float]] = []  # (signal, when): the handler only asks; the loop below waits

    def stop(signum: int, _frame) -> None:
        print(f"\n== stopped by signal {signum}: stopping the child (pid {child.pid}) too", flush=True)
        stopped.append((signum, time.monotonic()))
        _signal_group(child, signal.SIGTERM)

    caught = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    before = {s: signal.signal(s, stop) for s in caught}
    expired: list[float] = []  # when the deadline stopped the child
    try:
        while True:
            try:
                rc = child.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                if deadline is not None and not expired and not stopped and time.time() >= deadline:
                    print(f"\n== the deadline has come: stopping the child (pid {child.pid})", flush=True)
                    expired.append(time.monotonic())
                    _signal_group(child, signal.SIGTERM)
                since = (stopped[0][1] if stopped else None) or (expired[0] if expired else None)
                if since is not None and time.monotonic() - since > grace_s:
                    _signal_group(child, signal.SIGKILL)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        if child.poll() is None:  # an exception in this process: never leave the child behind
            _signal_group(child, signal.SIGKILL)
            child.wait()
    if stopped:
        raise SystemExit(128 + stopped[0][0])
    return PAST_DEADLINE if expired and rc != 0 else rc
