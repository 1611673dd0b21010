"""Age and gender for any photo: find the faces, crop each as UTKFace crops its faces, ask the kept models.

    python -m utils.use.predict PHOTO [PHOTO ...] [--json] [--model PATH ...] [--no-detect]

The course's default models were chosen on validation from the stored runs (``experiments`` ``use_model``): an OR-CNN
for age, and for gender whichever did better on validation, a unit fitted on the OR-CNN's frozen features (``transfer``)
or a separate gender network (``loading.default_models``). Each is a serving model (``serving``): uint8
images in; age in years, P(age > a) and P(female) out. Several models may be given (say an age and a gender network);
where two give the same output, the first one given wins.

Exit codes: 0 every photo gave at least one face; 1 some photo could not be read (not a regular file, over
``photos.MAX_PHOTO_BYTES`` = 64 MiB, not an image, corrupt) or showed no face, or a face could not be answered (each
says why in one line on stderr, and the others are still answered); 2 bad arguments (including a --model that is
missing, not a serving model, takes images of another shape, or has a run record beside it that is unreadable).

Outputs that are not numbers are not passed on: a face for which a model gives NaN or infinity, or a ``female`` (or
``age_above``) that is not a probability in [0, 1], is not answered. Its ``Face.error`` says why, its values are None
(``null`` in --json, beside an ``error`` field), the command line names it on stderr and exits 1. --json output is
strict JSON (no NaN). Photos larger than ``photos.DECODE_SIDE`` (4096 px) are reduced while decoding
(``photos.read_photo``); boxes are given in the original photo's pixels.

Run as a program, TensorFlow's start-up logging (oneDNN, CUDA probing) is kept off stderr (``TF_CPP_MIN_LOG_LEVEL=3``,
absl at ERROR, and the lines TensorFlow's C++ writes before its logging starts are dropped) and one line says which
device runs the models; imported as a library, nothing of TensorFlow's logging is changed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..base import labels
from ..base.labels import MIN_AGE, age_distribution, age_interval  # noqa: F401 - re-exported for the notebook
from ..base.quiet import import_tensorflow_quietly
from . import faces as _faces
from .faces import Box, centre_square, detect_faces, like_training, scaled_box, utk_crop
from .loading import check_serving, default_models, load_models
from .photos import ImageError, read_photo

if TYPE_CHECKING:
    import keras


class NoFaceFound(ValueError):
    """A readable photo in which the detector found no face."""


@dataclass
class Face:
    """One face: where it is, and what the models say about it."""

    box: Box | None  # None on the direct path (the whole image is taken as a UTKFace-like crop)
    age: float | None = None  # years
    age_low: float | None = (
        None  # the central interval read from the ordinal probabilities (None for a regression head)
    )
    age_high: float | None = None
    interval: float | None = None  # its nominal probability (labels.INTERVAL when it was computed)
    interval_mass: float | None = None  # the probability the model itself puts inside it (>= interval: whole years)
    female: float | None = None  # P(female)
    age_above: np.ndarray | None = field(default=None, repr=False)  # P(age > min_age + k), ordinal heads only
    min_age: int = MIN_AGE
    warning: str = ""
    error: str = ""  # why the face is not answered (a model gave NaN, or a "probability" outside [0, 1]); values None

    def to_dict(self) -> dict[str, Any]:
        """Plain types for JSON (without the probability vector); ``error`` only when the face was not answered."""
        d = {k: v for k, v in asdict(self).items() if k not in ("age_above", "box", "min_age", "error")}
        d["box"] = self.box.to_dict() if self.box is not None else None
        if self.error:
            d["error"] = self.error
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}

    def where(self) -> str:
        """Where the face is, for people."""
        return f"at x={self.box.x}, y={self.box.y}, {self.box.w}x{self.box.h} px" if self.box else "(whole image)"

    def describe(self) -> str:
        """One line for people: where, age (interval), gender; or where, and why it was not answered."""
        if self.error:
            return f"{self.where()}: not answered: {self.error}"
        parts = [self.where()]
        if self.age is not None:
            interval = (
                f" ({self.interval:.0%} interval {self.age_low:.0f}-{self.age_high:.0f})"
                if self.age_low is not None
                else ""
            )
            parts.append(f"age {self.age:.0f}{interval}")
        if self.female is not None:
            parts.append(f"P(female) {self.female:.2f}, so {'female' if self.female > 0.5 else 'male'}")
        return ", ".join(parts) + (f"  [{self.warning}]" if self.warning else "")


class Predictor:
    """The detector plus one or more serving models; ``predict`` answers for one photo.

    ``prefer`` says which model answers an output when several give it, e.g. ``{"female": 1}`` takes P(female) from the
    second model; otherwise the first model that gives an output answers it.
    Without ``models``, the course's defaults answer as notebook 09 chose (``loading.default_models``).
    """

    def __init__(self, models: list[keras.Model] | list[Path] | None = None, prefer: dict[str, int] | None = None):
        if not models:
            models, default_prefer = default_models()
            prefer = default_prefer if prefer is None else prefer
        if not hasattr(models[0], "predict"):
            models = load_models(models)
        self.models = models
        self.prefer = dict(prefer or {})
        sizes = {check_serving(m, m.name) for m in models}
        if len(sizes) != 1:
            raise ValueError(f"the models take images of different sizes {sorted(sizes)}; give models of one size")
        self.image_size = sizes.pop()

    def model_for(self, key: str) -> keras.Model:
        """The model that answers output ``key`` ('age', 'age_above', 'female'): as ``prefer`` says, else the first
        model that gives it."""
        if key in self.prefer:
            return self.models[self.prefer[key]]
        found = [m for m in self.models if isinstance(m.output, dict) and key in m.output]
        if not found:
            raise ValueError(f"no model gives {key!r}")
        return found[0]

    def to_input(self, crops: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """UTKFace-like square crops (any size, uint8 RGB) at the models' size,
        resized as training resized its images."""
        return np.stack([like_training(c, self.image_size) for c in crops])

    def outputs(self, crops: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
        """Every model's outputs for a batch of crops (any square size)."""
        return self.outputs_at_size(self.to_input(crops))

    def outputs_at_size(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The same for uint8 images already at the models' size (e.g. the loader's ``data.images``)."""
        if x.shape[1:3] != (self.image_size, self.image_size):
            raise ValueError(
                f"images are {x.shape[1]}x{x.shape[2]} px; the models take {self.image_size} px (use outputs)"
            )
        merged: dict[str, np.ndarray] = {}
        for i, model in enumerate(self.models):
            for key, value in model.predict(x, batch_size=256, verbose=0).items():
                if self.prefer.get(key, i) == i and key not in merged:
                    merged[key] = np.asarray(value)
        if "age_above" in merged:
            merged["min_age"] = np.array(getattr(self.models[self.prefer.get("age_above", 0)], "min_age", MIN_AGE))
        return merged

    def answer(self, crops: list[np.ndarray], boxes: list[Box | None], warnings: list[str]) -> list[Face]:
        """Faces from crops and their boxes; a face whose outputs are not numbers (or not probabilities where they must
        be) gets ``error`` and no values."""
        out = self.outputs(crops)
        answered = []
        for i, (box, warning) in enumerate(zip(boxes, warnings)):
            face = Face(box, warning=warning, error=_bad_output(out, i))
            if face.error:
                answered.append(face)
                continue
            if "age" in out:
                face.age = float(out["age"][i].reshape(-1)[0])
            if "age_above" in out:
                face.age_above, face.min_age, face.interval = out["age_above"][i], int(out["min_age"]), labels.INTERVAL
                face.age_low, face.age_high, face.interval_mass = age_interval(
                    face.age_above, face.interval, face.min_age
                )
            if "female" in out:
                face.female = float(out["female"][i].reshape(-1)[0])
            answered.append(face)
        return answered

    def smallest_face(self) -> int:
        """The face width (px) the network saw in training; smaller detected faces are upsampled,
        and a warning says so."""
        return int(round(self.image_size / _faces.CROP[0]))

    def model_input(self, image: np.ndarray, face: Face) -> np.ndarray:
        """What the models saw for one face of a photo: its crop at the models' size (the centre square without a
        box)."""
        if face.box is None:
            return self.to_input([centre_square(image)])[0]
        return self.to_input([utk_crop(image, face.box)])[0]

    def predict(self, source: str | Path | np.ndarray, detect: bool = True) -> list[Face]:
        """The faces of one photo (path, array or PIL image), left to right. ``detect=False``: the photo is one crop.

        The photo is converted once; a file or PIL image larger than ``photos.DECODE_SIDE`` is reduced while decoding
        (``photos.read_photo``), its faces are found and cropped in the reduced photo, and their boxes are given in the
        original photo's pixels. A face the models answer with NaN, or with a P(female) outside [0, 1], has ``error``.
        Raises ImageError (unreadable) or NoFaceFound, each naming the photo and what to do.
        """
        image, (sx, sy) = read_photo(source)
        name = str(source) if isinstance(source, (str, Path)) else "the image"
        h, w = image.shape[:2]
        if not detect:
            return self.answer(
                [centre_square(image)], [None], ["not square: the centre square was used"] if h != w else [""]
            )
        boxes = detect_faces(image)
        full = (round(w * sx), round(h * sy))
        if not boxes:
            raise NoFaceFound(
                f"{name}: no face found ({full[0]}x{full[1]} px). Try a closer, frontal, well-lit "
                "photo; if the photo is already a face crop, use --no-detect (detect=False)"
            )
        small = self.smallest_face()
        reduced = f" in the photo as read, reduced to {w}x{h} px" if (sx, sy) != (1.0, 1.0) else ""
        warnings = [
            f"small face ({b.w} px wide{reduced}; the network learned from faces about {small} px wide): a rough guess"
            if b.w < small
            else ""
            for b in boxes
        ]
        shown = [scaled_box(b, sx, sy, *full) for b in boxes]
        return self.answer([utk_crop(image, b) for b in boxes], shown, warnings)

    def predict_or_whole(self, image: np.ndarray) -> list[Face]:
        """``predict``, and when no face is found, say so and answer for the whole photo as one crop (a notebook's
        way)."""
        try:
            return self.predict(image)
        except NoFaceFound as exc:
            print(f"{exc}\nanswering for the whole photo instead, as if it were a face crop")
            return self.predict(image, detect=False)


def _bad_output(out: dict[str, np.ndarray], i: int) -> str:
    """Why face ``i``'s outputs cannot be given (NaN or infinite values, a probability outside [0, 1]); "" when fine."""
    for key in ("age", "age_above", "female"):
        if key not in out:
            continue
        value = np.asarray(out[key][i], np.float64).reshape(-1)
        if not np.isfinite(value).all():
            return (
                f"the model's {key!r} output is NaN or infinite for this face: the model is broken (its weights hold "
                "NaN, or it overflowed); retrain it or give another --model"
            )
        if key != "age" and ((value < 0) | (value > 1)).any():
            bad = value[(value < 0) | (value > 1)][0]
            return (
                f"the model's {key!r} output is {bad:.4g}, not a probability in [0, 1]: it must end in a sigmoid; "
                "give a serving model written by utils.nets.serving"
            )
    return ""


