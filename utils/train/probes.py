"""Probes: callbacks that measure something extra while a run trains (stored under the run's ``probes``),
and their readings."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..base.labels import AGE_SCALE
from ..data import UTKFace
from ..nets import heads
from ..nets.models import ModelConfig
from .callbacks import batchnorm_layers, remeasure_batchnorm
from .pipeline import make_pipeline, select_rows, targets
from .runs import Run, epoch_jumps


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


PROBE_CURVES = {
    "moving": "moving averages (Keras)",
    "precise_train": "re-measured, training regime",
    "precise_inference": "re-measured, inference regime",
}


PROBE_LABELS = {
    "statistics": "BatchNorm statistics",
    "mean_jump": "mean jump (y)",
    "median_jump": "median jump (y)",
    "level": "mean val age MAE after epoch 1 (y)",
    "at_best": "at the kept epoch (y)",
    "lowest": "lowest (y)",
}
"""The reader's names of ``bn_probe_frame``'s columns."""


def bn_probe_frame(runs: list[Run]) -> pd.DataFrame:
    """Per probed run and way of scoring (``statistics``, a key of ``PROBE_CURVES``): how much the validation age MAE
    jumps per epoch (mean and median), its mean level after epoch 1, at the kept epoch and its lowest (years,
    unrounded; ``bn_probe_table`` labels them)."""
    rows = []
    for r in runs:
        p = r.probes.get("bn")
        if not p:
            continue
        for key in PROBE_CURVES:
            curve = np.asarray(p[key], np.float64)
            steps = epoch_jumps(curve)
            rows.append(
                {
                    "variant": r.variant,
                    "seed": r.seed,
                    "statistics": key,
                    "mean_jump": float(np.mean(steps)),
                    "median_jump": float(np.median(steps)),
                    "level": float(np.mean(curve[1:])) if len(curve) > 1 else float("nan"),
                    "at_best": float(curve[r.best_epoch - 1]),
                    "lowest": float(curve.min()),
                }
            )
    return pd.DataFrame(rows, columns=["variant", "seed", *PROBE_LABELS])


def bn_probe_table(runs: list[Run]) -> pd.DataFrame:
    """``bn_probe_frame`` for a reader: the ways of scoring named, columns labelled, years to 2 decimals."""
    frame = bn_probe_frame(runs)
    frame["statistics"] = frame.statistics.map(PROBE_CURVES)
    return frame.round(2).rename(columns=PROBE_LABELS)


def bn_probe_note(runs: list[Run]) -> str:
    """Computed sentences: for each probed run, do the jumps come from the averages' lag, the dropout/augmentation
    shift, or the weights?

    Judged on the median jump, which one large step while the network is still far from trained cannot dominate.
    """
    frame = bn_probe_frame(runs)
    if frame.empty:
        return "No probed runs stored yet."
    gaps = {(r.variant, r.seed): r.probes["bn"].get("bn_mean_gap", []) for r in runs if r.probes.get("bn")}
    lines = []
    for (variant, seed), g in frame.groupby(["variant", "seed"], sort=False):
        med = dict(zip(g.statistics, g.median_jump))
        level = dict(zip(g.statistics, g.level))
        moving, train, infer = (med[k] for k in PROBE_CURVES)
        lag = 1 - train / moving if moving > 0 else float("nan")
        shift = 1 - infer / moving if moving > 0 else float("nan")
        if lag >= 0.3:
            verdict = "the lag of the moving averages explains much of the jumping"
        elif shift >= 0.5:
            verdict = (
                "not the averages' lag: statistics re-measured with dropout and augmentation off calm the curve, "
                "so most of the jumping comes from the mismatch between the statistics BatchNorm gathers while "
                "training and those of faces seen at inference"
            )
        elif shift >= 0.2:
            verdict = (
                "not the averages' lag; the mismatch between the statistics BatchNorm gathers with dropout and "
                "augmentation on and those of faces seen at inference explains part of it, the weights moving the rest"
            )
        else:
            verdict = (
                "neither the averages' lag nor the dropout/augmentation shift explains the jumps: "
                "they come from the weights themselves"
            )
        lines.append(
            f"{variant} (seed {seed}): median jump of the validation age MAE per epoch {moving:.2f} y with the moving "
            f"averages, {train:.2f} y re-measured in the training regime ({_less(lag)}) "
            f"and {infer:.2f} y in the inference regime ({_less(shift)}); mean level after epoch 1: "
            f"{level['moving']:.2f}, {level['precise_train']:.2f} and {level['precise_inference']:.2f} y. "
            f"Verdict: {verdict}."
        )
        drift = level["moving"] - min(level["precise_train"], level["precise_inference"])
        if drift >= 1.0:  # a curve can be smooth and still wrong: the jump measure alone misses a moving-average drift
            lines[-1] += (
                f" Beyond the jumps, the moving-average curve lies {drift:.2f} y above the lower re-measured one on "
                "average after epoch 1."
            )
        if gaps.get((variant, seed)):
            lines[-1] += (
                " Averaged over epochs, layers and channels, the moving means sat "
                f"{np.mean(gaps[(variant, seed)]):.2f} standard deviations from the re-measured ones."
            )
    n = frame.groupby(["variant", "seed"]).ngroups
    if n > 1:

        def tally(column: str) -> str:
            best = frame.loc[frame.groupby(["variant", "seed"])[column].idxmin(), "statistics"].value_counts()
            return ", ".join(f"{label} {best.get(key, 0)}" for key, label in PROBE_CURVES.items())

        lines.append(
            f"Across the {n} probed runs, which scoring gave the calmest curve (lowest median jump): "
            f"{tally('median_jump')}; the lowest mean level after epoch 1: {tally('level')}; "
            f"the lowest single point: {tally('lowest')}."
        )
    return "\n".join(lines)


def _less(share: float) -> str:
    return f"{share:.0%} less" if share >= 0 else f"{-share:.0%} more"
