"""What every output head is: the base classes ``Head`` and ``AgeHead``, the registry ``HEADS`` they are looked up
in (filled by ``heads``; ``add_head`` adds one for a while), and the age metric each age head measures its own way. A
new head subclasses one of these and is added to ``HEADS``.
"""

from __future__ import annotations

from typing import ClassVar

import keras
import numpy as np
import pandas as pd
from keras import ops

from ..base.labels import AGE_SCALE
from .part import Part

HEADS: dict[str, Head] = {}
"""Every head by key (``heads`` fills it; a configuration names its heads by these keys)."""


class Head(Part):
    """One output of the network: its layer, loss, metrics, targets, and how its raw output becomes a prediction.

    ``HEADS`` holds each head with its default settings; a run uses ``configured(config)``, a copy that holds the
    settings it takes from the configuration (``settings``), so its methods need nothing else."""

    key: ClassVar[str]  # the name a configuration uses: ModelConfig.age_head for age heads, "gender" for gender
    output: ClassVar[str]  # the model output it fills: "age" or "gender"
    weight_index: ClassVar[int]  # its place in ModelConfig.loss_weights (age, gender)
    loss_label: ClassVar[str]  # its loss as tables name it: "MSE", "BCE", "OR-CNN loss", ...
    ordinal: ClassVar[bool] = False  # predicts an age rank from K - 1 (or K) logits (the ordinal heads of notebook 06)

    def loss_note(self, value: float) -> str:
        """What this head's normalised test loss means in years, e.g. ' (RMSE 10.4 y)' for an MSE; '' when nothing."""
        return ""

    def layer(self, x):
        """The output layer on the body's features ``x`` (float32, whatever the precision policy)."""
        raise NotImplementedError

    def loss(self):
        """The Keras loss (a name or an object) this head trains with."""
        raise NotImplementedError

    def metrics(self) -> list:
        """The Keras metrics shown while training."""
        return []

    def rows(self, table: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        """The rows this head can learn from (all of them unless it restricts the labels)."""
        return rows

    def targets(self, table: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        """The training target of each row, shaped (n, 1)."""
        raise NotImplementedError

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """The raw output as a prediction: age in years, or the probability of 'female'."""
        raise NotImplementedError

    def score(
        self, raw: np.ndarray, table: pd.DataFrame, rows: np.ndarray, keras_metrics: dict
    ) -> tuple[dict[str, float], dict[str, list]]:
        """Test metrics and per-image predictions of this head."""
        raise NotImplementedError

    def slug(self) -> str:
        """This head's part of a stored run's file name."""
        return self.key

    def serving(self, raw) -> dict:
        """What a saved model outputs for this head, from its raw output and built-in layers only (``serving``)."""
        raise NotImplementedError


class AgeHead(Head):
    """Shared by every age head: errors in years from the decoded ages."""

    output = "age"
    weight_index = 0

    def score(self, raw, table, rows, keras_metrics):
        """Age errors (normalised and in years), the head's own loss, and the predicted ages."""
        true_years = table.age.to_numpy()[rows].astype(np.float64)
        age_years = self.decode(raw)
        metrics = {
            "age_loss": self.test_loss(raw, age_years, true_years, keras_metrics),
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

    def test_loss(self, raw: np.ndarray, age_years: np.ndarray, true_years: np.ndarray, keras_metrics: dict) -> float:
        """The age loss on the test set."""
        return float(keras_metrics.get("age_loss", keras_metrics["loss"]))

    def extra_metrics(self, raw: np.ndarray) -> dict[str, float]:
        """Metrics only this head has."""
        return {}

    def years_error(self, y_true, y_pred):
        """|predicted - true age| in years per face, with Keras ops, from a batch's targets and raw outputs (what
        ``AgeMAEYears`` averages while training). The metric asks the head registered in ``HEADS``, so this must not
        depend on the head's ``settings``."""
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="utkface")
class AgeMAEYears(keras.metrics.Metric):
    """Mean absolute age error in years while training, as the head named ``head`` in ``HEADS`` measures it
    (``AgeHead.years_error``)."""

    def __init__(self, head: str = "regression", name: str = "mae_years", **kw):
        kw.pop("age_scale", None)  # configurations saved before the heads measured their own errors
        head = kw.pop("kind", head)
        super().__init__(name=name, **kw)
        self.head = head
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        err = HEADS[self.head].years_error(y_true, y_pred)
        self.total.assign_add(ops.sum(err))
        self.count.assign_add(ops.cast(ops.shape(err)[0], "float32"))

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "head": self.head}


class AddedHead:
    """A head in ``HEADS`` for a while (:func:`add_head`): ``remove()``, or the end of its ``with`` block, puts
    the registry back as it was (the head it replaced, if any)."""

    def __init__(self, head: Head):
        self.key, self._before, self._removed = head.key, HEADS.get(head.key), False
        HEADS[head.key] = head

    def remove(self) -> None:
        """Put ``HEADS`` back as it was before this head was added (a second call does nothing)."""
        if self._removed:
            return
        self._removed = True
        if self._before is None:
            HEADS.pop(self.key, None)
        else:
            HEADS[self.key] = self._before

    def __enter__(self) -> AddedHead:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def add_head(head: Head) -> AddedHead:
    """Add an extra head to ``HEADS``, as a new entry there would, until the returned handle's ``remove()`` or the
    end of its ``with`` block: ``with add_head(LogAge()): ...`` names ``"log_age"`` in a configuration inside it."""
    return AddedHead(head)
