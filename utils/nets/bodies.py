"""Bodies: what turns an image into the features the heads read. A new body is one class added to ``BODIES``.

- ``article``: the article's conv stack and its variants (filters, BatchNorm order, dense width, dropout);
- ``resnet50``: ``keras.applications.ResNet50`` with ImageNet weights, frozen for ``freeze_epochs`` and then unfrozen
  (the article's own next step), under the same dropout and dense layer as the article's network.
"""

from __future__ import annotations

from typing import ClassVar

import keras
import numpy as np

from .layers import FusedBatchNormalization, nested_layers
from .part import Part


def norm_act(x, order: str, name: str, momentum: float = 0.99, fused: bool = True):
    """BatchNorm then ReLU ('bn_relu', the article's) or ReLU then BatchNorm ('relu_bn')."""
    fused = fused and keras.backend.backend() == "tensorflow"  # the fused kernel is TensorFlow's
    bn = FusedBatchNormalization if fused else keras.layers.BatchNormalization
    if order == "bn_relu":
        x = bn(momentum=momentum, name=f"{name}_bn")(x)
        return keras.layers.Activation("relu", name=f"{name}_relu")(x)
    if order == "relu_bn":
        x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
        return bn(momentum=momentum, name=f"{name}_bn")(x)
    raise ValueError(f"order must be 'bn_relu' or 'relu_bn', got {order!r}")


NECK = {"dropout": "dropout", "dense_units": "dense_units", "order": "order", "bn_momentum": "bn_momentum"}
"""The settings of the dense neck every body ends with (attribute -> ModelConfig field)."""


class Body(Part):
    """Builds the shared layers between the (augmented) image and the heads.

    ``BODIES`` holds one unconfigured instance per body; a run uses ``configured(config)`` (``ModelConfig.body_net``),
    a copy that holds the settings it takes from the configuration (``settings``), so its methods need nothing else."""

    key: ClassVar[str]
    frozen_layer: ClassVar[str | None] = None  # the layer ``freeze_epochs`` keeps frozen at first (pretrained bodies)

    def __call__(self, x, fused_bn: bool = True):
        """The features of images ``x`` (floats in [0, 1])."""
        raise NotImplementedError

    def slug(self) -> str:
        """This body's part of a stored run's file name: its name and the settings that make it."""
        raise NotImplementedError

    def neck(self, x, fused_bn: bool):
        """Dropout, the dense layer, and its BatchNorm and ReLU: what the course's bodies end with, as in the
        article (needs the ``NECK`` settings)."""
        x = keras.layers.Dropout(self.dropout, name="dropout")(x)
        x = keras.layers.Dense(self.dense_units, name="dense")(x)
        return norm_act(x, self.order, "dense", self.bn_momentum, fused_bn)


class ArticleStack(Body):
    """The article's network: conv blocks (Conv 3x3, BatchNorm/ReLU, max-pool 2), flatten, dropout, dense,
    BatchNorm/ReLU."""

    key = "article"
    settings = {"conv_filters": "conv_filters", **NECK}

    def __call__(self, x, fused_bn=True):
        """Conv stack, then the dense neck."""
        for i, filters in enumerate(self.conv_filters, start=1):
            x = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{i}")(x)
            x = norm_act(x, self.order, f"conv{i}", self.bn_momentum, fused_bn)
            x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        return self.neck(x, fused_bn)

    def slug(self):
        """e.g. 'c128-64-32-32.bn_relu.d512.do0.6' (the file names of every run stored so far)."""
        return ".".join(
            ["c" + "-".join(map(str, self.conv_filters)), self.order, f"d{self.dense_units}", f"do{self.dropout:g}"]
        )


@keras.saving.register_keras_serializable(package="utkface")
class CaffeInput(keras.layers.Layer):
    """Images in [0, 1] as the Caffe-trained ImageNet networks expect them: 0-255, BGR, minus the ImageNet mean."""

    MEAN_BGR = (103.939, 116.779, 123.68)

    def call(self, x):
        return x[..., ::-1] * 255.0 - np.asarray(self.MEAN_BGR, "float32")


