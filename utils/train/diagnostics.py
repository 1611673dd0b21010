"""Looking inside an untrained network: which loss drives the shared layers, where the age output starts,
BatchNorm's memory."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..base.settings import seeded
from ..data import UTKFace
from ..nets.models import ModelConfig, build_model
from .pipeline import make_pipeline, select_rows, targets


def _one_batch(data: UTKFace, config: ModelConfig, n: int, seed: int):
    pool = select_rows(data, "train", config)
    rows = np.random.default_rng(seed).choice(pool, size=min(n, len(pool)), replace=False)
    return next(iter(make_pipeline(data.images, targets(data, rows, config), rows, len(rows))))


@seeded
def loss_gradient_norms(data: UTKFace, config: ModelConfig, n: int = 256, seed: int = 0) -> pd.DataFrame:
    """Gradient norm that the weighted age loss and the gender loss each send into every shared layer, at
    initialisation, and their ratio (``gradient_norms`` for a reader)."""
    x, y = _one_batch(data, config, n, seed)
    norms = gradient_norms(build_model(config, data.size, seed=seed), config, x, y)
    norms["ratio"] = norms.gender / norms.age.clip(lower=1e-12)
    return norms.rename(columns={"age": "age loss (×weight)", "gender": "gender loss", "ratio": "gender / age"})


def gradient_norms(model: keras.Model, config: ModelConfig, x, y: dict) -> pd.DataFrame:
    """Per shared layer (``layer``), the gradient norm the weighted age loss (``age``) and the gender loss
    (``gender``) send into it, for ``model``'s weights as they are, on one batch in training mode (a multi-output
    configuration)."""
    age_head, gender_head = config.heads  # (age, gender)
    with tf.GradientTape(persistent=True) as tape:
        out = model(x, training=True)
        age, gender = (
            config.loss_weights[h.weight_index]
            * tf.reduce_mean(keras.losses.get(h.loss())(y[h.output], tf.cast(out[h.output], tf.float32)))
            for h in (age_head, gender_head)
        )
    rows = []
    for layer in model.layers:
        if (
            layer.name in ("age", "gender")
            or not layer.trainable_weights
            or not layer.name.startswith(("conv", "dense"))
        ):
            continue
        ga = tape.gradient(age, layer.trainable_weights)
        gg = tape.gradient(gender, layer.trainable_weights)
        na = float(tf.linalg.global_norm([g for g in ga if g is not None]))
        ng = float(tf.linalg.global_norm([g for g in gg if g is not None]))
        rows.append({"layer": layer.name, "age": na, "gender": ng})
    del tape
    return pd.DataFrame(rows, columns=["layer", "age", "gender"])


@seeded
def initial_age_output(data: UTKFace, config: ModelConfig, n: int = 512, seed: int = 0) -> pd.DataFrame:
    """Where the untrained age output sits against the targets (normalised units), in both modes of the network.

    Inference mode (``training=False``): BatchNorm uses its starting averages (mean 0, variance 1) and dropout is off,
    as validation sees the net before any step. Training mode (``training=True``): each BatchNorm layer normalises with
    this batch's own statistics and dropout is on, as the first optimizer steps see it."""
    model = build_model(config, data.size, seed=seed)
    x, y = _one_batch(data, config, n, seed)
    true = np.asarray(y["age"], np.float64).ravel()
    columns = {}
    for mode, training in (("inference mode", False), ("training mode", True)):  # inference first: BN is unchanged
        pred = np.asarray(model(x, training=training)["age"], np.float64).ravel()
        columns[mode] = {
            "target mean": true.mean(),
            "target std": true.std(),
            "output mean": pred.mean(),
            "output std": pred.std(),
            "MSE of the untrained net": np.mean((pred - true) ** 2),
            "MSE of predicting the mean age": true.var(),
        }
    return pd.DataFrame(columns).round(4)


def bn_memory(steps_per_epoch: int, momenta: tuple[float, ...] = (0.99, 0.9), epochs: int = 5) -> pd.DataFrame:
    """Share of BatchNorm's moving averages still made of their starting values after each epoch (momentum ** steps)."""
    rows = {f"momentum {m}": [m ** (steps_per_epoch * e) for e in range(1, epochs + 1)] for m in momenta}
    table = pd.DataFrame(rows, index=pd.Index(range(1, epochs + 1), name="after epoch")).round(3)
    table.attrs["window"] = {m: round(1 / (1 - m)) for m in momenta}
    return table


def steps_per_epoch(data: UTKFace, batch_size: int) -> int:
    """Optimizer steps in one epoch over the training split."""
    return int(np.ceil(len(data.indices("train")) / batch_size))
