"""The ordinal machinery behind the age heads of notebook 06 (Keras 3 versions of CE-CNN, OR-CNN, CORAL and CORN):
extended labels, the CORAL layer, the ordinal losses, rank probabilities and decoding, and the age MAE in years.

Ages become ranks r = age - min_age in 0..K-1. The binary "extended" labels of a rank are y_k = [r > k] for
k = 0..K-2 (Niu et al. 2016; Cao, Mirjalili & Raschka 2020; Shi, Cao & Raschka 2021). The heads that use them are
classes in ``heads.HEADS``; a test holds ``KINDS`` equal to the ordinal heads there.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

KINDS = ("ce", "or", "coral", "corn")
"""The ordinal losses and decodings this module knows (``heads.ORDINAL`` names the heads that use them)."""


def extend_labels(ranks: np.ndarray, num_ranks: int) -> np.ndarray:
    """Rank r -> K-1 binary levels [r > 0, r > 1, ..., r > K-2]."""
    ranks = np.asarray(ranks).reshape(-1, 1)
    return (ranks > np.arange(num_ranks - 1)[None, :]).astype(np.float32)


def levels_to_rank(levels: np.ndarray) -> np.ndarray:
    """K-1 binary levels (or probabilities) -> rank, counting the levels above 0.5."""
    return (np.asarray(levels) > 0.5).sum(axis=1)


STEP = 1e30
"""Slope of the ramp that stands in for a step in saved models: ``min(max(STEP * x, 0), 1)`` is 1 for every float32
x > 1e-30 and 0 for x <= 0."""


def fixed_dense(x, kernel: np.ndarray, bias: np.ndarray, name: str):
    """A frozen Dense layer with the given weights: how a saved model sums,
    counts and shifts with built-in layers only."""
    layer = keras.layers.Dense(kernel.shape[1], name=name, trainable=False, dtype="float32")
    y = layer(x)
    layer.set_weights([np.asarray(kernel, "float32"), np.asarray(bias, "float32")])
    return y


def count_positive(x, min_age: int, name: str):
    """Age in years: min_age + the number of entries of ``x`` above 0 (built-in layers only)."""
    step = keras.layers.Rescaling(STEP, name=f"decode_{name}_steep", dtype="float32")(x)
    step = keras.layers.ReLU(max_value=1.0, name=f"decode_{name}_step", dtype="float32")(step)
    return fixed_dense(step, np.ones((x.shape[-1], 1)), np.array([float(min_age)]), name)


def count_above_half(survival, min_age: int, name: str):
    """Age in years from P(age > min_age + k): min_age + the number of k where it exceeds 0.5 (built-in layers only)."""
    k = survival.shape[-1]
    return count_positive(fixed_dense(survival, np.eye(k), np.full(k, -0.5), f"decode_{name}_centre"), min_age, name)


@keras.saving.register_keras_serializable(package="utkface")
class CoralLogits(keras.layers.Layer):
    """CORAL output: one weight vector shared by all K-1 binary tasks, each task with its own bias."""

    def __init__(self, num_ranks: int, **kwargs):
        super().__init__(**kwargs)
        self.num_ranks = num_ranks

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 1), initializer="glorot_uniform", name="kernel")
        # biases start in decreasing order, as in the authors' implementation
        init = np.arange(self.num_ranks - 1, 0, -1, dtype="float32") / (self.num_ranks - 1)
        self.bias = self.add_weight(
            shape=(self.num_ranks - 1,), initializer=keras.initializers.Constant(init), name="bias"
        )

    def call(self, x):
        return ops.matmul(x, self.kernel) + self.bias

    def get_config(self):
        return {**super().get_config(), "num_ranks": self.num_ranks}


def _ranks(y_true):
    return ops.cast(ops.reshape(y_true, (-1,)), "int32")


def _binary_terms(logits, labels):
    # log-likelihood of each binary task, stable for large |logits|
    return labels * ops.log_sigmoid(logits) + (1.0 - labels) * (ops.log_sigmoid(logits) - logits)


@keras.saving.register_keras_serializable(package="utkface")
class OrdinalLoss(keras.losses.Loss):
    """Loss of an ordinal head: softmax CE (ce), summed binary CE over levels (or, coral), or CORN's conditional CE."""

    def __init__(self, kind: str, num_ranks: int, importance: list[float] | None = None, name: str | None = None, **kw):
        super().__init__(name=name or f"{kind}_loss", **kw)
        if kind not in KINDS:
            raise ValueError(f"unknown ordinal head {kind!r}; choose one of {KINDS}")
        self.kind, self.num_ranks, self.importance = kind, num_ranks, importance

    def call(self, y_true, y_pred):
        r = _ranks(y_true)
        logits = ops.cast(y_pred, "float32")
        if self.kind == "ce":
            return keras.losses.sparse_categorical_crossentropy(r, logits, from_logits=True)
        k = ops.arange(self.num_ranks - 1)
        labels = ops.cast(r[:, None] > k[None, :], "float32")
        terms = _binary_terms(logits, labels)
        if self.kind in ("or", "coral"):
            w = (
                ops.ones((self.num_ranks - 1,))
                if self.importance is None
                else ops.convert_to_tensor(self.importance, "float32")
            )
            return -ops.sum(terms * w, axis=1)
        # CORN: task k only sees the examples with rank >= k (those that passed every earlier threshold)
        mask = ops.cast(r[:, None] >= k[None, :], "float32")
        per_example = -ops.sum(terms * mask, axis=1)
        # normalise by the number of (example, task) pairs used, as the authors do, not by the batch size
        return per_example * ops.cast(ops.shape(r)[0], "float32") / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "num_ranks": self.num_ranks, "importance": self.importance}


