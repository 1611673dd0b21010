"""Tables read from runs: an article table with its figures beside ours, the split, run lengths, curve summaries and
one run's error by age band."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..base.labels import AGE_SCALE
from ..base.profiles import PROFILES, Profile
from ..base.stats import mean_std
from ..nets.heads import HEADS
from ..train.runs import SUPERSEDED, Run, epoch_jumps, frame, history_key
from ..train.store import ResultsStore
from .tidy import age_bands

if TYPE_CHECKING:  # typing only: callers pass Experiment objects; this module never imports experiments
    from ..data import UTKFace
    from ..nets.models import ModelConfig
    from ..train.experiments import Experiment


METRICS = {
    "loss": "test loss (2·MSE + BCE)",
    "age_loss": "age loss (MSE, normalised)",
    "gender_loss": "gender loss (BCE)",
    "age_mae": "age MAE (normalised)",
    "gender_accuracy": "gender accuracy",
    "age_rmse_years": "age RMSE (years)",
}


def readable_name(metric: str) -> str:
    """A metric's name in the unit the notes print it in: 'age MAE (years)' for the normalised age MAE."""
    name = METRICS.get(metric, metric.replace("_", " "))
    return name.replace(" (normalised)", " (years)") if metric == "age_mae" else name


def weighted(weight: float, text: str) -> str:
    """A loss term as the total counts it: ``2·MSE``, or the text alone at weight 1."""
    return text if weight == 1 else f"{weight:g}·{text}"


def metric_label(metric: str, config: ModelConfig | None = None) -> str:
    """A metric's column label. With a configuration, the test loss and the age loss name that configuration's own
    losses (each head's ``loss_label``) and loss weights; without one, the article's (2·MSE + BCE)."""
    if config is None or metric not in ("loss", "age_loss"):
        return METRICS.get(metric, metric)
    picked = {h.output: h for h in config.heads}
    if metric == "age_loss":
        return f"age loss ({picked['age'].loss_label}, normalised)" if "age" in picked else METRICS[metric]
    if len(picked) == 1:
        return f"test loss ({next(iter(picked.values())).loss_label})"
    age, gender = config.loss_weights
    return f"test loss ({weighted(age, picked['age'].loss_label)} + {weighted(gender, picked['gender'].loss_label)})"


LOWER_IS_BETTER = {"loss", "age_loss", "gender_loss", "age_mae", "age_rmse_years", "age_mae_years"}


def years_note(metric: str, value: float, config=None) -> str:
    """What a normalised age figure means in years: ' (7.80 y)' for an MAE; for the age loss, what its head says
    (' (RMSE 10.4 y)' for an MSE; the article's MSE head when no configuration is given)."""
    if metric == "age_mae":
        return f" ({value * AGE_SCALE:.2f} y)"
    if metric == "age_loss":
        head = HEADS[config.age_head if config is not None and config.tasks != "gender" else "regression"]
        return head.loss_note(value)
    return ""


def in_years(metric: str, value: float, config=None) -> str:
    """A figure with its meaning in years beside it when it is a normalised age error."""
    return f"{value:.{digits_of(metric)}f}{years_note(metric, value, config)}"


def digits_of(metric: str) -> int:
    """Decimals a metric is shown with: 2 for figures in years, 5 for the small normalised MSE, 4 otherwise."""
    return 2 if metric.endswith("_years") else 5 if metric == "age_loss" else 4


