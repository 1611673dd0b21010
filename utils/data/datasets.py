"""The one place that picks the data: for a profile, or a folder for the benchmark,
and the 'auto' profile that follows."""

from __future__ import annotations

from pathlib import Path

from ..base.profiles import Profile, has_gpu, resolve
from . import DatasetNotFound, IncompleteArchive, UnsafeArchive, UTKFace, load_utkface, locate
from .synthetic import make_synthetic


def real_data_found() -> bool:
    """True when UTKFace is found ($UTKFACE_DIR, data/, or an archive there)."""
    try:
        locate()
    except (
        IncompleteArchive,
        UnsafeArchive,
    ) as exc:  # a broken or refused archive in data/: say so, run on synthetic faces
        print(f"warning: {exc}\nUntil then the course runs on synthetic faces.")
        return False
    except DatasetNotFound:
        return False
    return True


def resolve_profile(name: str = "auto") -> Profile:
    """The named profile; 'auto' is full on a GPU and laptop on a CPU when UTKFace is found, else smoke."""
    return resolve(
        name, real_data=real_data_found() if name == "auto" else True, gpu=has_gpu() if name == "auto" else False
    )


def folder(
    profile: Profile | None = None, source: str | Path | None = None, synthetic: int = 0, fallback: int = 0
) -> tuple[Path, bool]:
    """The image folder to load and whether it is synthetic.

    ``source`` when given; synthetic faces for a synthetic profile (or ``synthetic`` of them when > 0); else UTKFace,
    or ``fallback`` synthetic faces when it is not found (0: UTKFace is required and its absence says how to get it).
    """
    if source is not None:
        return locate(source), False
    if profile is not None and profile.data == "synthetic":
        synthetic = synthetic or profile.n_synthetic
    if not synthetic:
        try:
            return locate(), False
        except DatasetNotFound:
            if not fallback:
                raise
            synthetic = fallback
    return make_synthetic(n=synthetic, seed=0), True


def for_profile(profile: Profile, source: str | Path | None = None, verbose: bool = True) -> UTKFace:
    """The dataset a profile trains on: synthetic faces for 'smoke', UTKFace (or ``source``) otherwise."""
    path, synthetic = folder(profile, source)
    return load_utkface(path, profile.image_size, synthetic=synthetic, verbose=verbose)
