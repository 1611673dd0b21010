"""A training the queue starts never outlives the queue: stopped with it, or killed with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from utils.base.paths import REPO_ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and PDEATHSIG: Linux")

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from utils.base.procs import die_with_parent
    held = die_with_parent()
    open(sys.argv[1], "w").write(f"{os.getpid()} {held}")
    time.sleep(120)
    """
)
PARENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from utils.base.procs import run_child
    sys.exit(run_child([sys.executable, "-c", sys.argv[1], sys.argv[2]], cwd=Path.cwd(), grace_s=5))
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie no one has reaped yet counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _start(tmp_path: Path) -> tuple[subprocess.Popen, int, str]:
    marker = tmp_path / "child.pid"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, str(marker)], cwd=REPO_ROOT, env=env)
    deadline = time.time() + 60
    while not (marker.exists() and marker.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the child never started"
    pid, held = marker.read_text().split()
    return parent, int(pid), held


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.time() + seconds
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    return not _alive(pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_parent_stops_its_child(tmp_path, sig):
    parent, child, _ = _start(tmp_path)
    try:
        assert _alive(child) and os.getpgid(child) != os.getpgid(parent.pid)  # its own process group
        parent.send_signal(sig)
        assert parent.wait(timeout=30) == 128 + sig
        assert _gone_within(child, 10), "the child outlived the parent"
    finally:
        for pid in (parent.pid, child):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_killing_the_parent_outright_stops_its_child(tmp_path):
    parent, child, held = _start(tmp_path)
    try:
        assert held == "True"  # the kernel will tell the child
        parent.kill()  # SIGKILL: no handler runs in the parent
        parent.wait(timeout=30)
        assert _gone_within(child, 10), "the child outlived a killed parent"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_deadline_stops_the_child_and_says_so(tmp_path):
    from utils.base.procs import PAST_DEADLINE, run_child

    t0 = time.time()
    rc = run_child([sys.executable, "-c", "import time; time.sleep(120)"], cwd=tmp_path, grace_s=5, deadline=t0 + 2)
    assert rc == PAST_DEADLINE and time.time() - t0 < 30
    assert run_child([sys.executable, "-c", "pass"], cwd=tmp_path, deadline=time.time() + 60) == 0


def test_die_with_parent_does_nothing_outside_a_child(monkeypatch):
    from utils.base.procs import PARENT_ENV, die_with_parent

    monkeypatch.delenv(PARENT_ENV, raising=False)
    assert die_with_parent() is False
