"""One builder for every network in the course: the article's multi-output CNN and all its variants."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Literal

import keras

from . import ordinal
from .augment import AugmentConfig, augmentation
from .labels import MAX_AGE, MIN_AGE
from .layers import FusedBatchNormalization

Tasks = Literal["age_gender", "age", "gender"]
AgeHead = Literal["regression", "ce", "or", "coral", "corn"]


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
    age_head: AgeHead = "regression"
    age_range: tuple[int, int] = (MIN_AGE, MAX_AGE)
    loss_weights: tuple[float, float] = (2.0, 1.0)  # (age, gender), as in the article
    bn_momentum: float = 0.99  # Keras' default
    augment: AugmentConfig | None = None

    def __post_init__(self):
        if not self.conv_filters or any(f < 1 for f in self.conv_filters):
            raise ValueError(f"conv_filters must be a non-empty list of positive ints, got {self.conv_filters}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.age_head != "regression" and self.tasks != "age":
            raise ValueError("ordinal age heads (ce, or, coral, corn) are used with tasks='age'")
        if self.age_range[0] >= self.age_range[1]:
            raise ValueError(f"age_range must be (low, high) with low < high, got {self.age_range}")

    @property
    def num_ranks(self) -> int:
        """Number of age ranks K for the ordinal heads."""
        return self.age_range[1] - self.age_range[0] + 1

    def with_(self, **changes) -> ModelConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        d = asdict(self)
        d["conv_filters"] = list(self.conv_filters)
        d["age_range"] = list(self.age_range)
        d["loss_weights"] = list(self.loss_weights)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Inverse of to_dict."""
        d = dict(d)
        for k in ("conv_filters", "age_range", "loss_weights"):
            d[k] = tuple(d[k])
        d["augment"] = AugmentConfig(**d["augment"]) if d.get("augment") else None
        return cls(**d)

    def digest(self) -> str:
        """Short stable hash of the settings that differ from the defaults (new fields keep old hashes valid)."""
        default = ModelConfig().to_dict()
        text = json.dumps({k: v for k, v in self.to_dict().items() if v != default[k]}, sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()


ARTICLE = ModelConfig()
"""The article's final network: 4 conv blocks (128-64-32-32), BN before ReLU, dense 512, dropout 0.6, Adam."""


def _norm_act(x, order: str, name: str, momentum: float = 0.99, fused: bool = True):
    bn = FusedBatchNormalization if fused else keras.layers.BatchNormalization
    if order == "bn_relu":
        x = bn(momentum=momentum, name=f"{name}_bn")(x)
        return keras.layers.Activation("relu", name=f"{name}_relu")(x)
    if order == "relu_bn":
        x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
        return bn(momentum=momentum, name=f"{name}_bn")(x)
    raise ValueError(f"order must be 'bn_relu' or 'relu_bn', got {order!r}")


def build_model(config: ModelConfig = ARTICLE, image_size: int = 128, seed: int | None = None, compile: bool = True,
                fused_bn: bool = True) -> keras.Model:
    """Build (and compile) the network described by ``config`` for square RGB images in [0, 1].

    ``fused_bn=False`` uses Keras' own BatchNormalization (same math, slower on CPUs; the benchmark's plain way).
    """
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    if config.augment is not None:
        x = augmentation(config.augment, seed=seed)(x)
    for i, filters in enumerate(config.conv_filters, start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{i}")(x)
        x = _norm_act(x, config.order, f"conv{i}", config.bn_momentum, fused_bn)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(config.dropout, name="dropout")(x)
    x = keras.layers.Dense(config.dense_units, name="dense")(x)
    x = _norm_act(x, config.order, "dense", config.bn_momentum, fused_bn)

    outputs = {}
    if config.tasks in ("age_gender", "age"):
        if config.age_head == "regression":
            act = "relu" if config.age_relu else None
            outputs["age"] = keras.layers.Dense(1, activation=act, name="age", dtype="float32")(x)
        else:
            outputs["age"] = ordinal.head(x, config.age_head, config.num_ranks)
    if config.tasks in ("age_gender", "gender"):
        outputs["gender"] = keras.layers.Dense(1, activation="sigmoid", name="gender", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name=f"utkface_{config.tasks}_{config.age_head}")
    if compile:
        compile_model(model, config)
    return model


def make_optimizer(config: ModelConfig) -> keras.optimizers.Optimizer:
    """Adam or RMSprop at the configured learning rate (Keras' default 1e-3 for both)."""
    if config.optimizer == "adam":
        return keras.optimizers.Adam(config.learning_rate)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(config.learning_rate)
    raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {config.optimizer!r}")


def compile_model(model: keras.Model, config: ModelConfig) -> None:
    """Per-output losses, weights and metrics: MSE + MAE for age, BCE + accuracy for gender, as in the article."""
    losses, weights, metrics = {}, {}, {}
    if config.tasks in ("age_gender", "age"):
        if config.age_head == "regression":
            losses["age"] = "mse"
            metrics["age"] = ["mae", ordinal.AgeMAEYears("regression")]
        else:
            losses["age"] = ordinal.OrdinalLoss(config.age_head, config.num_ranks)
            metrics["age"] = [ordinal.AgeMAEYears(config.age_head)]
        weights["age"] = config.loss_weights[0] if config.tasks == "age_gender" else 1.0
    if config.tasks in ("age_gender", "gender"):
        losses["gender"] = "binary_crossentropy"
        metrics["gender"] = ["accuracy"]
        weights["gender"] = config.loss_weights[1] if config.tasks == "age_gender" else 1.0
    model.compile(optimizer=make_optimizer(config), loss=losses, loss_weights=weights, metrics=metrics)