def experiment_table(exp: Experiment, runs: list[Run], profile: Profile) -> pd.DataFrame:
    """Variant | metric | the article's figure | ours (mean ± std over n seeds) | n | age MAE in years | gender
    accuracy; each row's metric key (``exp.metrics``) is in ``attrs["metrics"]``, its label in the metric column."""
    df = frame(runs)
    kinds = sorted(set(df.data)) or sorted({r.data.get("kind", "") for r in runs}) or ["no runs"]
    rows = []
    for v in exp.rows(runs):  # a superseded row stands in for its live row only while that has no runs
        mine = df[df.variant == v.label]

        def of(metric: str, mine: pd.DataFrame = mine) -> list[float]:  # this row's runs, bound per iteration
            return mine.value[mine.metric == metric].tolist()

        for metric in exp.metrics:
            vals = of(metric)
            art = v.article.get(metric)
            note = years_note(metric, float(np.mean(vals)), v.config) if vals else ""
            ours = mean_std(vals, digits_of(metric)) + note
            rows.append(
                {
                    "variant": v.label,
                    "metric": metric_label(metric, v.config),
                    "article (reported)": in_years(metric, art, v.config) if art is not None else "–",
                    "ours (mean ± std)": ours,
                    "n": len(vals),
                    "age MAE (years)": mean_std(of("age_mae_years"), 2),
                    "gender acc.": mean_std(of("gender_accuracy"), 3),
                    "profile": profile.name,
                    "data": "/".join(kinds),
                }
            )
    table = pd.DataFrame(rows)
    table.attrs["metrics"] = [m for _ in exp.rows(runs) for m in exp.metrics]
    table.attrs["caption"] = (
        f"{exp.title}: ours on {'/'.join(kinds)} data, profile '{profile.name}' "
        f"({profile.image_size} px), mean ± std over n seeds; the article's figures as reported in the article."
    )
    return table


def article_setting_runs(exp: Experiment, runs: list[Run], profile: Profile) -> list[Run]:
    """The stored runs of ``exp``'s live rows at the article's setting (profile 'full', 128 px) on the same data and
    split as ``runs``; [] when there are none, or when ``profile`` is that setting already."""
    if profile.name == "full" or not runs:
        return []
    d = runs[0].data
    store = ResultsStore(writable=False)
    folder = store.folder(
        PROFILES["full"], d.get("kind", ""), d.get("fingerprint", ""), d.get("split_id", ""), sub=exp.sub
    )
    if not folder.is_dir():
        return []
    return [
        r.tagged(experiment=exp.name, variant=v.label)
        for v in exp.variants
        if not v.superseded
        for r in store.runs_in(folder, v.config)
    ]


CONTEXT = {"age MAE (years)": "age_mae", "gender acc.": "gender_accuracy"}
"""``experiment_table``'s context columns, each with the metric whose row it would repeat."""


def context_once(table: pd.DataFrame) -> pd.DataFrame:
    """The context columns on each variant's first row only, and "–" on a row whose own figure they repeat."""
    metrics = pd.Series(table.attrs.get("metrics", [None] * len(table)), index=table.index)
    first = ~table.variant.duplicated()
    out = table.assign(**{c: table[c].where(first & (metrics != m), "–") for c, m in CONTEXT.items()})
    out.attrs = dict(table.attrs)
    return out


def show_table(exp: Experiment, runs: list[Run], profile: Profile):
    """Display an experiment table with its caption (returns a pandas Styler); where runs at the article's setting
    (128 px) are stored for the same data, they stand beside ours in two more columns."""
    table = context_once(experiment_table(exp, runs, profile))
    empty = [c for c in CONTEXT if len(table) and (table[c] == "–").all()]
    table = table.drop(columns=empty)  # e.g. gender in an age-only table: a column that would say nothing
    full = article_setting_runs(exp, runs, profile)
    if full:
        table = beside(table, experiment_table(exp, full, PROFILES["full"]))
        table.attrs["caption"] += (
            " The last two columns: the article's setting (profile 'full', 128 px), same data and split."
        )
    # a fixed id per experiment: a re-rendered notebook's HTML changes only where its figures do
    return table.style.hide(axis="index").set_caption(table.attrs["caption"]).set_uuid(exp.name)


