"""The tests themselves: each test process (make test runs two, pytest-xdist) trains into checkpoints of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from utils.base.paths import REPO_ROOT

PROBE = """
import os


def test_a():
    open(os.environ["PROBE_OUT"], "a").write(os.environ["UTKFACE_CHECKPOINT_DIR"] + "\\n")


def test_b():
    open(os.environ["PROBE_OUT"], "a").write(os.environ["UTKFACE_CHECKPOINT_DIR"] + "\\n")
"""


def test_each_test_process_keeps_its_own_checkpoint_folder(tmp_path):
    """make test runs two xdist workers, which inherit the environment of the process that started them: each must
    still train into a checkpoint folder of its own, or two notebooks training one smoke run meet on its lock."""
    shutil.copy(REPO_ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(PROBE)
    out = tmp_path / "dirs.txt"
    env = {**os.environ, "PROBE_OUT": str(out)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", "--dist", "each", str(tmp_path)]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    dirs = out.read_text().split()
    assert len(dirs) == 4 and len(set(dirs)) == 2  # --dist each: both tests in both workers, one folder per worker
    assert os.environ["UTKFACE_CHECKPOINT_DIR"] not in dirs and all("utkface-test-checkpoints-" in d for d in dirs)
