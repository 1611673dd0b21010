"""Google Colab helpers: warn without a GPU, and find UTKFace on Drive or through the Kaggle API."""
from __future__ import annotations

import os
from pathlib import Path

from .data import DatasetNotFound, download_kaggle, locate

DRIVE_CANDIDATES = ("/content/drive/MyDrive/UTKFace.tar.gz", "/content/drive/MyDrive/utkface-new.zip",
                    "/content/drive/MyDrive/UTKFace")


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
    print("UTKFace not found, so the notebooks run on synthetic faces. To use the real data, either\n"
          "  * upload kaggle.json (Kaggle > Settings > API) to ~/.kaggle/ and re-run this cell, or\n"
          "  * mount Google Drive (from google.colab import drive; drive.mount('/content/drive')) holding\n"
          "    UTKFace.tar.gz or utkface-new.zip in MyDrive, and re-run this cell.")
    return None
