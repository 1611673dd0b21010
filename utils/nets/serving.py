"""Saved models for use outside training: the trained network with its preprocessing and decoding inside.

A training model takes floats in [0, 1], may hold augmentation layers and the course's fused BatchNorm, and outputs raw
head values (normalised ages, ordinal logits). A *serving* model is rebuilt from the same configuration without
augmentation and with Keras' own BatchNormalization (the same weights and math), and gets the trained weights layer by
layer. Its input is what a photo gives you, a batch of uint8 RGB images at the network's size, and its outputs are
what a person wants:

- ``age``: the age in years, decoded exactly as the course scores it (``heads.Head.decode``);
- ``age_above`` (ordinal heads only): P(age > min_age + k) for every k, from which an interval is read (``predict``);
- ``female``: P(female).

Every decoding step is a built-in Keras layer (frozen Dense layers sum and count; a steep ReLU ramp stands in for
"> 0.5"), so ``keras.saving.load_model(path)`` reads the file without this package, for the article's body and the
regression, CE, OR, CORN and gender heads. (CORAL's shared-weight layer and the ResNet body's input layer are the
course's own; loading those needs ``import utils.nets.heads`` or ``utils.nets.bodies`` first.)

    python -m utils.nets.serving convert results/.../models/RUN.keras  # a training model saved by older code -> serving
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import keras

from ..base import files
from ..base.settings import run_settings
from .models import ModelConfig

DECODE_PREFIX = "decode_"
"""Serving-only layers with fixed weights carry this prefix (or are one of SERVING_ONLY)."""
SERVING_ONLY = ("to_unit", "age_years", "age_above", "female")


def serving_model(trained: keras.Model, config: ModelConfig, image_size: int) -> keras.Model:
    """The serving form of a trained model: uint8 RGB images in; age in years, P(age > a) and P(female) out.

    Built in float32 whatever precision trained it (a model trained in float16 on a GPU then runs anywhere)."""
    with run_settings(policy="float32"):
        return _build(trained, config, image_size)


def _build(trained: keras.Model, config: ModelConfig, image_size: int) -> keras.Model:
    image = keras.Input((image_size, image_size, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1 / 255, name="to_unit")(image)
    pretrained = config.body_net.frozen_layer is not None  # its weights are copied below: nothing to download
    features = (config.with_(weights=None) if pretrained else config).body_net(x, fused_bn=False)
    outputs: dict = {}
    for head in config.heads:
        outputs.update(head.serving(head.layer(features)))
    model = keras.Model(image, outputs, name=f"utkface_{config.tasks}_{config.age_head}_{image_size}px")
    copy_weights(trained, model)
    return model


def _serving_only(name: str) -> bool:
    return name.startswith(DECODE_PREFIX) or name in SERVING_ONLY


def copy_weights(trained: keras.Model, serving: keras.Model) -> int:
    """Copy every trained layer's weights into the serving layer of the same name; return how many layers were copied.

    Raises ValueError naming the layer when a serving layer has no trained twin or the shapes differ.
    """
    copied = 0
    for layer in serving.layers:
        if not layer.weights or _serving_only(layer.name):
            continue
        try:
            source = trained.get_layer(layer.name)
        except ValueError:
            raise ValueError(
                f"layer {layer.name!r} of the serving model has no twin in the trained model "
                f"{trained.name!r}: was it trained with another configuration?"
            ) from None
        weights = source.get_weights()
        shapes = [w.shape for w in weights], [tuple(w.shape) for w in layer.weights]
        if shapes[0] != shapes[1]:
            raise ValueError(
                f"layer {layer.name!r}: trained weights have shapes {shapes[0]}, the serving layer {shapes[1]}"
            )
        layer.set_weights(weights)
        copied += 1
    return copied


def save(trained: keras.Model, config: ModelConfig, image_size: int, path: Path) -> Path:
    """Write the serving form of ``trained`` to ``path`` (.keras), without optimizer state."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    serving_model(trained, config, image_size).save(path)
    return path


RECORD_LIMIT = 64 * 2**20
"""The largest run record read beside a model (as ``store.RECORD_LIMIT``; the committed ones are under 1 MB)."""


def record_for(model_path: Path) -> dict | None:
    """The stored run record beside a kept model (same name, .json), or None when there is none.

    Only a regular file of at most ``RECORD_LIMIT`` bytes is read (a FIFO is never waited on). Raises ValueError naming
    the record when it cannot be read, is not JSON (truncated, say) or is not a JSON object."""
    record = Path(model_path).with_suffix(".json")
    if not os.path.lexists(record):
        return None
    fix = "put back the record saved with the model, or move it away"
    try:
        data = json.loads(files.read_text(record, RECORD_LIMIT, "run record"))
    except (OSError, UnicodeDecodeError) as exc:  # files.UnsafeFile included: a FIFO, a folder, a symlink loop, too big
        why = " ".join(str(exc).split())
        raise ValueError(f"{record}: the run record beside the model cannot be read ({why}); {fix}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{record}: the run record beside the model is not valid JSON ({exc}: truncated?); {fix}"
        ) from exc
    if not isinstance(data, dict):
        raise ValueError(
            f"{record}: the run record beside the model is a JSON {type(data).__name__}, not an object; {fix}"
        )
    return data


def convert(path: Path) -> Path:
    """Turn a training model saved beside its record into its serving form, in place."""
    from . import layers as _registered  # noqa: F401 - the fused BatchNorm a training model holds

    record = record_for(path)
    if record is None:
        raise FileNotFoundError(
            f"{path}: no run record {Path(path).with_suffix('.json').name} beside it; "
            "the record says which configuration to rebuild"
        )
    trained = keras.saving.load_model(path, compile=False)
    if trained.inputs[0].dtype == "uint8":
        print(f"{path} is already a serving model")
        return Path(path)
    config = ModelConfig.from_dict(record["config"])
    return save(trained, config, int(record["data"]["image_size"]), path)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``convert PATH ...``."""
    parser = argparse.ArgumentParser(prog="python -m utils.nets.serving", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("convert", help="turn a kept training model into its serving form, in place")
    p.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.paths:
        if not path.is_file():
            parser.error(f"{path}: no such file")
        out = convert(path)
        print(f"{out}: serving model, {out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
