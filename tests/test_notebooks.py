"""The course notebooks: committed clean, runnable top to bottom by a new user, rendered safely, ready for Colab."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from utils import notebooks as nbs
from utils.base.paths import GITHUB_REPO, REPO_ROOT
from utils.notebooks import BANNER, claim, notebooks
from utils.render import INJECTED, WIDGET_VIEW, errors, kernel_manager_class

NOTEBOOKS = notebooks()
IDS = [p.stem for p in NOTEBOOKS]
NAMES = [p.relative_to(nbs.NOTEBOOKS_DIR).as_posix() for p in NOTEBOOKS]
"""Each notebook's path inside notebooks/ (solutions/NN_... for the worked answers)."""
DATA_ENV = ("UTKFACE_DIR", "UTKFACE_DATA_DIR", "UTKFACE_RESULTS_DIR", "UTKFACE_TRAIN_MISSING")


def test_there_are_numbered_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("01_")


# ------------------------------------------------------------------ what the committed notebooks carry


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_notebook_is_clean(path: Path):
    """What the hooks before a stop flag: injected-parameters cells, widget state, error outputs, papermill noise."""
    nb = nbformat.read(path, as_version=4)
    assert not [c for c in nb.cells if INJECTED in c.metadata.get("tags", [])], "papermill's injected cell"
    assert "widgets" not in nb.metadata and "papermill" not in nb.metadata
    assert not [c for c in nb.cells for o in c.get("outputs", []) if WIDGET_VIEW in o.get("data", {})], "widget views"
    assert not [c for c in nb.cells if "papermill" in c.metadata or "widgets" in c.metadata]
    assert not errors(nb), errors(nb)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_structure(path: Path):
    from utils.colab import cell_source

    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0].source
    assert first.startswith("# ") and "colab-badge" in first
    name = path.relative_to(nbs.NOTEBOOKS_DIR).as_posix()
    assert f"colab.research.google.com/github/{GITHUB_REPO}/blob/main/notebooks/{name}" in first
    assert nb.cells[1].source == cell_source(), "run `python -m utils.notebooks clean` to rewrite the Colab cell"
    params = nb.cells[2]
    assert "parameters" in params.metadata.get("tags", [])
    assert re.search(r'^PROFILE = "auto"', params.source, re.M) and re.search(
        r"^SHOW_FACES = True", params.source, re.M
    )
    assert "course.setup(" in nb.cells[3].source  # the setup cell follows the parameters at once
    long_cells = [
        c.source
        for c in nb.cells
        if c.cell_type == "code"
        and len([line for line in c.source.splitlines() if not line.startswith(("import ", "from "))]) >= 7
        and "google.colab" not in c.source
        and "parameters" not in c.metadata.get("tags", [])  # settings, one per line, not logic
        and "def article_network"
        not in c.source  # notebook 02's Keras network: shown on purpose, held equal to the engine by test_keras_in_view
        and not c.source.startswith("# plain Keras:")
    ]  # the same for 03-06: each such cell has its test in test_keras_in_view
    assert not long_cells, "code cells stay short; put logic in utils/"
    outputs = "".join(str(o) for c in nb.cells for o in c.get("outputs", []))
    assert not re.search(r"(/home/|/root/|/work/|/Users/|C:\\\\Users)", outputs), (
        "outputs show paths of the machine that rendered them"
    )
    assert claim(nb) is not None, "the setup cell's banner says which data the outputs come from"
    if "solutions" not in name:  # a lesson ends by printing how long its copy took: its Time section's measured figure
        assert [c for c in nb.cells if c.cell_type == "code"][-1].source.endswith("print(S.clock())")


def test_banner_pattern_matches_course_banner(small_data, capsys):
    """render's check reads the banner that utils.course writes; the two must agree."""
    from types import SimpleNamespace

    from utils.base.profiles import PROFILES
    from utils.course import banner

    banner(small_data, PROFILES["smoke"])
    real = SimpleNamespace(synthetic=False, table=small_data.table, size=64, split_id="abc", fingerprint="def")
    banner(real, PROFILES["laptop"])
    lines = capsys.readouterr().out.splitlines()
    found = [BANNER.search(line) for line in lines]
    assert [(m.group(1), m.group(2)) for m in found if m] == [("SYNTHETIC DATA", "smoke"), ("Real UTKFace", "laptop")]


