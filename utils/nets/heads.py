"""Output heads as objects: each owns its layer, loss, metrics, targets and decoding (age: regression, CE, OR, CORAL,
CORN; gender). A new head is one class added to ``HEADS``. The ordinal heads' layers, losses and decoding live in
``ordinal``; this module imports only the parts the heads use.
"""

from __future__ import annotations

from typing import ClassVar

import keras
import numpy as np
import pandas as pd
from keras import ops

from ..base.labels import AGE_SCALE, years_to_unit
from .ordinal import (
    STEP,
    AgeMAEYears,
    CoralLogits,
    OrdinalLoss,
    count_above_half,
    count_positive,
    fixed_dense,
    predict_ranks,
    rank_consistency,
)

# ----------------------------------------------------------------------------------------- heads as objects


class Head:
    """One output of the network: its layer, loss, metrics, targets, and how its raw output becomes a prediction.

    Every ``config`` is a ``models.ModelConfig``, left unannotated: models imports this module, not the reverse."""

    key: ClassVar[str]  # the name a configuration uses: ModelConfig.age_head for age heads, "gender" for gender
    output: ClassVar[str]  # the model output it fills: "age" or "gender"
    weight_index: ClassVar[int]  # its place in ModelConfig.loss_weights (age, gender)
    loss_label: ClassVar[str]  # its loss as tables name it: "MSE", "BCE", "OR-CNN loss", ...
    ordinal: ClassVar[bool] = False  # predicts an age rank from K - 1 (or K) logits (the ordinal heads of notebook 06)

    def loss_note(self, value: float) -> str:
        """What this head's normalised test loss means in years, e.g. ' (RMSE 10.4 y)' for an MSE; '' when nothing."""
        return ""

    def layer(self, x, config):
        """The output layer on the body's features ``x`` (float32, whatever the precision policy)."""
        raise NotImplementedError

    def loss(self, config):
        """The Keras loss (a name or an object) this head trains with."""
        raise NotImplementedError

    def metrics(self, config) -> list:
        """The Keras metrics shown while training."""
        return []

    def rows(self, table: pd.DataFrame, rows: np.ndarray, config) -> np.ndarray:
        """The rows this head can learn from (all of them unless it restricts the labels)."""
        return rows

    def targets(self, table: pd.DataFrame, rows: np.ndarray, config) -> np.ndarray:
        """The training target of each row, shaped (n, 1)."""
        raise NotImplementedError

    def decode(self, raw: np.ndarray, config) -> np.ndarray:
        """The raw output as a prediction: age in years, or the probability of 'female'."""
        raise NotImplementedError

    def score(
        self, raw: np.ndarray, table: pd.DataFrame, rows: np.ndarray, keras_metrics: dict, config
    ) -> tuple[dict[str, float], dict[str, list]]:
        """Test metrics and per-image predictions of this head."""
        raise NotImplementedError

    def slug(self, config) -> str:
        """This head's part of a stored run's file name."""
        return self.key

    def serving(self, raw, config) -> dict:
        """What a saved model outputs for this head, from its raw output and built-in layers only (``serving``)."""
        raise NotImplementedError


class AgeHead(Head):
    """Shared by every age head: errors in years from the decoded ages."""

    output = "age"
    weight_index = 0

    def score(self, raw, table, rows, keras_metrics, config):
        """Age errors (normalised and in years), the head's own loss, and the predicted ages."""
        true_years = table.age.to_numpy()[rows].astype(np.float64)
        age_years = self.decode(raw, config)
        metrics = {
            "age_loss": self.test_loss(raw, age_years, true_years, keras_metrics, config),
            **self.extra_metrics(raw),
        }
        err = age_years - true_years
        metrics.update(
            age_mae=float(np.mean(np.abs(err)) / AGE_SCALE),
            age_mae_years=float(np.mean(np.abs(err))),
            age_rmse_years=float(np.sqrt(np.mean(err**2))),
            age_mse=float(np.mean(err**2) / AGE_SCALE**2),
        )
        return metrics, {"age_true": true_years.astype(int).tolist(), "age_pred": np.round(age_years, 2).tolist()}

    def test_loss(
        self, raw: np.ndarray, age_years: np.ndarray, true_years: np.ndarray, keras_metrics: dict, config
    ) -> float:
        """The age loss on the test set."""
        return float(keras_metrics.get("age_loss", keras_metrics["loss"]))

    def extra_metrics(self, raw: np.ndarray) -> dict[str, float]:
        """Metrics only this head has."""
        return {}


