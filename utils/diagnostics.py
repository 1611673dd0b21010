"""Looking inside training: which loss drives the shared layers, where the age output starts, how noisy the curves are."""
from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from .data import UTKFace
from .labels import AGE_SCALE
from .models import ModelConfig, build_model
from .reporting import history_key
from .training import make_pipeline, select_rows, targets


def _one_batch(data: UTKFace, config: ModelConfig, n: int, seed: int):
    pool = select_rows(data, "train", config)
    rows = np.random.default_rng(seed).choice(pool, size=min(n, len(pool)), replace=False)
    return next(iter(make_pipeline(data.images, targets(data, rows, config), rows, len(rows))))


def loss_gradient_norms(data: UTKFace, config: ModelConfig, n: int = 256, seed: int = 0) -> pd.DataFrame:
    """Gradient norm that the weighted age loss and the gender loss each send into every shared layer, at initialisation."""
    keras.utils.set_random_seed(seed)
    model = build_model(config, data.size, seed=seed)
    x, y = _one_batch(data, config, n, seed)
    w_age, w_gender = config.loss_weights
    with tf.GradientTape(persistent=True) as tape:
        out = model(x, training=True)
        age = w_age * tf.reduce_mean(keras.losses.mean_squared_error(y["age"], tf.cast(out["age"], tf.float32)))
        gender = w_gender * tf.reduce_mean(keras.losses.binary_crossentropy(y["gender"], tf.cast(out["gender"], tf.float32)))
    rows = []
    for layer in model.layers:
        if layer.name in ("age", "gender") or not layer.trainable_weights or not layer.name.startswith(("conv", "dense")):
            continue
        ga = tape.gradient(age, layer.trainable_weights)
        gg = tape.gradient(gender, layer.trainable_weights)
        na = float(tf.linalg.global_norm([g for g in ga if g is not None]))
        ng = float(tf.linalg.global_norm([g for g in gg if g is not None]))
        rows.append({"layer": layer.name, "age loss (×weight)": na, "gender loss": ng, "gender / age": ng / max(na, 1e-12)})
    del tape
    table = pd.DataFrame(rows)
    table.attrs["losses"] = {"age (weighted)": float(age), "gender": float(gender)}
    return table


def initial_age_output(data: UTKFace, config: ModelConfig, n: int = 512, seed: int = 0) -> pd.Series:
    """Where the untrained age output sits compared with the targets (normalised units and years)."""
    keras.utils.set_random_seed(seed)
    model = build_model(config, data.size, seed=seed)
    x, y = _one_batch(data, config, n, seed)
    pred = np.asarray(model(x, training=False)["age"], np.float64).ravel()
    true = np.asarray(y["age"], np.float64).ravel()
    return pd.Series({
        "target mean": true.mean(), "target std": true.std(),
        "output mean": pred.mean(), "output std": pred.std(),
        "MSE of the untrained net": np.mean((pred - true) ** 2),
        "MSE of predicting the mean age": true.var(),
    }).round(4)


def curve_summary(runs: list[dict]) -> pd.DataFrame:
    """Per run: epochs, best epoch, train and validation age MAE (years) there, and how much validation jumps per epoch."""
    rows = []
    for r in runs:
        h = r["history"]
        key = history_key(r, "mae_years")
        if key is None:  # a gender-only network has no age curve
            continue
        val = np.asarray(h[f"val_{key}"])
        best = r["best_epoch"] - 1
        rows.append({
            "variant": r.get("variant", ""), "seed": r["seed"], "epochs": r["epochs_run"], "best epoch": r["best_epoch"],
            "train age MAE (y)": round(h[key][best], 2), "val age MAE (y)": round(float(val[best]), 2),
            "val jump per epoch (y)": round(float(np.mean(epoch_jumps(val))), 2),
            "test age MAE (y)": round(r["metrics"].get("age_mae_years", float("nan")), 2),
        })
    return pd.DataFrame(rows)


def epoch_jumps(curve) -> np.ndarray:
    """How far a per-epoch curve moves from one epoch to the next (absolute steps; NaN for a single epoch)."""
    curve = np.asarray(curve, np.float64)
    return np.abs(np.diff(curve)) if len(curve) > 1 else np.array([np.nan])