def test_clean_strips_widget_state_and_injected_cells(tmp_path):
    from utils.notebooks import clean

    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    cell = nbformat.v4.new_code_cell("1", execution_count=1)
    cell.metadata["papermill"] = {"duration": 1}
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "x", WIDGET_VIEW: {}})]
    injected = nbformat.v4.new_code_cell('PROFILE = "laptop"', execution_count=2)
    injected.metadata["tags"] = [INJECTED]
    nb.cells = [cell, injected, nbformat.v4.new_code_cell("2", execution_count=3)]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    clean(path)
    text = path.read_text()
    assert "widget" not in text and "papermill" not in text and '"x"' in text and INJECTED not in text
    assert [c.execution_count for c in nbformat.read(path, as_version=4).cells] == [1, 2]


# ------------------------------------------------------------------ Colab


def _stand_in_colab(tmp_path: Path, runs: int) -> dict:
    """Run the Colab cell `runs` times in a fresh Python whose google.colab is a stand-in, git and pip recorded."""
    from utils.colab import cell_source

    content = tmp_path / "content"  # Colab starts its kernels in /content
    content.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(f"""
import json, os, shutil, site, subprocess, sys, types
sys.modules["google.colab"] = types.ModuleType("google.colab")  # what makes Colab Colab here
SITE = {str(tmp_path / "site")!r}  # stands in for Colab's site-packages
os.makedirs(SITE, exist_ok=True)
site.getsitepackages = lambda: [SITE]
calls, real_run = [], subprocess.run
def fake_run(cmd, *args, **kwargs):
    if not isinstance(cmd, list) or not (cmd[:2] == ["git", "clone"] or cmd[1:4] == ["-m", "pip", "install"]):
        return real_run(cmd, *args, **kwargs)  # e.g. platform.processor(), which TensorFlow asks
    calls.append(list(cmd))
    if cmd[:2] == ["git", "clone"]:  # stands in for the network: the working tree, as a clone would hold it
        for part in ("utils", "notebooks", "requirements.txt"):
            src = os.path.join({str(REPO_ROOT)!r}, part)
            dst = os.path.join(cmd[-1], part)
            (shutil.copytree if os.path.isdir(src) else shutil.copy)(
                src, dst, **({{"ignore": shutil.ignore_patterns("__pycache__")}} if os.path.isdir(src) else {{}})
            )
    if cmd[-2:-1] == ["-e"]:  # an editable install: a .pth file naming the project's folder
        with open(os.path.join(SITE, "__editable__.utkface_course.pth"), "w") as f:
            f.write(os.path.abspath(cmd[-1]) + "\\n")
    return subprocess.CompletedProcess(cmd, 0)
subprocess.run = fake_run
cell = {cell_source()!r}
for _ in range({runs}):
    exec(compile(cell, "colab-cell", "exec"), {{}})
print(json.dumps({{"calls": calls, "cwd": os.getcwd(), "utils": sys.modules["utils"].__file__}}))
""")
    env = {k: v for k, v in __import__("os").environ.items() if k not in DATA_ENV and not k.startswith("KAGGLE")}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, str(driver)], cwd=content, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "stdout": out.stdout, "content": content}


def test_colab_cell_clones_the_course_once_and_bootstraps(tmp_path):
    result = _stand_in_colab(tmp_path, runs=2)
    clones = [c for c in result["calls"] if c[:2] == ["git", "clone"]]
    assert len(clones) == 1, "a second run of the cell clones nothing"
    from utils.colab import clone_url

    assert clone_url() == f"https://github.com/{GITHUB_REPO}.git" and clone_url() in clones[0]
    course = result["content"] / "course"
    assert Path(result["cwd"]) == course / "notebooks"
    assert Path(result["utils"]).resolve().parent == (course / "utils").resolve(), "utils comes from the clone"
    assert any(
        c[-2:] == ["-e", str(course.relative_to(result["content"]))] or c[-2:] == ["-e", "course"]
        for c in result["calls"]
    )
    from utils.colab import missing_packages

    pips = [c for c in result["calls"] if c[1:4] == ["-m", "pip", "install"]]
    if missing_packages():
        assert any(set(missing_packages()) <= set(c) for c in pips)
    assert "UTKFace not found, so the notebooks run on synthetic faces" in result["stdout"]


