"""Where the course keeps its files: repository root, data, results and build folders."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("UTKFACE_DATA_DIR", REPO_ROOT / "data"))
CACHE_DIR = DATA_DIR / "cache"
SPLITS_DIR = REPO_ROOT / "data" / "splits"
RESULTS_DIR = Path(os.environ.get("UTKFACE_RESULTS_DIR", REPO_ROOT / "results"))
BUILD_DIR = REPO_ROOT / "build"
USER_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "utkface"
"""Machine-local state outside the work tree: checkpoints, measured speeds, the run queue's lock."""
CHECKPOINT_DIR = Path(os.environ.get("UTKFACE_CHECKPOINT_DIR", USER_CACHE / "checkpoints"))
"""Per-epoch state of runs in progress, so a run cut short (a session ending, a kill) resumes on this machine."""
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
"""The course notebooks (``NN_*.ipynb``): the folder is the one list of them (``course_notebooks``)."""
GITHUB_REPO = "utkface-course/utkface-age-gender"
"""Where the course is published; every notebook's Colab badge and clone command use it (a test checks)."""


def checkpoint_folder(run: Path) -> Path:
    """Where the epoch checkpoints of the run to be stored at ``run`` (a results/ record path) live on this machine."""
    return CHECKPOINT_DIR / run.parent.name / run.stem


def shown(path: Path | str) -> str:
    """A path as printed in notebooks: relative to the repository when inside it,
    with ~ for the home folder otherwise."""
    text = str(path)
    if not Path(text).is_absolute():  # already relative, or a description such as "synthetic faces"
        return text
    for candidate in (Path(text), Path(text).resolve()):  # unresolved first: a symlinked data folder stays inside
        try:
            return str(candidate.relative_to(REPO_ROOT))
        except (ValueError, OSError):
            continue
    else:
        home = str(Path.home())
        return "~" + text[len(home) :] if home not in ("", "/") and text.startswith(home + os.sep) else text


def course_notebooks(folder: Path | None = None) -> dict[str, Path]:
    """The numbered course notebooks by their number ('01': notebooks/01_preprocessing.ipynb, ...), from the folder."""
    return {p.name[:2]: p for p in sorted(Path(folder or NOTEBOOKS_DIR).glob("[0-9][0-9]_*.ipynb"))}


def notebook_title(path: Path) -> str:
    """A notebook's title: its first heading without the number ('The multi-output network' for '# 02 · The ...')."""
    import json
    import re

    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    first = "".join(cells[0]["source"]).splitlines()[0] if cells else ""
    return re.sub(r"^#\s*\d\d\s*·\s*", "", first).strip() or Path(path).stem