_DEFAULT: Predictor | None = None


def predict(source: str | Path | np.ndarray, detect: bool = True, models: list[Path] | None = None) -> list[Face]:
    """The faces of one photo with the course's default models (loaded once), or with ``models`` (.keras paths)."""
    global _DEFAULT
    if models:
        return Predictor(models).predict(source, detect)
    if _DEFAULT is None:
        _DEFAULT = Predictor()
    return _DEFAULT.predict(source, detect)


def device() -> str:
    """Which device runs the models, plainly: "CPU", or "GPU (name)"."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return f"{keras.backend.backend()} backend"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU ({gpus[0].name})" if gpus else "CPU"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None, quiet: bool = False) -> int:
    """Command line: one line per face (or JSON); per-photo and per-face errors on stderr, one line each; exit code 1
    if any photo or face failed, 2 for bad arguments. ``quiet``: keep TensorFlow's start-up logging off stderr (as a
    program)."""
    parser = argparse.ArgumentParser(
        prog="python -m utils.use.predict",
        description="Age and gender of the faces in photos.",
        epilog="Exit codes: 0 all photos answered, 1 some photo unreadable (not a regular "
        "file, over 64 MiB, not an image) or without a face, or a face the model "
        "could not answer, 2 bad arguments (a --model that is missing, not a serving "
        "model, of another input shape or with a bad run record beside it included).",
    )
    parser.add_argument("photos", nargs="+", type=Path, metavar="PHOTO", help="image files (JPEG, PNG, WebP, ...)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    parser.add_argument(
        "--model",
        action="append",
        type=Path,
        metavar="PATH",
        help="a serving model (.keras); repeat for several (the first answers first). Default: the course's models "
        "(notebook 09's: the kept OR-CNN for age, P(female) from whichever gender model did better on validation)",
    )
    parser.add_argument("--no-detect", action="store_true", help="the photos are already face crops: skip the detector")
    args = parser.parse_args(argv)
    for path in args.model or []:
        if not path.is_file():
            parser.error(f"--model {path}: no such file")
    if quiet:
        import_tensorflow_quietly()
    t0 = time.perf_counter()
    try:
        predictor = Predictor(args.model)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    loaded = time.perf_counter() - t0
    on = device()
    if not args.json:
        print(f"running on {on}" + (" (TensorFlow found no GPU)" if on == "CPU" else ""), file=sys.stderr)
    report, failed = [], 0
    for photo in args.photos:
        try:
            faces = predictor.predict(photo, detect=not args.no_detect)
        except Exception as exc:  # noqa: BLE001 - one photo's failure, whatever it is, must not stop the others
            message = (
                _one_line(exc)
                if isinstance(exc, (ImageError, NoFaceFound))
                else f"{photo}: could not be answered ({type(exc).__name__}: {_one_line(exc)[:300]})"
            )
            failed += 1
            print(f"error: {message}", file=sys.stderr)
            report.append({"file": str(photo), "error": message, "faces": []})
            continue
        report.append({"file": str(photo), "faces": [f.to_dict() for f in faces]})
        failed += any(face.error for face in faces)
        for i, face in enumerate(faces, 1):
            if face.error:
                print(f"error: {photo}: face {i} of {len(faces)} {face.describe()}", file=sys.stderr)
            elif not args.json:
                print(f"{photo}: face {i} of {len(faces)} {face.describe()}")
    if args.json:
        print(
            json.dumps(
                {"photos": report, "device": on, "models_loaded_seconds": round(loaded, 2)}, indent=1, allow_nan=False
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2") == "2":  # unset, or utils' own default for the notebooks
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.exit(main(quiet=True))