def test_colab_cell_does_nothing_elsewhere(tmp_path, monkeypatch):
    from utils.colab import cell_source

    monkeypatch.chdir(REPO_ROOT / "notebooks")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    before = list(sys.path)
    exec(compile(cell_source(), "colab-cell", "exec"), {})
    assert not calls and sys.path == before  # notebooks import utils as an installed package, never via sys.path


# ------------------------------------------------------------------ render and course, on a tiny notebook

TINY_BANNER = """\
import os
profile = os.environ.get("FAKE_CLAIM") or ("smoke" if PROFILE == "auto" else PROFILE)
if profile != "smoke" and not os.environ.get("FAKE_REAL"):
    raise RuntimeError("DatasetNotFound stand-in")
print(
    f"*** SYNTHETIC DATA — profile '{profile}': ***"
    if profile == "smoke"
    else f"*** Real UTKFace — profile '{profile}': ***"
)"""


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A folder with one course-like notebook (title, parameters, a setup cell with a banner) and its build folder."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    params = nbformat.v4.new_code_cell('PROFILE = "auto"\nSHOW_FACES = True')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 01 · tiny"),
        params,
        nbformat.v4.new_code_cell(TINY_BANNER),
        nbformat.v4.new_code_cell("print('faces shown:', SHOW_FACES)"),
    ]
    path = folder / "01_tiny.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setattr(nbs, "BUILD_DIR", tmp_path / "build")
    for name in ("FAKE_REAL", "FAKE_CLAIM", *DATA_ENV):
        monkeypatch.delenv(name, raising=False)
    return path


def _render(path: Path, *args: str) -> int:
    return nbs.main(["render", "--notebooks-dir", str(path.parent), *args])


def _text(path: Path) -> str:
    return "".join(str(o) for c in nbformat.read(path, as_version=4).cells for o in c.get("outputs", []))


def test_render_puts_outputs_into_the_notebooks_own_cells(tiny, monkeypatch, capfd):
    monkeypatch.setenv("FAKE_REAL", "1")
    assert _render(tiny, "--profile", "laptop") == 0
    nb = nbformat.read(tiny, as_version=4)
    assert [c.source for c in nb.cells][1] == 'PROFILE = "auto"\nSHOW_FACES = True'  # Run All still means auto
    assert len(nb.cells) == 4 and not [c for c in nb.cells if INJECTED in c.metadata.get("tags", [])]
    assert [c.execution_count for c in nb.cells if c.cell_type == "code"] == [1, 2, 3]
    assert claim(nb) == ("real", "laptop") and "faces shown: False" in _text(tiny)  # rendered without faces
    assert "papermill" not in tiny.read_text()
    assert "without encryption" not in capfd.readouterr().err  # the kernel talks over IPC, quietly
    assert [p.name for p in tiny.parent.iterdir()] == [tiny.name], "no sockets or temporary files left beside it"