def bn_memory(steps_per_epoch: int, momenta: tuple[float, ...] = (0.99, 0.9), epochs: int = 5) -> pd.DataFrame:
    """Share of BatchNorm's moving averages still made of their starting values after each epoch (momentum ** steps)."""
    rows = {f"momentum {m}": [m ** (steps_per_epoch * e) for e in range(1, epochs + 1)] for m in momenta}
    table = pd.DataFrame(rows, index=pd.Index(range(1, epochs + 1), name="after epoch")).round(3)
    table.attrs["window"] = {m: round(1 / (1 - m)) for m in momenta}
    return table


def steps_per_epoch(data: UTKFace, batch_size: int) -> int:
    """Optimizer steps in one epoch over the training split."""
    return int(np.ceil(len(data.indices("train")) / batch_size))


def remedy_note(runs: list[dict], baseline: str = "article network") -> str:
    """Computed sentences: each remedy's validation jumpiness and test age error against the range of the baseline's seeds."""
    table = curve_summary(runs)
    if table.empty or baseline not in set(table.variant):
        return "No stored runs of the baseline yet."
    base = table[table.variant == baseline]
    cols = {"jump": "val jump per epoch (y)", "mae": "test age MAE (y)"}

    def where(value: float, col: str) -> str:
        lo, hi = base[col].min(), base[col].max()
        if len(base) < 2:
            return "lower than the baseline" if value < lo else "not lower than the baseline"
        return "below the baseline seeds' range" if value < lo else "above it" if value > hi else "within the baseline seeds' range"

    lines = [f"{baseline} ({len(base)} seed(s)): validation age MAE jumps {base[cols['jump']].mean():.2f} y per epoch "
             f"(seeds {base[cols['jump']].min():.2f}–{base[cols['jump']].max():.2f}); test age MAE {base[cols['mae']].mean():.2f} y "
             f"(seeds {base[cols['mae']].min():.2f}–{base[cols['mae']].max():.2f})."]
    for variant, g in table[table.variant != baseline].groupby("variant", sort=False):
        jump, mae = g[cols["jump"]].mean(), g[cols["mae"]].mean()
        lines.append(f"{variant} ({len(g)} seed(s)): jumps {jump:.2f} y per epoch, {where(jump, cols['jump'])}; "
                     f"test age MAE {mae:.2f} y, {where(mae, cols['mae'])}.")
    return "\n".join(lines)


def run_lengths(results: dict[str, list[dict]]) -> pd.DataFrame:
    """One row per distinct stored run across tables: how long early stopping let it train, and how it scored."""
    rows, seen = [], set()
    for table, runs in results.items():
        for r in runs:
            key = (json.dumps(r["config"], sort_keys=True), r["seed"])
            if key in seen:  # the article network appears in every search table: count its runs once
                continue
            seen.add(key)
            rows.append({"table": table, "variant": r.get("variant", ""), "seed": r["seed"], "epochs": r["epochs_run"],
                         "best epoch": r["best_epoch"], "test loss": round(r["metrics"]["loss"], 4),
                         "test age MAE (y)": round(r["metrics"].get("age_mae_years", float("nan")), 2)})
    return pd.DataFrame(rows)


def run_length_note(table: pd.DataFrame, metric: str = "test loss") -> str:
    """A computed sentence: do the runs that early stopping let train longer score better (Spearman's rank correlation)?"""
    if len(table) < 4:
        return f"Too few runs ({len(table)}) to relate training length to {metric}."
    rho = table["best epoch"].rank().corr(table[metric].rank())  # Spearman = Pearson on ranks
    strength = "strongly" if abs(rho) >= 0.6 else "moderately" if abs(rho) >= 0.3 else "hardly"
    return (f"Across {len(table)} runs, the best epoch ranged {table['best epoch'].min()}–{table['best epoch'].max()} and "
            f"Spearman's rank correlation between it and the {metric} is {rho:+.2f}: runs that trained longer "
            + (f"{strength} tended to score {'better' if rho < 0 else 'worse'}." if strength != "hardly" else "hardly scored differently."))


