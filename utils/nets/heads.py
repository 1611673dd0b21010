"""The output heads of the course's networks, by key: the article's age regression and gender unit (here), the ordinal
age heads of notebook 06 (``ordinal``), on the base classes of ``head``. A new head is one class added to ``HEADS``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ..base.labels import AGE_SCALE, years_to_unit
from .head import HEADS, AgeHead, AgeMAEYears, Head
from .ordinal import CE, OR, Coral, Corn, Ordinal

__all__ = ["HEADS", "AgeHead", "AgeMAEYears", "Head", "CE", "OR", "Coral", "Corn", "Ordinal", "Regression", "Gender"]


class Regression(AgeHead):
    """The article's age output: one unit (linear, or ReLU with ``age_relu``) on ages / 116, trained with MSE.

    A regression head with another loss is a subclass with its own ``key``, ``loss`` and ``loss_label``: its file
    names, stored test loss and table labels follow from them."""

    key = "regression"
    loss_label = "MSE"
    relu: bool = False  # a ReLU on the output unit (ModelConfig.age_relu)
    settings = {"relu": "age_relu"}

    def layer(self, x):
        """Dense(1), float32."""
        return keras.layers.Dense(1, activation="relu" if self.relu else None, name="age", dtype="float32")(x)

    def loss(self):
        """Mean squared error on normalised ages."""
        return "mse"

    def loss_note(self, value):
        """An MSE of normalised ages as a root mean squared error in years."""
        return f" (RMSE {np.sqrt(value) * AGE_SCALE:.1f} y)" if value >= 0 else ""

    def metrics(self):
        """MAE (normalised) and MAE in years (an output on ages / 116, as every regression head has)."""
        return ["mae", AgeMAEYears(self.key)]

    def targets(self, table, rows):
        """Ages / 116."""
        return years_to_unit(table.age.to_numpy()[rows]).reshape(-1, 1).astype(np.float32)

    def decode(self, raw):
        """Output × 116."""
        return np.asarray(raw).reshape(-1).astype(np.float64) * AGE_SCALE

    def years_error(self, y_true, y_pred):
        """|output - target| × 116."""
        flat = [ops.reshape(ops.cast(y, "float32"), (-1,)) for y in (y_true, y_pred)]
        return ops.abs(flat[1] - flat[0]) * AGE_SCALE

    def test_loss(self, raw, age_years, true_years, keras_metrics):
        """This head's own Keras loss on the normalised test ages, computed from the predictions."""
        loss = keras.losses.get(self.loss())
        value = loss(years_to_unit(true_years).reshape(-1, 1), (age_years / AGE_SCALE).reshape(-1, 1))
        return float(np.mean(ops.convert_to_numpy(value)))

    def slug(self):
        """The head's key ('regression'), with '.agerelu' when the output has a ReLU."""
        return f"{self.key}.agerelu" if self.relu else self.key

    def serving(self, raw):
        """{'age': years} (the output × 116)."""
        return {"age": keras.layers.Rescaling(AGE_SCALE, name="age_years", dtype="float32")(raw)}


def binary_scores(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy at 0.5 and binary cross-entropy of probabilities ``p`` (clipped away from 0 and 1) for 0/1 labels
    ``y``."""
    p = np.clip(np.asarray(p, np.float64).reshape(-1), 1e-7, 1 - 1e-7)
    y = np.asarray(y).reshape(-1)
    return {"accuracy": float(np.mean((p > 0.5) == y)), "bce": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))}


class Gender(Head):
    """The article's gender output: one sigmoid unit trained with binary cross-entropy."""

    key, output, weight_index, loss_label = "gender", "gender", 1, "BCE"

    def layer(self, x):
        """Dense(1, sigmoid), float32."""
        return keras.layers.Dense(1, activation="sigmoid", name="gender", dtype="float32")(x)

    def loss(self):
        """Binary cross-entropy."""
        return "binary_crossentropy"

    def metrics(self):
        """Accuracy."""
        return ["accuracy"]

    def targets(self, table, rows):
        """0 male, 1 female."""
        return table.gender.to_numpy()[rows].reshape(-1, 1).astype(np.float32)

    def decode(self, raw):
        """P(female), clipped away from 0 and 1."""
        return np.clip(np.asarray(raw).reshape(-1).astype(np.float64), 1e-7, 1 - 1e-7)

    def score(self, raw, table, rows, keras_metrics):
        """BCE and accuracy at 0.5, and the predicted probabilities."""
        p = self.decode(raw)
        g = table.gender.to_numpy()[rows]
        scored = binary_scores(p, g)
        metrics = {"gender_loss": scored["bce"], "gender_accuracy": scored["accuracy"]}
        return metrics, {"gender_true": g.astype(int).tolist(), "gender_prob": np.round(p, 4).tolist()}

    def serving(self, raw):
        """{'female': P(female)}."""
        return {"female": keras.layers.Identity(name="female", dtype="float32")(raw)}


HEADS.update({h.key: h for h in (Regression(), CE(), OR(), Coral(), Corn(), Gender())})
"""Every head by key; a new head is one class and one entry here."""
AGE_HEADS = tuple(k for k, h in HEADS.items() if h.output == "age")
TASKS = {"age_gender": ("age", "gender"), "age": ("age",), "gender": ("gender",)}
"""The outputs each value of ModelConfig.tasks trains."""


def for_config(config) -> list[Head]:
    """The heads a configuration trains, in output order (age, then gender), each holding its settings from it
    (built once per configuration: ``ModelConfig.heads``)."""
    picked = {"age": HEADS[config.age_head], "gender": HEADS["gender"]}
    return [picked[o].configured(config) for o in TASKS[config.tasks]]


def age_head(config) -> AgeHead | None:
    """The configuration's age head, or None for a gender-only network."""
    return next((h for h in config.heads if isinstance(h, AgeHead)), None)
