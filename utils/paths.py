"""Where the course keeps its files: repository root, data, results and build folders."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("UTKFACE_DATA_DIR", REPO_ROOT / "data"))
CACHE_DIR = DATA_DIR / "cache"
SPLITS_DIR = REPO_ROOT / "data" / "splits"
RESULTS_DIR = Path(os.environ.get("UTKFACE_RESULTS_DIR", REPO_ROOT / "results"))
BUILD_DIR = REPO_ROOT / "build"
GITHUB_REPO = "utkface-course/utkface-age-gender"
"""Where the course is published; every notebook's Colab badge and clone command use it (a test checks)."""