class Regression(AgeHead):
    """The article's age output: one unit (linear, or ReLU with ``age_relu``) on ages / 116, trained with MSE.

    A regression head with another loss is a subclass with its own ``key``, ``loss`` and ``loss_label``: its file
    names, stored test loss and table labels follow from them."""

    key = "regression"
    loss_label = "MSE"

    def layer(self, x, config):
        """Dense(1), float32."""
        return keras.layers.Dense(1, activation="relu" if config.age_relu else None, name="age", dtype="float32")(x)

    def loss(self, config):
        """Mean squared error on normalised ages."""
        return "mse"

    def loss_note(self, value):
        """An MSE of normalised ages as a root mean squared error in years."""
        return f" (RMSE {np.sqrt(value) * AGE_SCALE:.1f} y)" if value >= 0 else ""

    def metrics(self, config):
        """MAE (normalised) and MAE in years (an output on ages / 116, as every regression head has)."""
        return ["mae", AgeMAEYears("regression")]

    def targets(self, table, rows, config):
        """Ages / 116."""
        return years_to_unit(table.age.to_numpy()[rows]).reshape(-1, 1).astype(np.float32)

    def decode(self, raw, config):
        """Output × 116."""
        return np.asarray(raw).reshape(-1).astype(np.float64) * AGE_SCALE

    def test_loss(self, raw, age_years, true_years, keras_metrics, config):
        """This head's own Keras loss on the normalised test ages, computed from the predictions."""
        loss = keras.losses.get(self.loss(config))
        value = loss(years_to_unit(true_years).reshape(-1, 1), (age_years / AGE_SCALE).reshape(-1, 1))
        return float(np.mean(ops.convert_to_numpy(value)))

    def slug(self, config):
        """The head's key ('regression'), with '.agerelu' when the output has a ReLU."""
        return f"{self.key}.agerelu" if config.age_relu else self.key

    def serving(self, raw, config):
        """{'age': years} (the output × 116)."""
        return {"age": keras.layers.Rescaling(AGE_SCALE, name="age_years", dtype="float32")(raw)}


class Ordinal(AgeHead):
    """An ordinal head: ages become ranks in ``config.age_range``; ``key`` names the method (see ``OrdinalLoss``)."""

    units_per_rank: ClassVar[int] = -1  # outputs: K - 1 for the binary-task heads, K for CE
    ordinal = True
    counts_logits: ClassVar[bool] = False  # its age counts logits > 0 (one sigmoid per threshold: OR-CNN, CORAL)

    def layer(self, x, config):
        """A Dense layer of K - 1 (or K) float32 logits."""
        return keras.layers.Dense(config.num_ranks + self.units_per_rank, name="age", dtype="float32")(x)

    def loss(self, config):
        """This method's ordinal loss."""
        return OrdinalLoss(self.key, config.num_ranks)

    def metrics(self, config):
        """MAE in years of the decoded ranks."""
        return [AgeMAEYears(self.key)]

    def rows(self, table, rows, config):
        """Only faces whose age lies in the configured range."""
        ages = table.age.to_numpy()[rows]
        return rows[(ages >= config.age_range[0]) & (ages <= config.age_range[1])]

    def targets(self, table, rows, config):
        """Age ranks: age - lowest age of the range."""
        return (table.age.to_numpy()[rows] - config.age_range[0]).reshape(-1, 1).astype(np.int32)

    def decode(self, raw, config):
        """Predicted rank + lowest age."""
        return predict_ranks(self.key, np.asarray(raw, np.float64)) + config.age_range[0]

    def extra_metrics(self, raw):
        """Share of rank-consistent test faces."""
        return {"rank_consistency": rank_consistency(self.key, np.asarray(raw, np.float64))}

    def survival(self, raw, config):
        """P(age > min_age + k) for k = 0..K-2, from the logits (OR and CORAL: one sigmoid per task)."""
        return keras.layers.Activation("sigmoid", name="age_above", dtype="float32")(raw)

    def serving(self, raw, config):
        """{'age': years, 'age_above': P(age > min_age + k)}; the age counts the probabilities above 0.5,
        as ``decode``."""
        above = self.survival(raw, config)
        if self.counts_logits:  # P > 0.5 exactly when the logit > 0: count on the logits, free of rounding
            return {"age": count_positive(raw, config.age_range[0], "age_years"), "age_above": above}
        return {"age": count_above_half(above, config.age_range[0], "age_years"), "age_above": above}


class CE(Ordinal):
    """CE-CNN: softmax over the K ranks."""

    key, units_per_rank, loss_label = "ce", 0, "cross-entropy over ranks"

    def survival(self, raw, config):
        """P(rank > k) = the softmax mass above k."""
        k = config.num_ranks
        p = keras.layers.Softmax(name="decode_rank_probs", dtype="float32")(raw)
        return fixed_dense(p, np.tril(np.ones((k, k)), -1)[:, :-1], np.zeros(k - 1), "age_above")

    def serving(self, raw, config):
        """{'age': years of the most probable rank (a very steep softmax), 'age_above': P(age > min_age + k)}."""
        k = config.num_ranks
        hard = keras.layers.Rescaling(STEP, name="decode_sharpen", dtype="float32")(raw)
        hard = keras.layers.Softmax(name="decode_argmax", dtype="float32")(hard)
        age = fixed_dense(
            hard, np.arange(k, dtype="float32").reshape(k, 1), np.array([float(config.age_range[0])]), "age_years"
        )
        return {"age": age, "age_above": self.survival(raw, config)}


