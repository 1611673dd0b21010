"""Data augmentation for faces with Keras 3 preprocessing layers: active in training, the identity at inference."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import keras


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly each transform acts; faces are mirrored left-right but never flipped upside down."""

    flip: bool = True
    rotation: float = 0.03  # fraction of a full turn: 0.03 is about +-11 degrees
    shift: float = 0.08  # fraction of the image side
    zoom: float = 0.10
    contrast: float = 0.20
    brightness: float = 0.15  # on images scaled to [0, 1]
    # "per_layer": each random layer draws its own numbers. "shared": every layer was given the same seed, so in Keras 3
    # their random streams coincide (a face's rotation angle and zoom factor moved together, corr 1.00): the block every
    # stored augmented run before this field was trained with, kept so those runs stay what they were.
    seeding: Literal["per_layer", "shared"] = "per_layer"

    def __post_init__(self):
        if self.seeding not in ("per_layer", "shared"):
            raise ValueError(f"seeding must be 'per_layer' or 'shared', got {self.seeding!r}")

    def to_dict(self) -> dict:
        """Plain dict for the results store ('shared' seeding is left out,
        as records written before the field have it)."""
        d = asdict(self)
        if self.seeding == "shared":
            del d["seeding"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AugmentConfig:
        """Inverse of to_dict: a record without ``seeding`` was trained with the shared seed."""
        return cls(**{"seeding": "shared", **d})


def augmentation(config: AugmentConfig | None = None, seed: int | None = None) -> keras.Sequential:
    """A Sequential of random layers; Keras runs them only when the model is called with training=True."""
    c = config or AugmentConfig()
    layers = []

    def layer_seed(
        k: int,
    ) -> int | None:  # the k-th transform's own seed, derived from the run's; or the old shared one
        return seed if seed is None or c.seeding == "shared" else (seed * 1_000_003 + k) % (2**31 - 1)

    if c.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=layer_seed(1)))
    if c.rotation:
        layers.append(keras.layers.RandomRotation(c.rotation, fill_mode="reflect", seed=layer_seed(2)))
    if c.shift:
        layers.append(keras.layers.RandomTranslation(c.shift, c.shift, fill_mode="reflect", seed=layer_seed(3)))
    if c.zoom:
        layers.append(keras.layers.RandomZoom(c.zoom, fill_mode="reflect", seed=layer_seed(4)))
    if c.contrast:
        layers.append(keras.layers.RandomContrast(c.contrast, value_range=(0, 1), seed=layer_seed(5)))
    if c.brightness:
        layers.append(keras.layers.RandomBrightness(c.brightness, value_range=(0, 1), seed=layer_seed(6)))
    return keras.Sequential(layers, name="augmentation")