def dead_output_note(runs: list[dict]) -> str:
    """Per variant: the share of test faces whose predicted age is exactly 0, the mark of a ReLU output that died."""
    lines = []
    for variant in dict.fromkeys(r.get("variant", "") for r in runs):
        preds = [np.asarray(r["predictions"]["age_pred"]) for r in runs if r.get("variant", "") == variant
                 and "age_pred" in r.get("predictions", {})]
        if preds:
            zero = float(np.mean([np.mean(p == 0) for p in preds]))
            lines.append(f"{variant}: {zero:.0%} of test faces predicted exactly 0 years ({len(preds)} run(s))"
                         + (" — the output is dead: its ReLU passes neither values nor gradients." if zero > 0.99 else "."))
    return "\n".join(lines) or "No stored age predictions."


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
        if config.tasks == "gender" or config.age_head != "regression":
            raise ValueError("BNProbe scores the regression age output: use it with tasks 'age' or 'age_gender'")
        train = select_rows(data, "train", config)
        rows = np.sort(np.random.default_rng(seed).choice(train, size=min(len(train), n_batches * batch_size), replace=False))
        self.train_ds = make_pipeline(data.images, targets(data, rows, config), rows, batch_size)
        val = select_rows(data, "val", config)
        self.val_ds = make_pipeline(data.images, targets(data, val, config), val, 256)
        self.val_years = data.table.age.to_numpy()[val].astype(np.float64)
        self.record: dict[str, list[float]] = {k: [] for k in ("moving", "precise_train", "precise_inference", "bn_mean_gap")}

    def _val_mae(self) -> float:
        pred = np.concatenate([np.asarray(self._infer(x), np.float64).ravel() for x, _ in self.val_ds])
        return float(np.mean(np.abs(pred * AGE_SCALE - self.val_years)))

    def _measure(self, body: keras.Model, bns: list, dropouts: list, inference_regime: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        rates = [d.rate for d in dropouts]
        momenta = [b.momentum for b in bns]
        sums = [(np.zeros(b.moving_mean.shape), np.zeros(b.moving_variance.shape)) for b in bns]
        try:
            for b in bns:
                b.momentum = 0.0  # each forward pass leaves exactly that batch's statistics in the averages
            if inference_regime:
                for d in dropouts:
                    d.rate = 0.0
            n = 0
            for x, _ in self.train_ds:
                body(x, training=True)
                n += 1
                for (m, v), b in zip(sums, bns):
                    m += b.moving_mean.numpy()
                    v += b.moving_variance.numpy()
        finally:
            for b, mom in zip(bns, momenta):
                b.momentum = mom
            for d, r in zip(dropouts, rates):
                d.rate = r
        return [(m / n, v / n) for m, v in sums]

    def on_train_begin(self, logs=None):
        self._infer = tf.function(lambda x: self.model(x, training=False)["age"])
        aug = [layer for layer in self.model.layers if layer.name == "augmentation"]
        self._body = keras.Model(aug[0].output, self.model.output) if aug else self.model  # skips augmentation

    def on_epoch_end(self, epoch, logs=None):
        bns = [layer for layer in self.model.layers if isinstance(layer, keras.layers.BatchNormalization)]
        dropouts = [layer for layer in self.model.layers if isinstance(layer, keras.layers.Dropout)]
        saved = [(b.moving_mean.numpy(), b.moving_variance.numpy()) for b in bns]
        self.record["moving"].append(self._val_mae())
        for key, body, inference in (("precise_train", self.model, False), ("precise_inference", self._body, True)):
            stats = self._measure(body, bns, dropouts, inference)
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


PROBE_CURVES = {"moving": "moving averages (Keras)", "precise_train": "re-measured, training regime",
                "precise_inference": "re-measured, inference regime"}


def bn_probe_table(runs: list[dict]) -> pd.DataFrame:
    """Per probed run and way of scoring: how much validation age MAE jumps per epoch (mean and median), and its level."""
    rows = []
    for r in runs:
        p = r.get("probes", {}).get("bn")
        if not p:
            continue
        best = r["best_epoch"] - 1
        for key, label in PROBE_CURVES.items():
            curve = np.asarray(p[key])
            steps = epoch_jumps(curve)
            rows.append({"variant": r.get("variant", ""), "seed": r["seed"], "BatchNorm statistics": label,
                         "mean jump (y)": round(float(np.mean(steps)), 2), "median jump (y)": round(float(np.median(steps)), 2),
                         "mean val age MAE after epoch 1 (y)": round(float(np.mean(curve[1:])), 2) if len(curve) > 1 else float("nan"),
                         "at the kept epoch (y)": round(float(curve[best]), 2), "lowest (y)": round(float(curve.min()), 2)})
    return pd.DataFrame(rows)


def bn_probe_note(runs: list[dict]) -> str:
    """Computed sentences: for each probed run, do the jumps come from the averages' lag, the dropout/augmentation shift, or the weights?

    Judged on the median jump, which one large step while the network is still far from trained cannot dominate.
    """
    table = bn_probe_table(runs)
    if table.empty:
        return "No probed runs stored yet."
    gaps = {(r.get("variant", ""), r["seed"]): r["probes"]["bn"].get("bn_mean_gap", []) for r in runs if r.get("probes", {}).get("bn")}
    lines = []
    for (variant, seed), g in table.groupby(["variant", "seed"], sort=False):
        med = dict(zip(g["BatchNorm statistics"], g["median jump (y)"]))
        level = dict(zip(g["BatchNorm statistics"], g["mean val age MAE after epoch 1 (y)"]))
        moving, train, infer = (med[PROBE_CURVES[k]] for k in PROBE_CURVES)
        lag = 1 - train / moving if moving > 0 else float("nan")
        shift = 1 - infer / moving if moving > 0 else float("nan")
        if lag >= 0.3:
            verdict = "the lag of the moving averages explains much of the jumping"
        elif shift >= 0.5:
            verdict = ("not the averages' lag: statistics re-measured with dropout and augmentation off calm the curve, so most "
                       "of the jumping comes from the mismatch between the statistics BatchNorm gathers while training and "
                       "those of faces seen at inference")
        elif shift >= 0.2:
            verdict = ("not the averages' lag; the mismatch between the statistics BatchNorm gathers with dropout and "
                       "augmentation on and those of faces seen at inference explains part of it, the weights moving the rest")
        else:
            verdict = "neither the averages' lag nor the dropout/augmentation shift explains the jumps: they come from the weights themselves"
        lines.append(
            f"{variant} (seed {seed}): median jump of the validation age MAE per epoch {moving:.2f} y with the moving "
            f"averages, {train:.2f} y re-measured in the training regime ({_less(lag)}) and {infer:.2f} y in the inference "
            f"regime ({_less(shift)}); mean level after epoch 1: {level[PROBE_CURVES['moving']]:.2f}, "
            f"{level[PROBE_CURVES['precise_train']]:.2f} and {level[PROBE_CURVES['precise_inference']]:.2f} y. Verdict: {verdict}.")
        drift = level[PROBE_CURVES["moving"]] - min(level[PROBE_CURVES["precise_train"]], level[PROBE_CURVES["precise_inference"]])
        if drift >= 1.0:  # a curve can be smooth and still wrong: the jump measure alone misses a moving-average drift
            lines[-1] += (f" Beyond the jumps, the moving-average curve lies {drift:.2f} y above the lower re-measured one on "
                          "average after epoch 1.")
        if gaps.get((variant, seed)):
            lines[-1] += (f" Averaged over epochs, layers and channels, the moving means sat {np.mean(gaps[(variant, seed)]):.2f} "
                          "standard deviations from the re-measured ones.")
    n = table.groupby(["variant", "seed"]).ngroups
    if n > 1:
        def tally(column: str) -> str:
            best = table.loc[table.groupby(["variant", "seed"])[column].idxmin(), "BatchNorm statistics"].value_counts()
            return ", ".join(f"{label} {best.get(label, 0)}" for label in PROBE_CURVES.values())
        lines.append(f"Across the {n} probed runs, which scoring gave the calmest curve (lowest median jump): {tally('median jump (y)')}; "
                     f"the lowest mean level after epoch 1: {tally('mean val age MAE after epoch 1 (y)')}; "
                     f"the lowest single point: {tally('lowest (y)')}.")
    return "\n".join(lines)


def _less(share: float) -> str:
    return f"{share:.0%} less" if share >= 0 else f"{-share:.0%} more"


def fit_note(table: pd.DataFrame) -> str:
    """Computed sentences from ``curve_summary``: per variant, train and validation age MAE at the kept epoch — under- or overfitting?"""
    if table.empty:
        return "No runs with an age curve yet."
    lines = []
    for variant, g in table.groupby("variant", sort=False):
        tr, va = g["train age MAE (y)"], g["val age MAE (y)"]
        gap = float((va - tr).mean())
        kind = ("validation error well above the training error: overfitting" if gap > 1.5 else
                "validation error below the training error (which is measured with augmentation and dropout on): no sign "
                "of overfitting; what limits it is how well it fits its training faces" if gap < -1.0 else
                "training and validation errors close: no sign of overfitting; what limits it is how well it fits its "
                "training faces")
        lines.append(f"{variant} ({len(g)} run(s)): train age MAE {tr.min():.2f}–{tr.max():.2f} y, validation "
                     f"{va.min():.2f}–{va.max():.2f} y at the kept epoch (mean gap {gap:+.2f} y): {kind}.")
    return "\n".join(lines)