class OR(Ordinal):
    """OR-CNN (Niu et al. 2016): K - 1 independent binary tasks."""

    key, loss_label, counts_logits = "or", "OR-CNN loss", True


class Coral(Ordinal):
    """CORAL (Cao et al. 2020): K - 1 binary tasks sharing one weight vector, rank-consistent by construction."""

    key, loss_label, counts_logits = "coral", "CORAL loss", True

    def layer(self, x, config):
        """CoralLogits, float32."""
        return CoralLogits(config.num_ranks, name="age", dtype="float32")(x)


class Corn(Ordinal):
    """CORN (Shi et al. 2021): conditional binary tasks, rank-consistent through the chain rule."""

    key, loss_label = "corn", "CORN loss"

    def survival(self, raw, config):
        """P(rank > k) = the product of the conditional probabilities up to k:
        exp of a cumulative sum of log-sigmoids."""
        k = config.num_ranks - 1
        logp = keras.layers.Activation("log_sigmoid", name="decode_log_conditional", dtype="float32")(raw)
        logp = fixed_dense(logp, np.triu(np.ones((k, k))), np.zeros(k), "decode_cumulative")
        return keras.layers.Activation("exponential", name="age_above", dtype="float32")(logp)


def binary_scores(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy at 0.5 and binary cross-entropy of probabilities ``p`` (clipped away from 0 and 1) for 0/1 labels
    ``y``."""
    p = np.clip(np.asarray(p, np.float64).reshape(-1), 1e-7, 1 - 1e-7)
    y = np.asarray(y).reshape(-1)
    return {"accuracy": float(np.mean((p > 0.5) == y)), "bce": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))}


class Gender(Head):
    """The article's gender output: one sigmoid unit trained with binary cross-entropy."""

    key, output, weight_index, loss_label = "gender", "gender", 1, "BCE"

    def layer(self, x, config):
        """Dense(1, sigmoid), float32."""
        return keras.layers.Dense(1, activation="sigmoid", name="gender", dtype="float32")(x)

    def loss(self, config):
        """Binary cross-entropy."""
        return "binary_crossentropy"

    def metrics(self, config):
        """Accuracy."""
        return ["accuracy"]

    def targets(self, table, rows, config):
        """0 male, 1 female."""
        return table.gender.to_numpy()[rows].reshape(-1, 1).astype(np.float32)

    def decode(self, raw, config):
        """P(female), clipped away from 0 and 1."""
        return np.clip(np.asarray(raw).reshape(-1).astype(np.float64), 1e-7, 1 - 1e-7)

    def score(self, raw, table, rows, keras_metrics, config):
        """BCE and accuracy at 0.5, and the predicted probabilities."""
        p = self.decode(raw, config)
        g = table.gender.to_numpy()[rows]
        scored = binary_scores(p, g)
        metrics = {"gender_loss": scored["bce"], "gender_accuracy": scored["accuracy"]}
        return metrics, {"gender_true": g.astype(int).tolist(), "gender_prob": np.round(p, 4).tolist()}

    def serving(self, raw, config):
        """{'female': P(female)}."""
        return {"female": keras.layers.Identity(name="female", dtype="float32")(raw)}


HEADS: dict[str, Head] = {h.key: h for h in (Regression(), CE(), OR(), Coral(), Corn(), Gender())}
"""Every head by key; a new head is one class and one entry here."""
AGE_HEADS = tuple(k for k, h in HEADS.items() if h.output == "age")
ORDINAL = tuple(k for k, h in HEADS.items() if h.ordinal)
"""The ordinal heads' keys (``OrdinalLoss`` and the rank decoders accept these)."""
TASKS = {"age_gender": ("age", "gender"), "age": ("age",), "gender": ("gender",)}
"""The outputs each value of ModelConfig.tasks trains."""


def for_config(config) -> list[Head]:
    """The heads a configuration trains, in output order (age, then gender)."""
    picked = {"age": HEADS[config.age_head], "gender": HEADS["gender"]}
    return [picked[o] for o in TASKS[config.tasks]]


def age_head(config) -> AgeHead | None:
    """The configuration's age head, or None for a gender-only network."""
    return next((h for h in for_config(config) if isinstance(h, AgeHead)), None)
