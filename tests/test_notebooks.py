"""Execute every course notebook in the smoke profile (synthetic data), writing results to a temporary store."""
from pathlib import Path

import nbformat
import pytest

from utils.notebooks import execute, notebooks

NOTEBOOKS = notebooks()


def test_there_are_numbered_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("01_")


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_profile(path: Path, tmp_path, monkeypatch):
    monkeypatch.setenv("UTKFACE_RESULTS_DIR", str(tmp_path / "results"))
    before = path.read_bytes()
    out = tmp_path / path.name
    execute(path, out, "smoke", timeout=900)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    text = "".join(str(o) for c in nb.cells for o in c.get("outputs", []))
    assert "SYNTHETIC DATA" in text  # the banner says what the results are
    assert path.read_bytes() == before  # the committed notebook is untouched


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_structure(path: Path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0].source
    assert first.startswith("# ") and "colab-badge" in first
    assert "google.colab" in nb.cells[1].source
    from utils.paths import GITHUB_REPO

    assert f"github/{GITHUB_REPO}/blob/main/notebooks/{path.name}" in first
    assert f"github.com/{GITHUB_REPO}.git" in nb.cells[1].source
    assert "parameters" in nb.cells[2].metadata.get("tags", [])
    assert "widgets" not in nb.metadata
    long_cells = [c.source for c in nb.cells if c.cell_type == "code" and c.source.count("\n") >= 6 and "google.colab" not in c.source]
    assert not long_cells, "code cells stay short; put logic in utils/"
    import re

    outputs = "".join(str(o) for c in nb.cells for o in c.get("outputs", []))
    assert not re.search(r"(/home/|/root/|/work/|/Users/|C:\\\\Users)", outputs), "outputs show paths of the machine that rendered them"


def test_clean_strips_widget_state(tmp_path):
    from utils.notebooks import clean

    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    cell = nbformat.v4.new_code_cell("1")
    cell.metadata["papermill"] = {"duration": 1}
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "x", "application/vnd.jupyter.widget-view+json": {}})]
    nb.cells = [cell]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    clean(path)
    text = path.read_text()
    assert "widget" not in text and "papermill" not in text and '"x"' in text