def rank_probabilities(kind: str, logits: np.ndarray) -> np.ndarray:
    """P(rank > k) for k = 0..K-2, for every head; rank-consistent when non-increasing in k."""
    z = np.asarray(logits, dtype=np.float64)
    if kind == "ce":
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return 1.0 - np.cumsum(p, axis=1)[:, :-1]
    sig = 1.0 / (1.0 + np.exp(-z))
    if kind == "corn":
        return np.cumprod(sig, axis=1)
    return sig


def predict_ranks(kind: str, logits: np.ndarray) -> np.ndarray:
    """Predicted rank per example: argmax for CE, the count of P(rank > k) > 0.5 for the others."""
    if kind == "ce":
        return np.asarray(logits).argmax(axis=1)
    return levels_to_rank(rank_probabilities(kind, logits))


def rank_consistency(kind: str, logits: np.ndarray, tol: float = 1e-6) -> float:
    """Share of examples whose P(rank > k) never increases with k."""
    p = rank_probabilities(kind, logits)
    return float(np.mean(np.all(np.diff(p, axis=1) <= tol, axis=1)))


def _decode_ranks_tensor(kind: str, logits):
    logits = ops.cast(logits, "float32")
    if kind == "ce":
        return ops.cast(ops.argmax(logits, axis=1), "float32")
    p = ops.sigmoid(logits)
    if kind == "corn":
        p = ops.cumprod(p, axis=1)
    return ops.sum(ops.cast(p > 0.5, "float32"), axis=1)


@keras.saving.register_keras_serializable(package="utkface")
class AgeMAEYears(keras.metrics.Metric):
    """Mean absolute age error in years, for the regression head (normalised ages) and every ordinal head (ranks)."""

    def __init__(self, kind: str = "regression", age_scale: float = 116.0, name: str = "mae_years", **kw):
        super().__init__(name=name, **kw)
        self.kind, self.age_scale = kind, age_scale
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        t = ops.cast(ops.reshape(y_true, (-1,)), "float32")
        if self.kind == "regression":
            err = ops.abs(ops.reshape(ops.cast(y_pred, "float32"), (-1,)) - t) * self.age_scale
        else:
            err = ops.abs(_decode_ranks_tensor(self.kind, y_pred) - t)
        self.total.assign_add(ops.sum(err))
        self.count.assign_add(ops.cast(ops.shape(err)[0], "float32"))

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "age_scale": self.age_scale}