def test_render_refuses_synthetic_over_real_unless_forced(tiny, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_REAL", "1")
    assert _render(tiny, "--profile", "laptop") == 0
    before = tiny.read_bytes()
    with pytest.raises(SystemExit) as stop:  # refused before running anything
        _render(tiny, "--profile", "smoke")
    assert stop.value.code == 2 and "--force" in capsys.readouterr().err
    monkeypatch.delenv("FAKE_REAL")
    assert _render(tiny) == 1  # auto resolves to synthetic: caught by the banner check after the run
    assert tiny.read_bytes() == before
    assert _render(tiny, "--profile", "smoke", "--force") == 0
    assert claim(nbformat.read(tiny, as_version=4)) == ("synthetic", "smoke")


def test_failed_or_mislabelled_render_leaves_the_notebook(tiny, monkeypatch, capsys):
    before = tiny.read_bytes()
    assert _render(tiny, "--profile", "laptop") == 1  # no data: the setup cell raises
    err = capsys.readouterr().err
    assert "RuntimeError" in err and "left as it was" in err
    assert tiny.read_bytes() == before
    kept = nbs.BUILD_DIR / "render" / tiny.name
    assert errors(nbformat.read(kept, as_version=4)), "the failed run is kept for a look"
    monkeypatch.setenv("FAKE_REAL", "1")
    monkeypatch.setenv("FAKE_CLAIM", "laptop")
    assert _render(tiny, "--profile", "full") == 1  # ran, but its banner claims another profile
    assert "not 'full'" in capsys.readouterr().err and tiny.read_bytes() == before


def test_course_writes_clean_copies_and_html(tiny):
    assert nbs.main(["course", "--notebooks-dir", str(tiny.parent), "--profile", "smoke"]) == 0
    out = nbs.BUILD_DIR / "smoke" / tiny.name
    assert claim(nbformat.read(out, as_version=4)) == ("synthetic", "smoke") and INJECTED not in out.read_text()
    assert out.with_suffix(".html").exists()
    assert not json.loads(tiny.read_text())["cells"][2]["outputs"], "course leaves the notebook itself alone"


@pytest.mark.parametrize(
    "argv",
    [
        ["render", "--profile", "turbo", "--only", "01"],
        ["course", "--only", "99"],
        ["clean", "--force"],
        ["course", "--only"],
        ["publish"],
    ],
)
def test_bad_arguments_say_one_line_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        nbs.main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1, err


# ------------------------------------------------------------------ what a new user does: clone, no data, Run All


@pytest.fixture(scope="session")
def fresh_clone(tmp_path_factory) -> Path:
    """The working tree's files as a clone holds them (tracked, or new and not ignored): no UTKFace, no caches."""
    root = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        src = REPO_ROOT / name
        if src.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / name)
    from utils.data import DatasetNotFound, locate

    with pytest.MonkeyPatch.context() as mp, pytest.raises(DatasetNotFound):
        mp.delenv("UTKFACE_DIR", raising=False)
        locate(extract_to=root / "data")
    return root


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NAMES, ids=IDS)
def test_committed_notebook_runs_all_on_a_fresh_clone(name: str, fresh_clone: Path, monkeypatch, record_property):
    """nbclient runs the committed notebook top to bottom, as Run All does: no papermill, no parameters replaced."""
    from nbclient import NotebookClient

    for var in DATA_ENV:
        monkeypatch.delenv(var, raising=False)  # the kernel sees what a new user's does
    monkeypatch.setenv("PYTHONPATH", str(fresh_clone))  # and imports the clone's utils, as its `pip install -e .` would
    path = fresh_clone / "notebooks" / name
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        kernel_manager_class=kernel_manager_class(),
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    assert not errors(nb)
    assert claim(nb) == ("synthetic", "smoke")  # auto without UTKFace: synthetic faces, and the banner says so
    if "solutions" not in name:
        last = "".join(o.get("text", "") for o in [c for c in nb.cells if c.cell_type == "code"][-1].outputs)
        clock = [line for line in last.splitlines() if line.startswith("This copy ran from its setup cell to here in")]
        assert len(clock) == 1, last
        record_property("clock", f"{name}: {clock[0]}")  # make test lists these at its end (conftest.py)


def test_render_drops_tensorflow_startup_noise_but_keeps_other_stderr():
    from utils.render import drop_tf_noise

    noise = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1795940749.332902   24889 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
        "GPU will not be used.\n"
    )
    outs = [
        {"output_type": "stream", "name": "stderr", "text": noise},
        {"output_type": "stream", "name": "stderr", "text": noise + "UserWarning: something real\n"},
        {"output_type": "stream", "name": "stdout", "text": noise},
    ]
    kept = drop_tf_noise(outs)
    assert [o["text"] for o in kept] == ["UserWarning: something real\n", noise]


