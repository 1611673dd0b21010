"""Google Colab: the notebooks' first code cell (cloning the course from GITHUB_REPO), then what Colab lacks, a GPU
check and UTKFace from Drive or the Kaggle API.

On Colab, `utils` exists only once the course is cloned, so the clone itself has to be written out in the cell.
`cell_source()` writes that cell from `utils.base.paths.GITHUB_REPO`, the one setting; `python -m utils.notebooks clean`
puts it into every notebook and a test checks that each notebook carries exactly this text. Everything after the
clone lives here, in `bootstrap()`.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .base.paths import GITHUB_REPO
from .data import DatasetNotFound, download_kaggle, locate

DRIVE_CANDIDATES = (
    "/content/drive/MyDrive/UTKFace.tar.gz",
    "/content/drive/MyDrive/utkface-new.zip",
    "/content/drive/MyDrive/UTKFace",
)
CLONE_DIR = "course"
"""Where the cell clones the course, relative to the kernel's start folder (/content on Colab)."""
COLAB_LACKS = {"papermill": "papermill", "kaggle": "kaggle"}
"""Packages the course uses that Colab does not ship (pip name: module); Colab's own TensorFlow is kept."""

_CELL = """\
# Colab: clone the course, install it and what Colab lacks (its TensorFlow is kept). Elsewhere: nothing.
import os, subprocess, sys
if "google.colab" in sys.modules and not os.path.isdir("../utils"):
    if not os.path.isdir("{dest}") and subprocess.run(["git", "clone", "-q", "--depth", "1", "{url}", "{dest}"]).returncode:
        raise SystemExit("could not clone {url}: check the address (utils/base/paths.py GITHUB_REPO) or upload the course folder")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", "{dest}"], check=True)
    import site; site.addsitedir(site.getsitepackages()[0])  # the running kernel sees the new install
    os.chdir("{dest}/notebooks")
if "google.colab" in sys.modules:
    from utils import colab; colab.bootstrap()"""  # noqa: E501 (verbatim: a test compares every notebook's copy)


def clone_url(repo: str = GITHUB_REPO) -> str:
    """The address the Colab cell clones."""
    return f"https://github.com/{repo}.git"


def cell_source(repo: str = GITHUB_REPO) -> str:
    """The first code cell of every notebook, written from GITHUB_REPO (a test checks every notebook carries it)."""
    return _CELL.format(url=clone_url(repo), dest=CLONE_DIR)


def missing_packages() -> list[str]:
    """The packages of COLAB_LACKS that this Python cannot import."""
    return [pip for pip, module in COLAB_LACKS.items() if importlib.util.find_spec(module) is None]


def bootstrap() -> str | None:
    """On Colab, after the clone: install what Colab lacks, then check the GPU and look for UTKFace (see prepare)."""
    missing = missing_packages()
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
    return prepare()


def prepare() -> str | None:
    """On Colab: check for a GPU, then locate UTKFace (data/, Drive, Kaggle); return its path or None (synthetic)."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        print("No GPU attached: Runtime > Change runtime type > GPU. On a CPU the course uses the laptop profile.")
    try:
        return str(locate())
    except DatasetNotFound:
        pass
    for cand in DRIVE_CANDIDATES:
        if Path(cand).exists():
            os.environ["UTKFACE_DIR"] = cand
            return cand
    if Path("~/.kaggle/kaggle.json").expanduser().exists() or os.environ.get("KAGGLE_KEY"):
        try:
            path = str(download_kaggle())
            os.environ["UTKFACE_DIR"] = path
            return path
        except DatasetNotFound as exc:
            print(exc)
    print(
        "UTKFace not found, so the notebooks run on synthetic faces. To use the real data, either\n"
        "  * upload kaggle.json (Kaggle > Settings > API) to ~/.kaggle/ and re-run this cell, or\n"
        "  * mount Google Drive (from google.colab import drive; drive.mount('/content/drive')) holding\n"
        "    UTKFace.tar.gz or utkface-new.zip in MyDrive, and re-run this cell."
    )
    return None
