"""Probes: callbacks that measure something extra while a run trains (stored under the run's ``probes``): BatchNorm's
statistics three ways (``BNProbe``, read by ``utils.read.bn_probe``) and each loss's gradient into the shared layers
(``GradientProbe``, the solutions of 02-04)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..base.labels import AGE_SCALE
from ..data import UTKFace
from ..nets import heads
from ..nets.models import ModelConfig
from .callbacks import batchnorm_layers, remeasure_batchnorm
from .diagnostics import gradient_norms
from .pipeline import make_pipeline, select_rows, targets


class BNProbe(keras.callbacks.Callback):
    """After every epoch, score the validation ages three ways to tell BatchNorm's averages apart from the weights.

    1. *moving*: with BatchNorm's moving averages, as Keras evaluates (``val_mae_years`` up to float rounding);
    2. *precise, training regime*: statistics re-measured now, averaged over a fixed sample of training batches run as
       in training (augmentation and dropout on): what the moving averages try to follow, without their lag;
    3. *precise, inference regime*: the same with augmentation and dropout off, as the validation faces are seen.

    If (2) is calm where (1) jumps, the jumps come from the moving averages; if (2) jumps as well, the weights
    themselves move that much between epochs. A gap between (2) and (3) is the shift that dropout and augmentation
    cause in the statistics. The weights and the moving averages are left exactly as they were.
    """

    key = "bn"  # the run record keeps what it measured under record["probes"]["bn"]

    def __init__(self, data: UTKFace, config: ModelConfig, batch_size: int, n_batches: int = 50, seed: int = 0):
        super().__init__()
        if not isinstance(heads.age_head(config), heads.Regression):
            raise ValueError("BNProbe scores the regression age output: use it with tasks 'age' or 'age_gender'")
        train = select_rows(data, "train", config)
        rows = np.sort(
            np.random.default_rng(seed).choice(train, size=min(len(train), n_batches * batch_size), replace=False)
        )
        self.train_ds = make_pipeline(data.images, targets(data, rows, config), rows, batch_size)
        val = select_rows(data, "val", config)
        self.val_ds = make_pipeline(data.images, targets(data, val, config), val, 256)
        self.val_years = data.table.age.to_numpy()[val].astype(np.float64)
        self.record: dict[str, list[float]] = {
            k: [] for k in ("moving", "precise_train", "precise_inference", "bn_mean_gap")
        }

    def _val_mae(self) -> float:
        pred = np.concatenate([np.asarray(self._infer(x), np.float64).ravel() for x, _ in self.val_ds])
        return float(np.mean(np.abs(pred * AGE_SCALE - self.val_years)))

    def on_train_begin(self, logs=None):
        self._infer = tf.function(lambda x: self.model(x, training=False)["age"])
        aug = [layer for layer in self.model.layers if layer.name == "augmentation"]
        self._body = keras.Model(aug[0].output, self.model.output) if aug else self.model  # skips augmentation

    def on_epoch_end(self, epoch, logs=None):
        bns = batchnorm_layers(self.model)
        saved = [(b.moving_mean.numpy(), b.moving_variance.numpy()) for b in bns]
        self.record["moving"].append(self._val_mae())
        for key, body, inference in (("precise_train", self.model, False), ("precise_inference", self._body, True)):
            assert [b.name for b in batchnorm_layers(body)] == [b.name for b in bns]
            stats = remeasure_batchnorm(body, (x for x, _ in self.train_ds), inference_regime=inference)
            for b, (m, v) in zip(bns, stats):
                b.moving_mean.assign(m)
                b.moving_variance.assign(v)
            self.record[key].append(self._val_mae())
            if key == "precise_train":  # how far the moving means sit from the re-measured ones, in standard deviations
                gaps = [np.mean(np.abs(s[0] - m) / np.sqrt(v + b.epsilon)) for s, (m, v), b in zip(saved, stats, bns)]
                self.record["bn_mean_gap"].append(float(np.mean(gaps)))
        for b, (m, v) in zip(bns, saved):
            b.moving_mean.assign(m)
            b.moving_variance.assign(v)


class GradientProbe(keras.callbacks.Callback):
    """Before training and after every epoch, the gradient norm that each loss (age weighted, gender) sends into every
    shared layer, on one fixed training batch in training mode (``diagnostics.loss_gradient_norms`` on the weights of
    the moment). BatchNorm's averages and the random state are put back, so the run trains exactly as without it."""

    key = "gradients"

    def __init__(self, faces: UTKFace, config: ModelConfig, n: int = 256, seed: int = 0):
        super().__init__()
        pool = select_rows(faces, "train", config)
        rows = np.random.default_rng(seed).choice(pool, size=min(n, len(pool)), replace=False)
        self.x, self.y = next(iter(make_pipeline(faces.images, targets(faces, rows, config), rows, len(rows))))
        self.config, self.record = config, {"epoch": [], "layer": [], "age": [], "gender": []}

    def _measure(self, epoch: int) -> None:
        saved = [v.numpy() for v in self.model.non_trainable_variables]  # BatchNorm averages, seed generators
        table = gradient_norms(self.model, self.config, self.x, self.y)
        self.record["epoch"] += [epoch] * len(table)
        self.record["layer"] += table.layer.tolist()
        self.record["age"] += table.age.tolist()
        self.record["gender"] += table.gender.tolist()
        for v, value in zip(self.model.non_trainable_variables, saved):
            v.assign(value)

    def on_train_begin(self, logs=None):
        self._measure(0)

    def on_epoch_end(self, epoch, logs=None):
        self._measure(epoch + 1)
