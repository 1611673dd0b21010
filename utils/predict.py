"""Age and gender for any photo: find the faces, crop each as UTKFace crops its faces, ask the kept models.

    python -m utils.predict PHOTO [PHOTO ...] [--json] [--model PATH ...] [--no-detect]

The course's default model was chosen on validation from the stored runs (``experiments`` ``use_model``): an OR-CNN
for age, with a gender unit fitted on its frozen features (``transfer``). It is a serving model (``serving``): uint8
images in; age in years, P(age > a) and P(female) out. Several models may be given (say an age and a gender network);
where two give the same output, the first one given wins.

Exit codes: 0 every photo gave at least one face; 1 some photo could not be read or showed no face (each says why on
stderr, and the others are still answered); 2 bad arguments.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .faces import CROP, Box, ImageError, detect_faces, read_image, utk_crop
from .paths import RESULTS_DIR

if TYPE_CHECKING:
    import keras

UTK_SIZE = 200
"""UTKFace's crops are 200 x 200; a detected face is cropped to that, then resized to the model's size as training did."""
INTERVAL = 0.8
"""The central probability of the age interval read from an ordinal head's P(age > a)."""
MIN_AGE = 1
"""The youngest age of the course's ordinal heads (``ModelConfig.age_range``); P(age > MIN_AGE + k) is output k."""
DEFAULT_MODELS = ("age: OR-CNN",)
"""The variants of experiment ``use_model`` whose kept models answer by default, in the order they answer."""


class NoFaceFound(ValueError):
    """A readable photo in which the detector found no face."""


@dataclass
class Face:
    """One face: where it is, and what the models say about it."""

    box: Box | None  # None on the direct path (the whole image is taken as a UTKFace-like crop)
    age: float | None = None  # years
    age_low: float | None = None  # the INTERVAL read from the ordinal probabilities (None for a regression head)
    age_high: float | None = None
    female: float | None = None  # P(female)
    age_above: np.ndarray | None = field(default=None, repr=False)  # P(age > MIN_AGE + k), ordinal heads only
    warning: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain types for JSON (without the probability vector)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("age_above", "box")}
        d["box"] = self.box.to_dict() if self.box is not None else None
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}

    def describe(self) -> str:
        """One line for people: where, age (interval), gender."""
        where = f"at x={self.box.x}, y={self.box.y}, {self.box.w}x{self.box.h} px" if self.box else "(whole image)"
        parts = [where]
        if self.age is not None:
            interval = f" ({INTERVAL:.0%} interval {self.age_low:.0f}-{self.age_high:.0f})" if self.age_low is not None else ""
            parts.append(f"age {self.age:.0f}{interval}")
        if self.female is not None:
            parts.append(f"P(female) {self.female:.2f}, so {'female' if self.female > 0.5 else 'male'}")
        return ", ".join(parts) + (f"  [{self.warning}]" if self.warning else "")


def age_distribution(above: np.ndarray) -> np.ndarray:
    """P(age = MIN_AGE + k) for k = 0..K-1 from P(age > MIN_AGE + k), made non-increasing first (OR-CNN's need not be)."""
    s = np.minimum.accumulate(np.clip(np.asarray(above, np.float64), 0.0, 1.0))
    s = np.concatenate([[1.0], s, [0.0]])
    return -np.diff(s)


def age_interval(above: np.ndarray, coverage: float = INTERVAL) -> tuple[float, float]:
    """The central ``coverage`` interval of the age distribution, in years."""
    cdf = np.cumsum(age_distribution(above))
    lo = int(np.searchsorted(cdf, (1 - coverage) / 2))
    hi = int(np.searchsorted(cdf, 1 - (1 - coverage) / 2))
    return float(MIN_AGE + lo), float(MIN_AGE + min(hi, len(cdf) - 1))


def default_model_paths() -> list[Path]:
    """The kept default models (the real-data laptop runs committed under results/)."""
    from .experiments import get
    from .store import file_name

    exp = get("use_model")
    paths = []
    for label in DEFAULT_MODELS:
        variant = next(v for v in exp.variants if v.label == label)
        name = Path(file_name(variant.config, exp.seeds[0])).with_suffix(".keras").name
        found = sorted(RESULTS_DIR.glob(f"laptop-real-*/{exp.sub}/{name}"))
        if not found:
            raise FileNotFoundError(f"the default model {name} is not under {RESULTS_DIR}/laptop-real-*/{exp.sub}/: train it with "
                                    "`python -m utils.experiments run use_model --profile laptop` or give --model PATH")
        paths.append(found[-1])
    return paths


def load_models(paths: list[Path] | None = None) -> list[keras.Model]:
    """Serving models from .keras files (default: the course's), each checked to take uint8 images."""
    import keras

    from . import heads, layers  # noqa: F401 - registers the course's own layers, for models that hold them

    models = []
    for path in paths or default_model_paths():
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file; give a .keras file written by utils.serving")
        model = keras.saving.load_model(path, compile=False)
        names = set(model.output) if isinstance(model.output, dict) else set()
        if model.inputs[0].dtype != "uint8" or not {"age", "female"} & names:
            raise ValueError(f"{path}: not a serving model (it takes {model.inputs[0].dtype} and outputs {model.output_names}); "
                             f"convert it with `python -m utils.serving convert {path}`")
        models.append(model)
    return models