READING_WORDS_PER_MINUTE = 200  # a careful reader of technical prose
READING_MINUTES = 20  # the course's promise: each notebook reads in 20 minutes or less


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_each_notebook_reads_in_twenty_minutes(path: Path):
    """Its prose read in full, its printed outputs at half that time (a reader skims tables of figures)."""
    nb = nbformat.read(path, as_version=4)
    words = lambda text: len(re.findall(r"[^\W_]+", text))  # noqa: E731
    prose = sum(words(c.source) for c in nb.cells if c.cell_type == "markdown")
    printed = sum(words(nbs._output_text(o)) for c in nb.cells for o in c.get("outputs", []) if "text" in o)
    printed += sum(
        words("".join(o.get("data", {}).get("text/plain", ""))) for c in nb.cells for o in c.get("outputs", [])
    )
    minutes = (prose + printed / 2) / READING_WORDS_PER_MINUTE
    assert minutes <= READING_MINUTES, f"{path.name}: {prose} words of prose and {printed} printed, ~{minutes:.0f} min"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_cleaning_a_committed_notebook_changes_nothing(path: Path):
    """`python -m utils.notebooks clean` is a no-op on every committed notebook: badges of appendix and solution
    notebooks keep their folder, and no print is left split across stream outputs."""
    nb = nbformat.read(path, as_version=4)
    assert nbs.cleaned(path) == nb


def test_render_joins_a_print_split_across_stream_messages():
    from utils.render import join_streams

    outs = [
        {"output_type": "stream", "name": "stdout", "text": "a line"},
        {"output_type": "stream", "name": "stdout", "text": [" goes on\n", "next\n"]},
        {"output_type": "stream", "name": "stderr", "text": "warning\n"},
        {"output_type": "display_data", "data": {"text/plain": "x"}},
        {"output_type": "stream", "name": "stdout", "text": "after\n"},
    ]
    joined = join_streams(outs)
    assert [o.get("text") for o in joined] == ["a line goes on\nnext\n", "warning\n", None, "after\n"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_notebook_opens_unmodified_in_jupyterlab(path: Path):
    """Out[n] stands beside In[n], and the kernel named is the one `make install` registers (no 'modified' mark)."""
    from utils.render import KERNELSPEC

    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("kernelspec") == KERNELSPEC
    off = [
        (c.execution_count, o["execution_count"])
        for c in nb.cells
        for o in c.get("outputs", [])
        if o.get("output_type") == "execute_result" and o.get("execution_count") != c.execution_count
    ]
    assert not off, off
    assert KERNELSPEC["display_name"] in (REPO_ROOT / "Makefile").read_text()


# ------------------------------------------------------------- a store that lacks rows: what a class profile holds


@pytest.fixture(scope="session")
def class_like_store(tmp_path_factory) -> Path:
    """A smoke store holding only what the committed class store holds (its configurations and seeds, trained here in
    the smoke profile): most rows of most tables are missing, as in a class that has trained two variants."""
    from utils.base.profiles import PROFILES
    from utils.data.datasets import for_profile
    from utils.train.runner import run
    from utils.train.store import ResultsStore

    committed = sorted((REPO_ROOT / "results").glob("class-real-*/*-seed*.json"))
    wanted = {(json.loads(p.read_text())["experiment"], json.loads(p.read_text())["variant"]) for p in committed}
    assert wanted == {("final", "article network"), ("ordinal", "OR-CNN")}, "the class store changed: update the test"
    root = tmp_path_factory.mktemp("class_like") / "results"
    store, smoke = ResultsStore(root), PROFILES["smoke"]
    data = for_profile(smoke)
    for experiment, variant in sorted(wanted):
        run([experiment], smoke, [0, 1, 2], data=data, store=store, train_missing=True, verbose=0, only=[variant])
    return root


@pytest.mark.notebooks
@pytest.mark.parametrize("stem", ["05_separate_networks", "06_ordinal_regression", "07_error_analysis"])
def test_run_all_reads_a_store_that_lacks_rows(stem: str, class_like_store: Path, tmp_path, monkeypatch):
    """Run All with TRAIN = False over a store that lacks most rows (the class profile's case) prints what is missing
    instead of failing: empty learning curves, a test against an absent reference, a paired comparison without a
    model."""
    from utils.render import execute

    for var in DATA_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("UTKFACE_RESULTS_DIR", str(class_like_store))
    src = next(p for p in NOTEBOOKS if p.stem == stem)
    execute(src, tmp_path / src.name, "smoke", {"TRAIN": False}, timeout=600)  # raises RenderError naming the cell
    nb = nbformat.read(tmp_path / src.name, as_version=4)
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "not stored yet, not trained now" in text  # it did read a store that lacks rows, and said so
