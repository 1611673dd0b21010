"""Loading serving models: the course's default (the kept OR-CNN under results/, with the gender answer notebook 09
chose), and the checks that a .keras file is
a serving model (one uint8 image input, an age or female output) whose run record gives a valid age range. Every bad
file raises ValueError naming it and saying what to give instead."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..base.labels import MIN_AGE
from ..base.paths import RESULTS_DIR

if TYPE_CHECKING:
    import keras

DEFAULT_AGE = "age: OR-CNN"
"""The variant of experiment ``use_model`` whose kept model answers age by default."""


def kept_path(label: str) -> Path:
    """The kept model (.keras) of variant ``label`` of experiment ``use_model``: the real-data laptop run, seed 0,
    committed under results/."""
    from ..train.experiments import get
    from ..train.store import file_name

    exp = get("use_model")
    variant = next(v for v in exp.variants if v.label == label)
    name = Path(file_name(variant.config, exp.seeds[0])).with_suffix(".keras").name
    found = sorted(RESULTS_DIR.glob(f"laptop-real-*/{exp.sub}/{name}"))
    if len(found) != 1:
        where = f"{RESULTS_DIR}/laptop-real-*/{exp.sub}/"
        raise FileNotFoundError(
            f"the default model {name} is {'not' if not found else 'more than once'} under {where}: "
            "train it with `python -m utils run use_model --profile laptop`, or give --model PATH"
        )
    return found[0]


def default_models() -> tuple[list[Path], dict[str, int]]:
    """The course's default serving models and which of them answers P(female) (``Predictor``'s ``prefer``): the kept
    OR-CNN for age; for gender its own unit or the separate gender network, whichever did better on validation, as
    notebook 09 chooses (``transfer.choose_gender``, made again from the stored records, no data needed)."""
    import json

    from ..train import transfer
    from ..train.runner import collect_from

    age = kept_path(DEFAULT_AGE)
    unit = transfer.unit_record(age)
    if not unit.is_file():
        return [age], {}
    try:
        network = kept_path(transfer.GENDER_NETWORK)
    except FileNotFoundError:
        network = None
    runs = collect_from("use_model", age.parent.parent)
    choice = transfer.choose_gender(json.loads(unit.read_text()), age, runs, network)
    return choice.paths, choice.prefer


def check_serving(model: keras.Model, name: str) -> int:
    """The image size ``model`` takes; ValueError naming it unless it is a serving model: one input, a batch of square
    uint8 RGB images (None, S, S, 3), and an ``age`` or ``female`` output."""
    names = set(model.output) if isinstance(model.output, dict) else set()
    if len(model.inputs) != 1 or model.inputs[0].dtype != "uint8" or not {"age", "female"} & names:
        raise ValueError(
            f"{name}: not a serving model (it takes {[str(i.dtype) for i in model.inputs]} and outputs "
            f"{model.output_names}); convert it with `python -m utils.nets.serving convert {name}`"
        )
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or not isinstance(shape[1], int) or shape[1] < 1 or shape[1] != shape[2] or shape[3] != 3:
        raise ValueError(
            f"{name}: takes images of shape {shape}, not a batch of square RGB images (None, S, S, 3); "
            "give a serving model written by utils.nets.serving"
        )
    return int(shape[1])


def record_min_age(record: dict | None, model: keras.Model, where: Path) -> int:
    """The youngest age of the run record's ``config.age_range`` (``MIN_AGE`` without a record); ValueError naming the
    record when the range is not two whole years low < high or does not match the model's ``age_above`` output."""
    if record is None:
        return MIN_AGE
    config = record.get("config")
    found = config.get("age_range") if isinstance(config, dict) else None
    whole = (
        isinstance(found, list)
        and len(found) == 2
        and all(isinstance(a, int) and not isinstance(a, bool) for a in found)
    )
    if not whole or not 0 <= found[0] < found[1]:
        raise ValueError(
            f"{where}: the run record beside the model has no valid config.age_range (found {found!r}; "
            "want [low, high], whole years, low < high): put back the record saved with the model, or move "
            f"it away to read ages from {MIN_AGE}"
        )
    above = model.output.get("age_above") if isinstance(model.output, dict) else None
    width = above.shape[-1] if above is not None else None
    if width is not None and width != found[1] - found[0]:
        raise ValueError(
            f"{where}: its age_range {found} means {found[1] - found[0]} ordinal outputs, the model has "
            f"{width}: the record belongs to another model; put back the one saved with it"
        )
    return found[0]


def load_models(paths: list[Path] | None = None) -> list[keras.Model]:
    """Serving models from .keras files (default: the course's), each checked to take uint8 images.

    Raises ValueError naming the file when it is missing, unreadable or not a serving model, takes images of another
    shape, or has a run record beside it that cannot be read or holds no valid age range (``serving.record_for``).
    """
    import keras

    from ..nets import heads, layers, serving  # noqa: F401 - heads and layers register the course's own layers

    models = []
    for path in paths or default_models()[0]:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: no such model file; give a .keras file written by utils.nets.serving")
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as exc:  # noqa: BLE001 - any reason a file is not a model: say which file and why
            raise ValueError(
                f"{path}: not a Keras model this version can read ({type(exc).__name__}: {str(exc)[:200]})"
            ) from exc
        check_serving(model, str(path))
        model.min_age = record_min_age(serving.record_for(path), model, path.with_suffix(".json"))
        models.append(model)
    return models