class Predictor:
    """The detector plus one or more serving models; ``predict`` answers for one photo."""

    def __init__(self, models: list[keras.Model] | list[Path] | None = None):
        if not models or not hasattr(models[0], "predict"):
            models = load_models(models)
        self.models = models
        sizes = {int(m.inputs[0].shape[1]) for m in models}
        if len(sizes) != 1:
            raise ValueError(f"the models take images of different sizes {sorted(sizes)}; give models of one size")
        self.image_size = sizes.pop()

    def to_input(self, crops: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """UTKFace-like crops (any square size, uint8 RGB) resized as training resized its images (LANCZOS)."""
        from PIL import Image

        size = self.image_size
        return np.stack([np.asarray(Image.fromarray(np.asarray(c, np.uint8)).resize((size, size), Image.Resampling.LANCZOS))
                         for c in crops])

    def outputs(self, crops: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
        """Every model's outputs for a batch of crops (any square size); the first model that gives an output wins."""
        return self.outputs_at_size(self.to_input(crops))

    def outputs_at_size(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The same for uint8 images already at the models' size (e.g. the loader's ``data.images``)."""
        if x.shape[1:3] != (self.image_size, self.image_size):
            raise ValueError(f"images are {x.shape[1]}x{x.shape[2]} px; the models take {self.image_size} px (use outputs)")
        merged: dict[str, np.ndarray] = {}
        for model in self.models:
            for key, value in model.predict(x, batch_size=256, verbose=0).items():
                merged.setdefault(key, np.asarray(value))
        return merged

    def answer(self, crops: list[np.ndarray], boxes: list[Box | None], warnings: list[str]) -> list[Face]:
        """Faces from crops and their boxes."""
        out = self.outputs(crops)
        faces = []
        for i, (box, warning) in enumerate(zip(boxes, warnings)):
            face = Face(box, warning=warning)
            if "age" in out:
                face.age = float(out["age"][i].reshape(-1)[0])
            if "age_above" in out:
                face.age_above = out["age_above"][i]
                face.age_low, face.age_high = age_interval(face.age_above)
            if "female" in out:
                face.female = float(out["female"][i].reshape(-1)[0])
            faces.append(face)
        return faces

    def smallest_face(self) -> int:
        """The face width (px) the network saw in training; smaller detected faces are upsampled, and a warning says so."""
        return int(round(self.image_size / CROP[0]))

    def predict(self, source, detect: bool = True) -> list[Face]:
        """The faces of one photo (path, array or PIL image), left to right. ``detect=False``: the photo is one crop.

        Raises ImageError (unreadable) or NoFaceFound, each naming the photo and what to do.
        """
        image = read_image(source)
        name = str(source) if isinstance(source, (str, Path)) else "the image"
        if not detect:
            h, w = image.shape[:2]
            side = min(h, w)
            crop = image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
            return self.answer([crop], [None], ["not square: the centre square was used"] if h != w else [""])
        boxes = detect_faces(image)
        if not boxes:
            raise NoFaceFound(f"{name}: no face found ({image.shape[1]}x{image.shape[0]} px). Try a closer, frontal, well-lit "
                              "photo; if the photo is already a face crop, use --no-detect (detect=False)")
        small = self.smallest_face()
        warnings = [f"small face ({b.w} px wide; the network learned from faces about {small} px wide): a rough guess"
                    if b.w < small else "" for b in boxes]
        return self.answer([utk_crop(image, b, UTK_SIZE) for b in boxes], boxes, warnings)


def demo_photo() -> np.ndarray:
    """A public-domain photo with one face: NASA's portrait of astronaut Eileen Collins, shipped with scikit-image."""
    try:
        from skimage import data
    except ImportError:
        raise ImportError("the demo photo comes with scikit-image: pip install scikit-image (or give a photo of your own)") from None
    return data.astronaut()


def demo_photo_path() -> Path:
    """The demo photo written once as a PNG under build/, for the command line."""
    from PIL import Image

    from .paths import BUILD_DIR

    path = BUILD_DIR / "astronaut.png"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(demo_photo()).save(path)
    return path


_DEFAULT: Predictor | None = None


def predict(source, detect: bool = True, models: list[Path] | None = None) -> list[Face]:
    """The faces of one photo with the course's default models (loaded once), or with ``models`` (.keras paths)."""
    global _DEFAULT
    if models:
        return Predictor(models).predict(source, detect)
    if _DEFAULT is None:
        _DEFAULT = Predictor()
    return _DEFAULT.predict(source, detect)


def main(argv: list[str] | None = None) -> int:
    """Command line: one line per face (or JSON); per-photo errors on stderr; exit code 1 if any photo failed."""
    parser = argparse.ArgumentParser(prog="python -m utils.predict", description="Age and gender of the faces in photos.",
                                     epilog="Exit codes: 0 all photos answered, 1 some photo unreadable or without a face, 2 bad arguments.")
    parser.add_argument("photos", nargs="+", type=Path, metavar="PHOTO", help="image files (JPEG, PNG, WebP, ...)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    parser.add_argument("--model", action="append", type=Path, metavar="PATH",
                        help="a serving model (.keras); repeat for several (the first answers first). Default: the course's model")
    parser.add_argument("--no-detect", action="store_true", help="the photos are already face crops: skip the detector")
    args = parser.parse_args(argv)
    for path in args.model or []:
        if not path.is_file():
            parser.error(f"--model {path}: no such file")
    t0 = time.perf_counter()
    try:
        predictor = Predictor(args.model)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    loaded = time.perf_counter() - t0
    report, failed = [], 0
    for photo in args.photos:
        try:
            faces = predictor.predict(photo, detect=not args.no_detect)
        except (ImageError, NoFaceFound) as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
            report.append({"file": str(photo), "error": str(exc), "faces": []})
            continue
        report.append({"file": str(photo), "faces": [f.to_dict() for f in faces]})
        if not args.json:
            for i, face in enumerate(faces, 1):
                print(f"{photo}: face {i} of {len(faces)} {face.describe()}")
    if args.json:
        print(json.dumps({"photos": report, "models_loaded_seconds": round(loaded, 2)}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
