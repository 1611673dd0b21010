"""The first cell of every notebook: versions, seed, profile, data, and a banner saying what the results are."""

from __future__ import annotations

import html
import os
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

# When the setup cell began importing this module (TensorFlow included): where the first setup's clock starts.
_IMPORTED = [time.perf_counter()]


@contextmanager
def native_stderr_silenced():
    """Hide what C++ code writes straight to file descriptor 2 (TensorFlow's start-up lines) while it starts."""
    try:
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with native_stderr_silenced():
    import tensorflow as tf

    tf.config.list_physical_devices("GPU")  # the CUDA probe prints its complaints now, silenced
tf.get_logger().setLevel("ERROR")  # e.g. retracing notes when many small models are evaluated

import keras  # noqa: E402
import matplotlib as mpl  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .base.profiles import Profile  # noqa: E402
from .data import UTKFace, datasets  # noqa: E402
from .train.machine import device_name as device_name  # noqa: E402  (notebook 09 names the machine it timed)
from .train.machine import set_precision  # noqa: E402
from .train.runner import TRAIN_ENV  # noqa: E402
from .train.store import ResultsStore  # noqa: E402

LAUNCH_TRAIN = os.environ.get(TRAIN_ENV)
"""What the command line that started this kernel said about training (``render --train``), before any ``TRAIN``."""

MIN_TF = (2, 16)


@dataclass
class Session:
    """What a notebook works with: the profile, the data and the results store."""

    profile: Profile
    data: UTKFace
    store: ResultsStore
    seeds: list[int] | None  # None: each experiment's own seeds (experiments.py)
    precision: str
    show_faces: bool = True  # False while rendering the committed notebooks: UTKFace faces are never stored there
    started: float = field(default_factory=time.perf_counter)  # when the setup cell began (``clock``)

    def clock(self) -> str:
        """How long this copy has run, from its setup cell to here, and on what: each notebook's last code cell
        prints it, the time its *Time* section cites."""
        seconds = time.perf_counter() - self.started
        took = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
        load = f"; load average {os.getloadavg()[0]:.1f} over its last minute" if hasattr(os, "getloadavg") else ""
        return (
            f"This copy ran from its setup cell to here in {took}: profile '{self.profile.name}', "
            f"{'synthetic faces' if self.data.synthetic else 'real UTKFace'}, {device_name()}, {self.precision}{load}."
        )


def check_versions() -> str:
    """Fail early, with what to do, when TensorFlow is too old for Keras 3."""
    tf_version = tuple(int(p) for p in tf.__version__.split(".")[:2])
    if tf_version < MIN_TF or not keras.__version__.startswith("3"):
        raise RuntimeError(
            f"this course needs TensorFlow >= 2.16 with Keras 3 (found TF {tf.__version__}, "
            f"Keras {keras.__version__}); run `pip install -r requirements.txt`"
        )
    return (
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"NumPy {np.__version__}"
    )


def banner(data: UTKFace, profile: Profile, details: list[str] | None = None) -> None:
    """Show (as HTML in Jupyter, as text elsewhere) whether the results below come from real or synthetic data, then
    the session's ``details`` (profile, stored runs, versions), one line each: the notebook's one setup banner."""
    if data.synthetic:
        text = (
            f"SYNTHETIC DATA — profile '{profile.name}': {len(data.table):,} generated faces at {data.size} px. "
            "Every number and plot below comes from synthetic faces and says nothing about UTKFace. "
            "Get the real data (see data/README.md) to reproduce the article."
        )
        color = "#fff3cd"
    else:
        text = (
            f"Real UTKFace — profile '{profile.name}': {len(data.table):,} faces at {data.size} px, "
            f"split {data.split_id}, dataset {data.fingerprint}."
        )
        color = "#d1e7dd"
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display

        if get_ipython() is not None:
            rest = "".join(f'<div style="font-weight:400;margin-top:3px">{html.escape(d)}</div>' for d in details or [])
            display(
                HTML(
                    f'<div style="background:{color};color:#222;padding:8px 12px;border-radius:6px">'
                    f'<div style="font-weight:600">{text}</div>{rest}</div>'
                )
            )
            return
    except ImportError:
        pass
    print(f"*** {text} ***")
    for line in details or []:
        print(f"    {line}")


