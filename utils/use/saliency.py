"""Grad-CAM: which regions of a face moved a serving model's answer (Selvaraju et al. 2017), with tf.GradientTape.

For one image and one scalar answer y (the expected age, or the log-odds of the predicted gender), take the last
convolutional feature maps A_k before the dense layers, weight each map by the mean of dy/dA_k over its positions,
sum, keep the positive part and upsample to the image. A bright region is one where *more* of what the network found
there would have *raised* y. It is coarse (the maps of the course's network at 64 px are 8 x 8), it says where, not
what, and it explains this model, not faces: read it as a check for shortcuts (background, hair, borders), never as
proof of what decides age or gender.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import tensorflow as tf

POOLING = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def last_feature_layer(model: keras.Model) -> str:
    """The name of the last layer with 4-D output (feature maps) that is not a pooling layer."""
    names = [
        layer.name
        for layer in model.layers
        if len(getattr(layer.output, "shape", ())) == 4
        and not isinstance(layer, POOLING)
        and layer.name != "to_unit"
        and not isinstance(layer, keras.layers.InputLayer)
    ]
    if not names:
        raise ValueError(f"model {model.name!r} has no convolutional feature maps for Grad-CAM")
    return names[-1]


def map_size(model: keras.Model, layer: str | None = None) -> tuple[int, int]:
    """Height and width of the feature maps Grad-CAM reads (before it is upsampled to the image)."""
    shape = model.get_layer(layer or last_feature_layer(model)).output.shape
    return int(shape[1]), int(shape[2])


def answer(outputs: dict, target: str, gender_features=None, gender_layer: keras.layers.Layer | None = None):
    """The scalar Grad-CAM explains: 'age' = the expected age (ordinal heads) or the age output; 'gender' = the log-odds
    of the gender the model predicts (positive towards its own answer), computed before the sigmoid when the model's
    'gender' Dense layer is given, so that a confident answer keeps its gradient."""
    if target == "age":
        if "age_above" in outputs:  # expected rank + youngest age: smooth, unlike the counted age
            return tf.reduce_sum(outputs["age_above"], axis=-1)
        return tf.reshape(outputs["age"], (-1,))
    if target == "gender":
        if gender_layer is not None:
            logit = tf.reshape(tf.matmul(gender_features, gender_layer.kernel) + gender_layer.bias, (-1,))
        else:
            p = tf.clip_by_value(tf.reshape(outputs["female"], (-1,)), 1e-6, 1 - 1e-6)
            logit = tf.math.log(p) - tf.math.log(1 - p)
        return tf.where(logit > 0, logit, -logit)
    raise ValueError(f"target must be 'age' or 'gender', got {target!r}")


def grad_cam(model: keras.Model, image: np.ndarray, target: str = "age", layer: str | None = None) -> np.ndarray:
    """A heat map in [0, 1] with the image's height and width, for one uint8 image at the model's input size."""
    if target not in ("age", "gender"):
        raise ValueError(f"target must be 'age' or 'gender', got {target!r}")
    names = sorted(model.output) if isinstance(model.output, dict) else []
    needed = "female" if target == "gender" else "age"
    if needed not in names:
        raise ValueError(f"model {model.name!r} has no {needed!r} output (it has {names}): no Grad-CAM for {target}")
    layer = layer or last_feature_layer(model)
    dense = (
        model.get_layer("gender") if target == "gender" and any(lay.name == "gender" for lay in model.layers) else None
    )
    dense = dense if isinstance(dense, keras.layers.Dense) else None
    extra = [dense.input] if dense is not None else []
    grad_model = keras.Model(model.inputs, [model.get_layer(layer).output, model.output, *extra])
    x = tf.convert_to_tensor(np.asarray(image, np.uint8)[None])
    with tf.GradientTape() as tape:
        maps, outputs, *features = grad_model(x, training=False)
        y = answer(outputs, target, features[0] if features else None, dense)
    grads = tape.gradient(y, maps)
    if grads is None:
        raise ValueError(f"the answer {target!r} does not depend on layer {layer!r}")
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1))[0]
    cam = tf.image.resize(cam[..., None], image.shape[:2], method="bilinear")[..., 0].numpy()
    top = cam.max()
    if top <= 0:
        warnings.warn(
            f"Grad-CAM for {target} is zero everywhere at layer {layer!r}: no region raised the answer", stacklevel=2
        )
        return cam
    return cam / top
