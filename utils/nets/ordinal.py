"""The ordinal age heads of notebook 06 (Keras 3 versions of CE-CNN, OR-CNN, CORAL and CORN) and what they are made of:
extended labels, the CORAL layer, the three ordinal losses, P(rank > k) from logits, and the built-in layers that
decode ranks in a saved model.

Ages become ranks r = age - min_age in 0..K-1. The binary "extended" labels of a rank are y_k = [r > k] for
k = 0..K-2 (Niu et al. 2016; Cao, Mirjalili & Raschka 2020; Shi, Cao & Raschka 2021). Each loss and each
reading of P(rank > k) is one function or class with no switch on a method name; each head class at the end picks
its own (``heads.HEADS`` holds them).
"""

from __future__ import annotations

from typing import ClassVar

import keras
import numpy as np
from keras import ops

from ..base.labels import MAX_AGE, MIN_AGE
from .head import AgeHead, AgeMAEYears


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


def _thresholds(y_true, logits):
    """(ranks, k, labels): the rank of each face, the thresholds 0..K-2, and the extended labels [rank > k]."""
    r = _ranks(y_true)
    k = ops.arange(ops.shape(logits)[1])
    return r, k, ops.cast(r[:, None] > k[None, :], "float32")


@keras.saving.register_keras_serializable(package="utkface")
class RankCrossEntropy(keras.losses.Loss):
    """CE-CNN's loss: softmax cross-entropy over the K ranks (ranks as integer targets)."""

    def __init__(self, name: str = "ce_loss", **kw):
        super().__init__(name=name, **kw)

    def call(self, y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(
            _ranks(y_true), ops.cast(y_pred, "float32"), from_logits=True
        )


@keras.saving.register_keras_serializable(package="utkface")
class ThresholdLoss(keras.losses.Loss):
    """OR-CNN's and CORAL's loss: the binary cross-entropy of each question 'rank > k', summed over the K-1 questions
    (each weighted by ``importance`` when given)."""

    def __init__(self, importance: list[float] | None = None, name: str = "threshold_loss", **kw):
        super().__init__(name=name, **kw)
        self.importance = importance

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        _, _, labels = _thresholds(y_true, logits)
        terms = _binary_terms(logits, labels)
        if self.importance is not None:
            terms = terms * ops.convert_to_tensor(self.importance, "float32")
        return -ops.sum(terms, axis=1)

    def get_config(self):
        return {**super().get_config(), "importance": self.importance}


@keras.saving.register_keras_serializable(package="utkface")
class CornLoss(keras.losses.Loss):
    """CORN's loss: task k learns only from the faces with rank >= k (those past every earlier threshold), averaged
    over the (face, task) pairs used, as the authors do, not over the batch."""

    def __init__(self, name: str = "corn_loss", **kw):
        super().__init__(name=name, **kw)

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        r, k, labels = _thresholds(y_true, logits)
        mask = ops.cast(r[:, None] >= k[None, :], "float32")
        per_example = -ops.sum(_binary_terms(logits, labels) * mask, axis=1)
        return per_example * ops.cast(ops.shape(r)[0], "float32") / ops.maximum(ops.sum(mask), 1.0)


def softmax_above(logits: np.ndarray) -> np.ndarray:
    """P(rank > k) for k = 0..K-2 from K softmax logits (CE-CNN): the probability mass above k."""
    z = np.asarray(logits, dtype=np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return 1.0 - np.cumsum(p, axis=1)[:, :-1]


def sigmoid_above(logits: np.ndarray) -> np.ndarray:
    """P(rank > k) from K-1 logits, one sigmoid per question (OR-CNN, CORAL)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def chain_above(logits: np.ndarray) -> np.ndarray:
    """P(rank > k) from K-1 conditional logits (CORN): the product of the conditional probabilities up to k."""
    return np.cumprod(sigmoid_above(logits), axis=1)


def rank_consistency(above: np.ndarray, tol: float = 1e-6) -> float:
    """Share of examples whose P(rank > k) never increases with k."""
    return float(np.mean(np.all(np.diff(np.asarray(above), axis=1) <= tol, axis=1)))


# ----------------------------------------------------------------------------------------- the ordinal heads


class Ordinal(AgeHead):
    """An ordinal head: ages become ranks in ``self.age_range``; a subclass names its loss and how its logits give
    P(rank > k) (``above``)."""

    units_per_rank: ClassVar[int] = -1  # outputs: K - 1 for the binary-task heads, K for CE
    ordinal = True
    counts_logits: ClassVar[bool] = False  # its age counts logits > 0 (one sigmoid per threshold: OR-CNN, CORAL)
    age_range: tuple[int, int] = (MIN_AGE, MAX_AGE)  # the youngest and oldest age it ranks
    settings = {"age_range": "age_range"}

    @property
    def num_ranks(self) -> int:
        """K, the ages it tells apart."""
        return self.age_range[1] - self.age_range[0] + 1

    def layer(self, x):
        """A Dense layer of K - 1 (or K) float32 logits."""
        return keras.layers.Dense(self.num_ranks + self.units_per_rank, name="age", dtype="float32")(x)

    def metrics(self):
        """MAE in years of the decoded ranks."""
        return [AgeMAEYears(self.key)]

    def rows(self, table, rows):
        """Only faces whose age lies in the configured range."""
        ages = table.age.to_numpy()[rows]
        return rows[(ages >= self.age_range[0]) & (ages <= self.age_range[1])]

    def targets(self, table, rows):
        """Age ranks: age - lowest age of the range."""
        return (table.age.to_numpy()[rows] - self.age_range[0]).reshape(-1, 1).astype(np.int32)

    def above(self, logits: np.ndarray) -> np.ndarray:
        """P(rank > k) for k = 0..K-2 (numpy): one sigmoid per question, unless the head says otherwise."""
        return sigmoid_above(logits)

    def ranks(self, logits: np.ndarray) -> np.ndarray:
        """The predicted rank of each face: how many P(rank > k) exceed 0.5."""
        return levels_to_rank(self.above(logits))

    def rank_tensor(self, logits):
        """``ranks`` with Keras ops, for the metric while training."""
        return ops.sum(ops.cast(ops.sigmoid(logits) > 0.5, "float32"), axis=1)

    def years_error(self, y_true, y_pred):
        """|predicted rank - true rank| (ranks are years apart)."""
        t = ops.cast(ops.reshape(y_true, (-1,)), "float32")
        return ops.abs(self.rank_tensor(ops.cast(y_pred, "float32")) - t)

    def decode(self, raw):
        """Predicted rank + lowest age."""
        return self.ranks(np.asarray(raw, np.float64)) + self.age_range[0]

    def extra_metrics(self, raw):
        """Share of rank-consistent test faces."""
        return {"rank_consistency": rank_consistency(self.above(np.asarray(raw, np.float64)))}

    def survival(self, raw):
        """``above`` as built-in layers, for a saved model (OR and CORAL: one sigmoid per task)."""
        return keras.layers.Activation("sigmoid", name="age_above", dtype="float32")(raw)

    def serving(self, raw):
        """{'age': years, 'age_above': P(age > min_age + k)}; the age counts the probabilities above 0.5,
        as ``decode``."""
        above = self.survival(raw)
        if self.counts_logits:  # P > 0.5 exactly when the logit > 0: count on the logits, free of rounding
            return {"age": count_positive(raw, self.age_range[0], "age_years"), "age_above": above}
        return {"age": count_above_half(above, self.age_range[0], "age_years"), "age_above": above}


class CE(Ordinal):
    """CE-CNN: softmax over the K ranks; its rank is the most probable one."""

    key, units_per_rank, loss_label = "ce", 0, "cross-entropy over ranks"

    def loss(self):
        """Softmax cross-entropy over the ranks."""
        return RankCrossEntropy()

    def above(self, logits):
        """The softmax mass above k."""
        return softmax_above(logits)

    def ranks(self, logits):
        """The most probable rank."""
        return np.asarray(logits).argmax(axis=1)

    def rank_tensor(self, logits):
        """The most probable rank, with Keras ops."""
        return ops.cast(ops.argmax(logits, axis=1), "float32")

    def survival(self, raw):
        """P(rank > k) = the softmax mass above k."""
        k = self.num_ranks
        p = keras.layers.Softmax(name="decode_rank_probs", dtype="float32")(raw)
        return fixed_dense(p, np.tril(np.ones((k, k)), -1)[:, :-1], np.zeros(k - 1), "age_above")

    def serving(self, raw):
        """{'age': years of the most probable rank (a very steep softmax), 'age_above': P(age > min_age + k)}."""
        k = self.num_ranks
        hard = keras.layers.Rescaling(STEP, name="decode_sharpen", dtype="float32")(raw)
        hard = keras.layers.Softmax(name="decode_argmax", dtype="float32")(hard)
        age = fixed_dense(
            hard, np.arange(k, dtype="float32").reshape(k, 1), np.array([float(self.age_range[0])]), "age_years"
        )
        return {"age": age, "age_above": self.survival(raw)}


class OR(Ordinal):
    """OR-CNN (Niu et al. 2016): K - 1 independent binary tasks."""

    key, loss_label, counts_logits = "or", "OR-CNN loss", True

    def loss(self):
        """The binary cross-entropies of the K - 1 questions, summed."""
        return ThresholdLoss()


class Coral(OR):
    """CORAL (Cao et al. 2020): OR-CNN's tasks and loss, sharing one weight vector, rank-consistent by construction."""

    key, loss_label = "coral", "CORAL loss"

    def layer(self, x):
        """CoralLogits, float32."""
        return CoralLogits(self.num_ranks, name="age", dtype="float32")(x)


class Corn(Ordinal):
    """CORN (Shi et al. 2021): conditional binary tasks, rank-consistent through the chain rule."""

    key, loss_label = "corn", "CORN loss"

    def loss(self):
        """Each task's binary cross-entropy on the faces past every earlier threshold."""
        return CornLoss()

    def above(self, logits):
        """The product of the conditional probabilities up to k."""
        return chain_above(logits)

    def rank_tensor(self, logits):
        """How many running products of the conditional probabilities exceed 0.5, with Keras ops."""
        return ops.sum(ops.cast(ops.cumprod(ops.sigmoid(logits), axis=1) > 0.5, "float32"), axis=1)

    def survival(self, raw):
        """P(rank > k) = the product of the conditional probabilities up to k:
        exp of a cumulative sum of log-sigmoids."""
        k = self.num_ranks - 1
        logp = keras.layers.Activation("log_sigmoid", name="decode_log_conditional", dtype="float32")(raw)
        logp = fixed_dense(logp, np.triu(np.ones((k, k))), np.zeros(k), "decode_cumulative")
        return keras.layers.Activation("exponential", name="age_above", dtype="float32")(logp)