def rgb_0_255(x):
    """Images in [0, 1] as the networks that rescale inside themselves expect them (MobileNetV3, EfficientNet): RGB
    0-255."""
    return keras.layers.Rescaling(255.0, name="to_0_255")(x)


class KerasApplication(Body):
    """A ``keras.applications`` network without its top, pooled, under the article's dropout and dense layer.

    Each application says how the course's [0, 1] images become the inputs it expects (``prepare``, no default: a new
    one must say): ``CaffeInput`` for the Caffe-trained networks (ResNet50), ``rgb_0_255`` for those that rescale
    inside themselves (MobileNetV3, EfficientNet), or the images as they are."""

    application: ClassVar[str]  # the class name in keras.applications
    frozen_layer = "backbone"
    settings = {"weights": "weights", "freeze_epochs": "freeze_epochs", **NECK}

    def prepare(self, x):
        """The course's images in [0, 1], converted to what this application expects."""
        raise NotImplementedError(f"body {self.key!r} must say how its inputs are prepared (override prepare)")

    def __call__(self, x, fused_bn=True):
        """Pretrained network (frozen at first when ``freeze_epochs`` > 0), global average pooling, dense neck."""
        net = self.network(tuple(x.shape[1:]), self.weights)
        net.name = "backbone"
        self.set_trainable(net, True)
        x = net(self.prepare(x))
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        return self.neck(x, fused_bn)

    def set_trainable(self, net: keras.Model, trainable: bool) -> None:
        """Freeze or unfreeze the network; pretrained, its BatchNorm layers stay frozen even when it is unfrozen.

        A frozen BatchNorm layer runs in inference mode in Keras 3, so it keeps ImageNet's statistics while the
        weights are fine-tuned. Calling the network with ``training=False``, the older advice, does not do that
        here: ``fit`` passes ``training=True`` down into nested models (keras-team/keras#20285)."""
        net.trainable = trainable  # in Keras 3 this reaches every layer inside
        if trainable and self.weights:
            for layer in nested_layers(net):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False

    def network(self, shape: tuple[int, ...], weights: str | None) -> keras.Model:
        """The application itself; a clear message when its ImageNet weights cannot be fetched."""
        build = getattr(keras.applications, self.application)
        try:
            return build(include_top=False, weights=weights, input_shape=shape)
        except Exception as exc:  # offline: urllib raises URLError, Keras re-raises it as a plain Exception
            if weights != "imagenet" or isinstance(exc, ValueError):
                raise
            raise RuntimeError(
                f"could not fetch the ImageNet weights of {self.application} ({exc}). Connect this machine to the "
                "internet once (Keras keeps them in ~/.keras/models), or copy the '_notop' .h5 weights file there by "
                f"hand, or train from scratch with ModelConfig(body={self.key!r}, weights=None)."
            ) from exc

    def slug(self):
        """e.g. 'resnet50.imagenet.freeze3.d512.do0.6.bn_relu'."""
        parts = [self.key, self.weights or "scratch"]
        if self.freeze_epochs:
            parts.append(f"freeze{self.freeze_epochs}")
        return ".".join(parts + [f"d{self.dense_units}", f"do{self.dropout:g}", self.order])


class ResNet50(KerasApplication):
    """ResNet50 (He et al. 2016), at least 32 px."""

    key, application = "resnet50", "ResNet50"

    def prepare(self, x):
        """Caffe-style inputs: 0-255, BGR, minus the ImageNet mean."""
        return CaffeInput(name="caffe_input")(x)


BODIES: dict[str, Body] = {b.key: b for b in (ArticleStack(), ResNet50())}
"""Every body by key; a new body is one class and one entry here."""


def for_config(config) -> Body:
    """The body a configuration names, holding its settings from it (built once per configuration:
    ``ModelConfig.body_net``), with the choices when it names none we know."""
    if config.body not in BODIES:
        raise ValueError(f"unknown body {config.body!r}; choose one of {', '.join(BODIES)}")
    return BODIES[config.body].configured(config)