def beside(table: pd.DataFrame, full: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the article-setting table's figures in two more columns, row for row; a row whose two columns
    come from different augmentation draws says so in its label (the 64 px runs of a superseded row, the 128 px runs
    of the live one)."""
    live = [str(v).removesuffix(SUPERSEDED) for v in table.variant]
    if live != [str(v).removesuffix(SUPERSEDED) for v in full.variant]:
        raise ValueError(f"the two tables' rows differ: {list(table.variant)} against {list(full.variant)}")
    out = table.assign(**{"ours at 128 px": full["ours (mean ± std)"].to_numpy(), "n at 128 px": full.n.to_numpy()})
    mixed = [
        str(a).endswith(SUPERSEDED) and not str(b).endswith(SUPERSEDED) and n > 0
        for a, b, n in zip(table.variant, full.variant, full.n)
    ]
    out["variant"] = [
        f"{name} (64 px: shared draws; 128 px: independent)" if m else v
        for v, name, m in zip(table.variant, live, mixed)
    ]
    out.attrs = dict(table.attrs)
    return out


def split_table(data: UTKFace) -> pd.DataFrame:
    """Images, mean age and share of women in each split."""
    t = data.table
    out = t.groupby("split").agg(images=("file", "size"), mean_age=("age", "mean"), women=("gender", "mean"))
    out = out.reindex(["train", "val", "test"])
    out["share"] = out.images / out.images.sum()
    return out.round({"mean_age": 1, "women": 3, "share": 3})


CURVE_COLUMNS = ("best_epoch", "train_mae", "val_mae", "val_jump", "test_mae")
"""``curves``' figures, after variant, seed and epochs."""
LABELS = {
    "best_epoch": "best epoch",
    "train_mae": "train age MAE (y)",
    "val_mae": "val age MAE (y)",
    "val_jump": "val jump per epoch (y)",
    "test_mae": "test age MAE (y)",
    "test_loss": "test loss",
}
"""The plain per-run columns (``curves``, ``run_lengths``) as a reader sees them (``for_reader``)."""


def for_reader(frame: pd.DataFrame) -> pd.DataFrame:
    """A plain per-run frame (``curves``, ``run_lengths``) for a reader: labelled columns, years to 2 decimals and
    losses to 4."""
    digits = {c: 4 if c == "test_loss" else 2 for c in frame.columns if c in LABELS}
    return frame.round(digits).rename(columns=LABELS)


def curve_summary(runs: list[Run]) -> pd.DataFrame:
    """``curves`` for a reader (``for_reader``)."""
    return for_reader(curves(runs))


def curves(runs: list[Run]) -> pd.DataFrame:
    """Per run with an age curve: epochs, best epoch, train and validation age MAE there, the mean jump of validation
    age MAE per epoch and the test age MAE (all in years, unrounded; ``curve_summary`` labels them)."""
    rows = []
    for r in runs:
        h = r.history
        key = history_key(r, "mae_years")
        if key is None:  # a gender-only network has no age curve
            continue
        val = np.asarray(h[f"val_{key}"])
        best = r.best_epoch - 1
        rows.append(
            {
                "variant": r.variant,
                "seed": r.seed,
                "epochs": r.epochs_run,
                "best_epoch": r.best_epoch,
                "train_mae": float(h[key][best]),
                "val_mae": float(val[best]),
                "val_jump": float(np.mean(epoch_jumps(val))),
                "test_mae": float(r.metrics.get("age_mae_years", float("nan"))),
            }
        )
    return pd.DataFrame(rows, columns=["variant", "seed", "epochs", *CURVE_COLUMNS])


def worst_curve(runs: list[Run], variant: str) -> pd.DataFrame:
    """Age MAE (y) per epoch, training and validation, of ``variant``'s seed worst on test; empty if none is stored."""
    mine = [r for r in runs if r.variant == variant and history_key(r, "mae_years")]
    if not mine:
        return pd.DataFrame(columns=["train", "val", "kept"]).rename_axis(f"epoch ({variant}: no run stored)")
    worst = max(mine, key=lambda r: r.metrics.get("age_mae_years", float("-inf")))
    key = history_key(worst, "mae_years")
    table = pd.DataFrame({c: np.round(worst.history[k], 2) for c, k in (("train", key), ("val", f"val_{key}"))})
    table.index += 1  # epochs count from 1, as early stopping's kept epoch does
    table["kept"] = np.where(table.index == worst.best_epoch, "kept", "")
    return table.rename_axis(f"epoch ({variant}, seed {worst.seed}; age MAE, y)")


def run_lengths(results: dict[str, list[Run]]) -> pd.DataFrame:
    """One row per distinct stored run across tables: how long early stopping let it train (epochs, best_epoch), and
    how it scored (test_loss, test_mae in years), unrounded under plain names (``for_reader`` labels them)."""
    rows, seen = [], set()
    for table, runs in results.items():
        for r in runs:
            key = (r.config, r.seed)
            if key in seen:  # the article network appears in every search table: count its runs once
                continue
            seen.add(key)
            rows.append(
                {
                    "table": table,
                    "variant": r.variant,
                    "seed": r.seed,
                    "epochs": r.epochs_run,
                    "best_epoch": r.best_epoch,
                    "test_loss": float(r.metrics["loss"]),
                    "test_mae": float(r.metrics.get("age_mae_years", float("nan"))),
                }
            )
    return pd.DataFrame(rows, columns=["table", "variant", "seed", "epochs", "best_epoch", "test_loss", "test_mae"])


def size_table(runs: list[Run], reference: str | None = None) -> pd.DataFrame:
    """Parameters of each variant's network, and how many times the reference variant's (default: the first) that is."""
    sizes = {r.variant: r.params for r in runs if r.params}
    if not sizes:
        return pd.DataFrame(columns=["variant", "parameters", "× reference"])
    ref = sizes.get(reference, next(iter(sizes.values())))
    return pd.DataFrame([{"variant": v, "parameters": p, "× reference": round(p / ref, 2)} for v, p in sizes.items()])


def baseline_table(data: UTKFace) -> pd.DataFrame:
    """The test MAE in years of a model that ignores the face: always the training mean age, or the training median."""
    t = data.table
    train, test = t.age[t.split == "train"], t.age[t.split == "test"]
    rows = [
        {"always predict": f"training mean ({train.mean():.1f} y)", "test MAE (y)": (test - train.mean()).abs().mean()},
        {
            "always predict": f"training median ({train.median():.0f} y)",
            "test MAE (y)": (test - train.median()).abs().mean(),
        },
    ]
    return pd.DataFrame(rows).set_index("always predict").round(2)


VALIDATION_KEYS = {"age": ("val_age_mae_years", "val_mae_years"), "gender": ("val_gender_accuracy", "val_accuracy")}
"""Where a run's history keeps its validation age MAE (years) or gender accuracy: multi-output names first."""


def age_band_errors(run: Run) -> pd.DataFrame:
    """Per age band of one run: test faces, MAE and bias (mean of prediction - truth) in years, unrounded, under plain
    names (ages, faces, mae, bias); ``age_bands_table`` is the same for a reader."""
    true = np.asarray(run.predictions["age_true"], float)
    pred = np.asarray(run.predictions["age_pred"], float)
    bands = age_bands(true)
    rows = []
    for code, name in enumerate(bands.categories):
        m = bands.codes == code
        if m.any():
            err = pred[m] - true[m]
            rows.append(
                {"ages": name, "faces": int(m.sum()), "mae": float(np.abs(err).mean()), "bias": float(err.mean())}
            )
    return pd.DataFrame(rows)


def age_bands_table(run: Run) -> pd.DataFrame:
    """Test faces, MAE and bias (mean of prediction - truth) in years per age band, for one run, to 0.1 y."""
    return age_band_errors(run).round(1).rename(columns={"faces": "test faces", "mae": "MAE (y)", "bias": "bias (y)"})


def validation_choice(runs: list[Run], task: str) -> pd.DataFrame | None:
    """Each stored network's validation figure for ``task`` ('age': MAE in years, 'gender': accuracy) at its kept epoch,
    as mean ± std over its seeds, best first: how the course picks the model it keeps (never on test)."""
    rows = {}
    for r in runs:
        key = next((k for k in VALIDATION_KEYS[task] if k in r.history), None)
        if key is None or not r.best_epoch:
            continue
        label = f"{r.variant} ({r.experiment})" if r.variant else r.config.to_dict()["age_head"]
        rows.setdefault(label, []).append(r.history[key][r.best_epoch - 1])
    name = "validation age MAE (y)" if task == "age" else "validation gender accuracy"
    table = pd.DataFrame(
        [
            {"network": k, name: mean_std(v, 2 if task == "age" else 3), "n": len(v), "_mean": float(np.mean(v))}
            for k, v in rows.items()
        ]
    )
    if table.empty:
        print(f"no stored run of this profile has a validation {task} figure: train notebooks 02, 05 and 06 first")
        return None
    table = table.sort_values("_mean", ascending=task == "age").drop(columns="_mean").reset_index(drop=True)
    table.attrs["values"] = rows  # each network's per-seed figures, for a test between the leaders
    return table
