"""UTKFace on disk: find it, unpack it, account for every file, decode in parallel, cache, split.

One concern per module, in the order the data flows: ``archive`` (find a folder or unpack an archive safely, or
download from Kaggle), ``scan`` (labels from file names, content hashes, duplicates), ``decode`` (parallel JPEG
decoding), ``load`` (the cached scan and images, the split, ``UTKFace``), ``cli`` (``python -m utils.data``),
``reencode`` (a small lossy copy to carry to another machine) and ``reencoded`` (that copy read back as the same
data set).
The cache itself (locking, checking, pruning) lives in ``utils.data.cache``, the splits in ``utils.data.splits``.
"""

from __future__ import annotations

from .archive import (
    EXTRACTED,
    HOW_TO_GET,
    DatasetNotFound,
    IncompleteArchive,
    UnsafeArchive,
    archive_digest,
    download_kaggle,
    extract_archive,
    find_image_folder,
    locate,
)
from .cli import main
from .decode import decode_images
from .load import SPLITS, LoadReport, UTKFace, load_utkface, prune_caches
from .reencoded import ReencodedMismatch
from .scan import duplicate_files, duplicate_groups, irregular_names, scan
from .splits import SplitFileError, make_split, split_id

__all__ = [
    "EXTRACTED",
    "HOW_TO_GET",
    "SPLITS",
    "DatasetNotFound",
    "IncompleteArchive",
    "LoadReport",
    "ReencodedMismatch",
    "SplitFileError",
    "UTKFace",
    "UnsafeArchive",
    "archive_digest",
    "decode_images",
    "download_kaggle",
    "duplicate_files",
    "duplicate_groups",
    "extract_archive",
    "find_image_folder",
    "irregular_names",
    "load_utkface",
    "locate",
    "main",
    "make_split",
    "prune_caches",
    "scan",
    "split_id",
]
