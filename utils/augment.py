"""Data augmentation for faces with Keras 3 preprocessing layers: active in training, the identity at inference."""
from __future__ import annotations

from dataclasses import asdict, dataclass

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

    def to_dict(self) -> dict:
        """Plain dict for the results store."""
        return asdict(self)


def augmentation(config: AugmentConfig | None = None, seed: int | None = None) -> keras.Sequential:
    """A Sequential of random layers; Keras runs them only when the model is called with training=True."""
    c = config or AugmentConfig()
    layers = []
    if c.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if c.rotation:
        layers.append(keras.layers.RandomRotation(c.rotation, fill_mode="reflect", seed=seed))
    if c.shift:
        layers.append(keras.layers.RandomTranslation(c.shift, c.shift, fill_mode="reflect", seed=seed))
    if c.zoom:
        layers.append(keras.layers.RandomZoom(c.zoom, fill_mode="reflect", seed=seed))
    if c.contrast:
        layers.append(keras.layers.RandomContrast(c.contrast, value_range=(0, 1), seed=seed))
    if c.brightness:
        layers.append(keras.layers.RandomBrightness(c.brightness, value_range=(0, 1), seed=seed))
    return keras.Sequential(layers, name="augmentation")
