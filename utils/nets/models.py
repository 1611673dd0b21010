"""One builder for every network in the course: a configuration, and a body (bodies.py) under its heads (heads.py)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import Literal

import keras
import numpy as np

from ..base.labels import MAX_AGE, MIN_AGE
from . import bodies, heads
from .augment import AugmentConfig, augmentation
from .layers import nested_layers

Tasks = Literal["age_gender", "age", "gender"]


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a variant; the defaults are the article's final network."""

    conv_filters: tuple[int, ...] = (128, 64, 32, 32)
    order: Literal["bn_relu", "relu_bn"] = "bn_relu"
    age_relu: bool = False
    dense_units: int = 512
    dropout: float = 0.6
    optimizer: Literal["adam", "rmsprop"] = "adam"
    learning_rate: float = 1e-3
    tasks: Tasks = "age_gender"
    age_head: str = "regression"  # a key of heads.HEADS
    age_range: tuple[int, int] = (MIN_AGE, MAX_AGE)
    loss_weights: tuple[float, float] = (2.0, 1.0)  # (age, gender), as in the article
    bn_momentum: float = 0.99  # Keras' default
    augment: AugmentConfig | None = None
    # Fields added later keep their defaults out of digest(), so the runs stored before them keep their names.
    body: str = "article"  # a key of bodies.BODIES
    weights: str | None = (
        "imagenet"  # a pretrained body's starting weights (None: from scratch); the article body has none
    )
    freeze_epochs: int = 0  # epochs a pretrained body stays frozen before it is unfrozen and fine-tuned

    def __post_init__(self):
        def number(x, integer=False) -> bool:
            kinds = (int,) if integer else (int, float)
            return isinstance(x, kinds) and not isinstance(x, bool)

        for name in ("dense_units", "freeze_epochs"):
            if not number(getattr(self, name), integer=True):
                raise ValueError(f"{name} must be an integer, got {getattr(self, name)!r}")
        for name in ("dropout", "learning_rate", "bn_momentum"):
            if not number(getattr(self, name)):
                raise ValueError(f"{name} must be a number, got {getattr(self, name)!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.order not in ("bn_relu", "relu_bn") or self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(
                "order must be bn_relu or relu_bn and optimizer adam or rmsprop, "
                f"got {self.order!r}, {self.optimizer!r}"
            )
        for name, n, integer in (("conv_filters", None, True), ("age_range", 2, True), ("loss_weights", 2, False)):
            value = getattr(self, name)
            if (
                not isinstance(value, tuple)
                or (n is not None and len(value) != n)
                or not all(number(v, integer) for v in value)
            ):
                raise ValueError(
                    f"{name} must be {'a list' if n is None else f'{n} numbers'} of "
                    f"{'integers' if integer else 'numbers'}, got {value!r}"
                )
        if not self.conv_filters or any(f < 1 for f in self.conv_filters):
            raise ValueError(f"conv_filters must be a non-empty list of positive ints, got {self.conv_filters}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.tasks not in heads.TASKS:
            raise ValueError(f"tasks must be one of {', '.join(heads.TASKS)}, got {self.tasks!r}")
        ages = [k for k, h in heads.HEADS.items() if h.output == "age"]  # the registry as it is now (tests add heads)
        if self.age_head not in ages:
            raise ValueError(f"unknown age head {self.age_head!r}; choose one of {', '.join(ages)}")
        if heads.HEADS[self.age_head].ordinal and self.tasks != "age":
            ordinal = ", ".join(k for k, h in heads.HEADS.items() if h.ordinal)
            raise ValueError(f"ordinal age heads ({ordinal}) are used with tasks='age'")
        body = self.body_net  # raises for a body we do not know
        if self.freeze_epochs < 0 or (self.freeze_epochs and body.frozen_layer is None):
            raise ValueError(
                f"freeze_epochs needs a pretrained body and a count >= 0, got {self.freeze_epochs} for {self.body!r}"
            )
        if self.age_range[0] >= self.age_range[1]:
            raise ValueError(f"age_range must be (low, high) with low < high, got {self.age_range}")

    @cached_property
    def heads(self) -> list[heads.Head]:
        """The heads this configuration trains, in output order, each holding its settings (built once, then kept)."""
        return heads.for_config(self)

    @cached_property
    def body_net(self) -> bodies.Body:
        """The body this configuration names, holding its settings (built once, then kept)."""
        return bodies.for_config(self)

    def with_(self, **changes) -> ModelConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        d = asdict(self)
        d["conv_filters"] = list(self.conv_filters)
        d["age_range"] = list(self.age_range)
        d["loss_weights"] = list(self.loss_weights)
        if self.augment is not None:
            d["augment"] = self.augment.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Inverse of to_dict."""
        d = dict(d)
        for k in ("conv_filters", "age_range", "loss_weights"):
            if k in d:
                if not isinstance(d[k], (list, tuple)):
                    raise ValueError(f"{k} must be a list, got {d[k]!r}")
                d[k] = tuple(d[k])
        d["augment"] = AugmentConfig.from_dict(d["augment"]) if d.get("augment") else None
        return cls(**d)

    def digest(self) -> str:
        """Short stable hash of the settings that differ from the defaults (new fields keep old hashes valid)."""
        default = ModelConfig().to_dict()
        text = json.dumps({k: v for k, v in self.to_dict().items() if v != default[k]}, sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()


ARTICLE = ModelConfig()
"""The article's final network: 4 conv blocks (128-64-32-32), BN before ReLU, dense 512, dropout 0.6, Adam."""


def build_model(
    config: ModelConfig = ARTICLE,
    image_size: int = 128,
    seed: int | None = None,
    compile: bool = True,
    fused_bn: bool = True,
) -> keras.Model:
    """Build (and compile) the network described by ``config`` for square RGB images in [0, 1]: augmentation, body,
    heads.

    ``fused_bn=False`` uses Keras' own BatchNormalization (same math, slower on CPUs; the benchmark's plain way).
    """
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    if config.augment is not None:
        x = augmentation(config.augment, seed=seed)(x)
    x = config.body_net(x, fused_bn)
    outputs = {h.output: h.layer(x) for h in config.heads}
    model = keras.Model(inputs, outputs, name=f"utkface_{config.tasks}_{config.age_head}")
    if compile:
        compile_model(model, config)
    return model


def set_body_trainable(model: keras.Model, config: ModelConfig, trainable: bool) -> bool:
    """Freeze or unfreeze a pretrained body's network, its BatchNorm layers kept frozen (recompile afterwards); False
    when the body has none."""
    name = config.body_net.frozen_layer
    if name is None:
        return False
    config.body_net.set_trainable(model.get_layer(name), trainable)
    return True


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one image's forward pass through the Conv2D and Dense layers (nested models included): the
    bulk of a convolutional network's arithmetic, what its speed roughly follows."""
    total = 0
    for layer in nested_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            total += int(np.prod(layer.output.shape[1:-1])) * kh * kw * cin * cout  # cin: per group already
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.output.shape[1:-1])) * layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


def make_optimizer(config: ModelConfig, learning_rate: float | None = None) -> keras.optimizers.Optimizer:
    """Adam or RMSprop at the configured learning rate (Keras' default 1e-3 for both), or at ``learning_rate``."""
    lr = config.learning_rate if learning_rate is None else learning_rate
    if config.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {config.optimizer!r}")


def compile_model(model: keras.Model, config: ModelConfig, learning_rate: float | None = None) -> None:
    """Each head's loss, weight and metrics (MSE + MAE for age, BCE + accuracy for gender, as in the article)."""
    chosen = config.heads
    losses = {h.output: h.loss() for h in chosen}
    metrics = {h.output: h.metrics() for h in chosen}
    weights = {h.output: config.loss_weights[h.weight_index] if len(chosen) > 1 else 1.0 for h in chosen}
    model.compile(optimizer=make_optimizer(config, learning_rate), loss=losses, loss_weights=weights, metrics=metrics)