def stored_runs_line(store: ResultsStore, prof: Profile, data: UTKFace) -> str:
    """How many runs are stored for this profile and split, and that the tables read them (a missing one trains only
    when asked); where and in which precision each was trained is in its record and the README's Performance section."""
    try:
        runs = store.runs(prof, data.kind, data.fingerprint, data.split_id)
    except Exception:  # a store that cannot be read must not stop the setup cell
        runs = []
    if not runs:
        return "Stored runs: none for this profile and split yet; a table trains what it lacks only when TRAIN = True."
    return (
        f"Stored runs: {len(runs)} for this profile and split; the tables read them, and a missing run is trained only "
        "with TRAIN = True."
    )


def training_hardware() -> str:
    """Where a run trained now would run, in plain words: the GPU, or the CPU and its cores."""
    from .base.profiles import has_gpu

    return "the GPU" if has_gpu() else f"the CPU ({os.cpu_count()} cores)"


def set_train(train: bool | str) -> None:
    """Whether the tables train what the store lacks: True, False, or "auto" (back to what the command line said, so
    a ``TRAIN = True`` set earlier in the same kernel does not outlive a return to "auto")."""
    if train not in (True, False, "auto"):
        raise ValueError(f"TRAIN must be True, False or 'auto', got {train!r}")
    if train != "auto":
        os.environ[TRAIN_ENV] = "1" if train else "0"
    elif LAUNCH_TRAIN is None:
        os.environ.pop(TRAIN_ENV, None)
    else:
        os.environ[TRAIN_ENV] = LAUNCH_TRAIN


def setup(
    profile: str = "auto",
    seeds: list[int] | None = None,
    seed: int = 0,
    source: str | None = None,
    show_faces: bool = True,
    brief: bool = False,
    train: bool | str = "auto",
) -> Session:
    """Check versions, seed everything, pick the profile, load the data and show the banner.

    ``train``: True trains every run a table asks for that the results store lacks (hours on real data), False trains
    nothing, "auto" trains only on synthetic faces (seconds) unless the command line said otherwise.

    ``brief``: one line for the data instead of the loader's full report (notebook 01 prints and explains it)."""
    started = _IMPORTED.pop() if _IMPORTED else time.perf_counter()  # a first setup counts the cell's imports too
    set_train(train)
    versions = check_versions()
    keras.utils.set_random_seed(seed)
    mpl.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.max_open_warning": 0})
    pd.set_option("display.max_colwidth", 160)  # labels and caveats are read whole, not cut at 50 characters
    prof = datasets.resolve_profile(profile)
    precision = set_precision("auto")
    data = datasets.for_profile(prof, source, verbose=not brief)
    store = ResultsStore()
    lines = [f"Profile: {prof.description}.", stored_runs_line(store, prof, data)]
    if brief:
        r = data.report
        lines.append(
            f"Loaded {r.loaded:,} faces of {r.files:,} files ({r.seconds:.1f} s; notebook 01 shows the loader's "
            "full report)."
        )
    lines.append(f"{versions}; a run trained here uses {training_hardware()} (README, Performance).")
    banner(data, prof, lines)
    return Session(prof, data, store, list(seeds) if seeds is not None else None, precision, show_faces, started)


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules


def photo_picker(upload: bool):
    """A way to choose your own photo: Colab's files.upload() (waits for the choice), or an upload button in
    JupyterLab (choose a file, then run the next cell). None when ``upload`` is False."""
    if not upload:
        return None
    if in_colab():
        from google.colab import files  # type: ignore[import-not-found]

        return files.upload()
    try:
        import ipywidgets
    except ImportError:
        raise ImportError(
            "the upload button needs ipywidgets: pip install ipywidgets (or set PHOTO to a file path)"
        ) from None
    from IPython.display import display

    button = ipywidgets.FileUpload(accept="image/*", multiple=False, description="Choose a photo")
    display(button)
    return button


def chosen_photo(path=None, picker=None):
    """The photo to use: an uploaded one (from ``photo_picker``), else ``path``, else the public-domain demo photo."""
    import io

    from PIL import Image

    from .use.photos import demo_photo

    if isinstance(picker, dict) and picker:  # Colab: {file name: bytes}
        return Image.open(io.BytesIO(next(iter(picker.values()))))
    value = getattr(picker, "value", None)
    if value:  # ipywidgets 8: a tuple of files, each with .content
        return Image.open(io.BytesIO(bytes(value[0]["content"] if isinstance(value[0], dict) else value[0].content)))
    if picker is not None:
        print(
            "no photo uploaded yet: choose one with the button, then run this cell again "
            "(the demo photo is used for now)"
        )
    return path if path is not None else demo_photo()
