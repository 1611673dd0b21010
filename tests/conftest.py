"""Shared fixtures: a small synthetic UTKFace folder and a loaded dataset, made once per test session."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests import this tree's utils even where it is not pip-installed
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)  # notebook kernels too
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Runs the tests train (and the notebooks' kernels, which inherit this) keep their epoch checkpoints in a folder of this
# test process, never in the user's ~/.cache/utkface: a run in progress there stays untouched, and two test processes
# (make test runs two, pytest-xdist) never meet on one checkpoint's lock. xdist's workers inherit the environment of the
# process that started them, so a folder a parent test process made is replaced by one of this process's own.
if "UTKFACE_CHECKPOINT_DIR" not in os.environ or os.environ.get("UTKFACE_TEST_CHECKPOINTS_OF"):
    os.environ["UTKFACE_CHECKPOINT_DIR"] = tempfile.mkdtemp(prefix="utkface-test-checkpoints-")
    os.environ["UTKFACE_TEST_CHECKPOINTS_OF"] = str(os.getpid())
    atexit.register(shutil.rmtree, os.environ["UTKFACE_CHECKPOINT_DIR"], ignore_errors=True)
# the real archive where a student puts it (data/) or where the maintainers' machines hold it (../shared/data/)
REAL_ARCHIVE = next(
    (p for p in (ROOT / "data" / "UTKFace.tar.gz", ROOT.parent / "shared" / "data" / "UTKFace.tar.gz") if p.exists()),
    ROOT / "data" / "UTKFace.tar.gz",
)


@pytest.fixture(scope="session")
def synthetic_folder(tmp_path_factory) -> Path:
    from utils.data.synthetic import make_synthetic

    return make_synthetic(n=120, seed=1, root=tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def small_data(synthetic_folder, tmp_path_factory):
    from utils.data import load_utkface

    return load_utkface(
        synthetic_folder, 32, synthetic=True, cache_dir=tmp_path_factory.mktemp("cache"), workers=1, verbose=False
    )


@pytest.fixture(autouse=True)
def no_leaked_global_state(request):
    """Fail a test that leaves Keras' dtype policy or the Keras/TensorFlow seeds changed (later tests would inherit
    them: on a bf16 CPU every test after a run trained in bfloat16). A test that means to change them restores them."""
    if "keras" not in sys.modules:
        yield
        return
    from utils.base import settings

    before = settings.current()
    yield
    after = settings.current()
    leaked = {
        k: (getattr(before, k), getattr(after, k))
        for k in ("policy", "keras_seed", "tf_seed")
        if getattr(before, k) != getattr(after, k)
    }
    if leaked:
        settings.restore(before)  # so the next test starts clean, then report this one
        pytest.fail(f"{request.node.nodeid} leaked global state (before, after): {leaked}", pytrace=False)


@pytest.fixture(autouse=True)
def close_figures():
    """Close the figures a test drew, so the suite never holds more than one test's (matplotlib warns past 20)."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def pytest_terminal_summary(terminalreporter):
    """List each notebook's smoke Run All time (its clock line), the figure the notebooks' *Time* sections point to."""
    lines = [
        value
        for report in terminalreporter.stats.get("passed", [])
        for key, value in getattr(report, "user_properties", [])
        if key == "clock"
    ]
    if lines:
        terminalreporter.section("notebooks' smoke Run All times (clock lines; other tests shared the machine)")
        for line in sorted(lines):
            terminalreporter.write_line(line)
