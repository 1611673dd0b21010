"""Who the model gets wrong: error analysis and fairness figures from stored per-face test predictions.

Everything here works on one *tidy predictions frame*: one row per (run, test face), with the columns

    model, seed, run, file, age_true, age_pred, gender, race, gender_prob (NaN for age-only networks),
    error (= age_pred - age_true), abs_error, age_band, gender_name, race_name

`frame_from_runs` builds it from today's run records (dicts as stored in ``results/``); every other public function
takes plain DataFrames and returns DataFrames, figures or sentences, so it does not depend on how runs are stored.

Intervals are 95 % bootstrap intervals from a two-level bootstrap: the test faces of a group are resampled and, when a
model has several seeds, so are its seeds. They therefore cover both "another test set" and "another training run".
"""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..base.labels import BAND_LABELS, BANDS, GENDERS, MAX_AGE, MIN_AGE, RACES, age_band, parse_name
from ..train.runs import SUPERSEDED, current

RACE_ORDER = ("White", "Black", "Asian", "Indian", "Other")
GENDER_ORDER = ("male", "female")
LEVEL = 0.95
N_BOOT = 1000


# ----------------------------------------------------------------------------------------- the tidy frame


def age_bands(years: np.ndarray | pd.Series) -> pd.Categorical:
    """The age band (0–2, 3–9, 10–19, …, 70+) of each age in years, as an ordered categorical."""
    return pd.Categorical.from_codes(
        age_band(np.asarray(years, dtype=float)), categories=list(BAND_LABELS), ordered=True
    )


def with_groups(frame: pd.DataFrame) -> pd.DataFrame:
    """Add error, abs_error, age_band, gender_name and race_name to a frame with age_true, age_pred (gender, race)."""
    out = frame.copy()
    out["error"] = out.age_pred.astype(float) - out.age_true.astype(float)
    out["abs_error"] = out.error.abs()
    out["age_band"] = age_bands(out.age_true)
    if "gender" in out:
        out["gender_name"] = pd.Categorical(out.gender.map(GENDERS), categories=list(GENDER_ORDER), ordered=True)
    if "race" in out:
        out["race_name"] = pd.Categorical(out.race.map(RACES), categories=list(RACE_ORDER), ordered=True)
    if "model" in out and not isinstance(out.model.dtype, pd.CategoricalDtype):
        out["model"] = pd.Categorical(out.model, categories=list(dict.fromkeys(out.model)), ordered=True)
    return out


def frame_from_runs(runs: list, rename: dict[str, str] | None = None, keep: list[str] | None = None) -> pd.DataFrame:
    """Adapter: the tidy predictions frame from runs (``runs.Run`` objects, or record dicts with variant, seed,
    predictions)."""
    rename = rename or {}
    rename = {
        **{k + SUPERSEDED: v + SUPERSEDED for k, v in rename.items()},
        **rename,
    }  # a superseded row keeps its mark
    parts, seen = [], set()
    for run in current([r for r in runs if not isinstance(r, dict)]) + [r for r in runs if isinstance(r, dict)]:
        r = run if isinstance(run, dict) else {"variant": run.variant, "seed": run.seed, "predictions": run.predictions}
        model = rename.get(r["variant"], r["variant"])
        if (keep is not None and model not in keep) or (model, r["seed"]) in seen:
            continue  # one configuration shared by two tables is one run
        seen.add((model, r["seed"]))
        p = r["predictions"]
        labels = [parse_name(f)[0] for f in p["file"]]
        part = pd.DataFrame(
            {
                "model": model,
                "seed": int(r["seed"]),
                "run": f"{model} · seed {r['seed']}",
                "file": p["file"],
                "age_true": np.asarray(p["age_true"], dtype=float),
                "age_pred": np.asarray(p["age_pred"], dtype=float),
                "gender": [lab.gender if lab else -1 for lab in labels],
                "race": [lab.race if lab else -1 for lab in labels],
                "gender_prob": np.asarray(p["gender_prob"], dtype=float) if "gender_prob" in p else np.nan,
            }
        )
        if "gender_true" in p:
            part["gender"] = np.asarray(p["gender_true"], dtype=int)
        parts.append(part)
    if not parts:
        raise ValueError("no runs to analyse")
    order = list(dict.fromkeys(part.model.iloc[0] for part in parts))
    frame = with_groups(pd.concat(parts, ignore_index=True))
    frame["model"] = pd.Categorical(frame.model.astype(str), categories=order, ordered=True)
    return frame


def runs_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Which models and seeds the frame holds, with test faces, MAE and bias per model (mean over seeds)."""
    per_seed = frame.groupby(["model", "seed"], observed=True).agg(
        faces=("file", "size"), MAE=("abs_error", "mean"), bias=("error", "mean")
    )
    return (
        per_seed.groupby("model", observed=True)
        .agg(seeds=("faces", "size"), faces=("faces", "first"), MAE=("MAE", "mean"), bias=("bias", "mean"))
        .round(2)
    )


# ----------------------------------------------------------------------------------------- bootstrap


def _two_level(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means of a seeds x faces matrix: faces resampled (the same draw for every seed), then seeds."""
    n_seeds, n_faces = values.shape
    faces = rng.integers(0, n_faces, size=(n_boot, n_faces))
    per_seed = np.stack([values[s][faces].mean(axis=1) for s in range(n_seeds)])  # seeds x n_boot
    if n_seeds == 1:
        return per_seed[0]
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    return per_seed[seeds, np.arange(n_boot)[:, None]].mean(axis=1)


def bootstrap_interval(
    values: np.ndarray, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a faces vector or a seeds x faces matrix."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    if values.shape[1] == 0:
        return np.nan, np.nan
    boot = _two_level(values, n_boot, np.random.default_rng(seed))
    a = (1 - level) / 2
    return float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a))


def _matrix(rows: pd.DataFrame, column: str) -> np.ndarray:
    """Seeds x faces matrix of one column (faces present in every seed only)."""
    wide = rows.pivot_table(index="seed", columns="file", values=column, aggfunc="mean", observed=True)
    return wide.dropna(axis=1).to_numpy(dtype=float)


def _as_list(by: str | list[str] | None) -> list[str]:
    return [] if by is None else [by] if isinstance(by, str) else list(by)


def _summarise(
    frame: pd.DataFrame, by: list[str], stats: dict[str, str], n_boot: int, level: float, seed: int
) -> pd.DataFrame:
    """Per model and group: faces, seeds, and for each stat its mean over seeds, interval and seed-to-seed sd."""
    rng_seed = itertools.count(seed)
    rows = []
    for key, g in frame.groupby(["model", *by], observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(["model", *by], key))
        row["faces"] = int(g.file.nunique())
        row["seeds"] = int(g.seed.nunique())
        for name, column in stats.items():
            m = _matrix(g, column)
            row[name] = float(m.mean()) if m.size else np.nan
            row[f"{name} lo"], row[f"{name} hi"] = bootstrap_interval(m, n_boot, level, next(rng_seed))
            row[f"{name} seed sd"] = float(m.mean(axis=1).std(ddof=1)) if m.shape[0] > 1 else np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    for col in ["model", *by]:
        if col in frame and isinstance(frame[col].dtype, pd.CategoricalDtype):
            out[col] = pd.Categorical(out[col], categories=frame[col].cat.categories, ordered=True)
    return out


def group_errors(
    frame: pd.DataFrame, by: str | list[str] | None = None, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0
) -> pd.DataFrame:
    """Age MAE and bias (mean predicted − true, years) per model and group, with counts and bootstrap intervals."""
    return _summarise(frame, _as_list(by), {"MAE": "abs_error", "bias": "error"}, n_boot, level, seed)


def group_accuracy(
    frame: pd.DataFrame,
    by: str | list[str] | None = None,
    threshold: float = 0.5,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> pd.DataFrame:
    """Gender accuracy per model and group (P(female) ≥ threshold means female), with bootstrap intervals."""
    g = frame[frame.gender_prob.notna() & (frame.gender >= 0)]
    g = g.assign(correct=((g.gender_prob >= threshold).astype(int) == g.gender).astype(float))
    g = g.assign(model=g.model.cat.remove_unused_categories()) if isinstance(g.model.dtype, pd.CategoricalDtype) else g
    return _summarise(g, _as_list(by), {"accuracy": "correct"}, n_boot, level, seed)


def compare(
    frame: pd.DataFrame,
    a: str,
    b: str,
    by: str | list[str] | None = None,
    column: str = "abs_error",
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> pd.DataFrame:
    """Difference a − b of a per-face mean (MAE by default) on the same faces, per group, with a paired interval.

    A model named without its superseded mark is found under it while only its superseded runs are there."""
    models = set(frame.model.astype(str))
    a, b = (m + SUPERSEDED if m not in models and m + SUPERSEDED in models else m for m in (a, b))
    by = _as_list(by)
    rows = []
    groups = frame.groupby(by, observed=True) if by else [((), frame)]
    for i, (key, g) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        files = sorted(set(g[g.model == a].file) & set(g[g.model == b].file))
        wa = g[g.model == a].pivot_table(index="seed", columns="file", values=column, observed=True)[files].to_numpy()
        wb = g[g.model == b].pivot_table(index="seed", columns="file", values=column, observed=True)[files].to_numpy()
        rng = np.random.default_rng(seed + i)
        faces = rng.integers(0, len(files), size=(n_boot, len(files)))
        boot = []
        for w in (wa, wb):  # the same faces for both models (paired), seeds drawn for each model apart
            per_seed = np.stack([w[s][faces].mean(axis=1) for s in range(w.shape[0])])
            pick = rng.integers(0, w.shape[0], size=(n_boot, w.shape[0]))
            boot.append(per_seed[pick, np.arange(n_boot)[:, None]].mean(axis=1))
        diff = boot[0] - boot[1]
        lo, hi = np.quantile(diff, [(1 - level) / 2, 1 - (1 - level) / 2])
        rows.append(
            {
                **dict(zip(by, key)),
                "faces": len(files),
                "a": a,
                "b": b,
                "a mean": wa.mean(),
                "b mean": wb.mean(),
                "difference": wa.mean() - wb.mean(),
                "lo": lo,
                "hi": hi,
                "verdict": "real" if lo > 0 or hi < 0 else "not significant",
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- notes


def provenance(frame: pd.DataFrame, kind: str, profile: str, size: int) -> str:
    """The line that says where every figure below comes from: data, profile, image size, seeds and test faces."""
    seeds = frame.groupby("model", observed=True).seed.nunique()
    what = "REAL UTKFace" if kind == "real" else "SYNTHETIC faces (says nothing about UTKFace)"
    return (
        f"{what}, profile '{profile}' ({size} px), {frame.file.nunique():,} test faces; seeds per model: "
        + ", ".join(f"{m} {n}" for m, n in seeds.items())
        + "."
    )


def pivot(table: pd.DataFrame, by: str, stat: str = "MAE", digits: int = 1) -> pd.DataFrame:
    """A group table as models × groups, each cell 'value [lo, hi]', plus a row of face counts."""
    cell = table.apply(
        lambda r: f"{r[stat]:.{digits}f} [{r[f'{stat} lo']:.{digits}f}, {r[f'{stat} hi']:.{digits}f}]", axis=1
    )
    wide = table.assign(cell=cell).pivot(index="model", columns=by, values="cell")
    faces = table.groupby(by, observed=True).faces.first().rename("test faces").to_frame().T.astype(str)
    return pd.concat([wide, faces]).fillna("–")


def resolution_note(overall: pd.DataFrame, difference: float = 0.5) -> str:
    """How a difference of `difference` years in overall MAE compares with each model's interval and seed spread."""
    lines = []
    for _, r in overall.iterrows():
        half = (r["MAE hi"] - r["MAE lo"]) / 2
        sd = r["MAE seed sd"]
        spread = f"seed-to-seed sd {sd:.2f} y" if np.isfinite(sd) else "one seed, so no seed spread"
        verdict = "smaller" if difference < half else "larger"
        lines.append(
            f"{r.model}: MAE {r.MAE:.2f} y ± {half:.2f} y (half the 95 % interval; {spread}, {r.seeds} seeds) — "
            f"a {difference} y difference is {verdict} than that uncertainty."
        )
    halves = ((overall["MAE hi"] - overall["MAE lo"]) / 2).to_numpy()
    if len(halves) >= 2:
        h1, h2 = np.sort(halves)[:2]
        both = float(np.hypot(h1, h2))
        lines.append(
            f"A difference between two models is uncertain by about √(h₁² + h₂²): {both:.2f} y even for the two "
            f"most precise models here (h = {h1:.2f} and {h2:.2f} y, taken as independent) — a {difference} y "
            f"difference is {'smaller' if difference < both else 'larger'} than that. `errors.compare` tests a "
            "difference paired on the same faces."
        )
    return "\n".join(lines)


def _ci(row: pd.Series, name: str, unit: str = " y", digits: int = 1) -> str:
    return f"{row[name]:.{digits}f}{unit} (95 % CI {row[f'{name} lo']:.{digits}f}–{row[f'{name} hi']:.{digits}f})"


def extremes_note(table: pd.DataFrame, model: str, column: str, stat: str = "MAE", min_faces: int = 20) -> str:
    """A sentence naming the groups of one column where a model does worst and best, and whether that is real."""
    t = table[(table.model == model) & (table.faces >= min_faces)].dropna(subset=[stat])
    if len(t) < 2:
        return f"{model}: fewer than two groups of {column} with {min_faces}+ test faces."
    higher_is_worse = stat != "accuracy"
    worst, best = (t.loc[t[stat].idxmax()], t.loc[t[stat].idxmin()])
    if not higher_is_worse:
        worst, best = best, worst
    unit, digits = ("", 3) if stat == "accuracy" else (" y", 1)
    real = worst[f"{stat} lo"] > best[f"{stat} hi"] if higher_is_worse else worst[f"{stat} hi"] < best[f"{stat} lo"]
    verdict = (
        "the intervals do not overlap (but worst and best were picked after looking, so read it as a hint, not a test)"
        if real
        else "the intervals overlap: not shown to differ (test the gap itself to know more)"
    )
    label = column.removesuffix("_name")
    return (
        f"{model}, {stat} by {label}: worst for {worst[column]} {_ci(worst, stat, unit, digits)}, {worst.faces} faces; "
        f"best for {best[column]} {_ci(best, stat, unit, digits)}, {best.faces} faces — {verdict}."
    )


def compare_note(result: pd.DataFrame, label: str = "MAE", unit: str = " y") -> str:
    """One sentence per row of `compare`: the difference, its interval and whether it is real."""
    lines = []
    for _, r in result.iterrows():
        where = ", ".join(
            str(r[c])
            for c in result.columns
            if c not in ("faces", "a", "b", "a mean", "b mean", "difference", "lo", "hi", "verdict")
        )
        lines.append(
            f"{label} {r.a} − {r.b}{' (' + where + ')' if where else ''}: {r.difference:+.2f}{unit} "
            f"(95 % CI {r.lo:+.2f} to {r.hi:+.2f}, {r.faces} faces) — {r.verdict}."
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- regression toward the mean


def prediction_range(frame: pd.DataFrame) -> pd.DataFrame:
    """Per model: lowest and highest prediction, and faces per seed predicted below 0 or outside 1–116 years."""
    per_seed = frame.groupby(["model", "seed"], observed=True).agg(
        lowest=("age_pred", "min"),
        highest=("age_pred", "max"),
        negative=("age_pred", lambda x: int((x < 0).sum())),
        outside=("age_pred", lambda x: int(((x < MIN_AGE) | (x > MAX_AGE)).sum())),
        faces=("file", "size"),
    )
    out = per_seed.groupby("model", observed=True).agg(
        seeds=("faces", "size"),
        lowest=("lowest", "min"),
        highest=("highest", "max"),
        **{
            "below 0 per seed": ("negative", lambda x: ", ".join(map(str, x))),
            "outside 1–116 per seed": ("outside", lambda x: ", ".join(map(str, x))),
        },
    )
    return out.round(1)


def shrinkage(frame: pd.DataFrame) -> pd.DataFrame:
    """Per model: slope and intercept of predicted on true age (mean over seeds) and the age where they cross."""
    rows = []
    for (model, seed), g in frame.groupby(["model", "seed"], observed=True):
        slope, intercept = np.polyfit(g.age_true, g.age_pred, 1)
        rows.append(
            {
                "model": model,
                "seed": seed,
                "slope": slope,
                "intercept": intercept,
                "crossing age": intercept / (1 - slope) if slope < 1 else np.nan,
            }
        )
    out = pd.DataFrame(rows)
    out["model"] = pd.Categorical(out.model, categories=list(dict.fromkeys(frame.model.astype(str))), ordered=True)
    return out.groupby("model", observed=True)[["slope", "intercept", "crossing age"]].mean().round(2)


def age_range_note(frame: pd.DataFrame, model: str, lo: int = BANDS[1][0], hi: int = BANDS[1][1]) -> str:
    """One model's error for true ages lo–hi (both included; default: the 3–9 band) and its negative predictions."""
    g = frame[frame.model == model]
    kids = g[(g.age_true >= lo) & (g.age_true <= hi)]
    per_seed = kids.groupby("seed").agg(MAE=("abs_error", "mean"), bias=("error", "mean"))
    neg = g.groupby("seed").age_pred.apply(lambda x: int((x < 0).sum()))
    ci_mae = bootstrap_interval(_matrix(kids, "abs_error"))
    ci_bias = bootstrap_interval(_matrix(kids, "error"))
    return (
        f"{model}, true ages {lo}–{hi} ({kids.file.nunique()} test faces, {len(per_seed)} seed(s)): "
        f"MAE {per_seed.MAE.mean():.1f} y (95 % CI {ci_mae[0]:.1f}–{ci_mae[1]:.1f}; per seed "
        f"{', '.join(f'{v:.1f}' for v in per_seed.MAE)}), bias {per_seed.bias.mean():+.1f} y (95 % CI "
        f"{ci_bias[0]:+.1f} to {ci_bias[1]:+.1f}); test faces predicted below 0 years, per seed: "
        f"{', '.join(str(v) for v in neg)} of {g.groupby('seed').size().iloc[0]}."
    )


def error_curve(frame: pd.DataFrame, width: int = 5, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """MAE, bias and mean prediction per model against true age in bins of `width` years, with intervals."""
    binned = frame.assign(age_bin=(frame.age_true // width) * width + width / 2)
    table = _summarise(
        binned, ["age_bin"], {"MAE": "abs_error", "bias": "error", "predicted": "age_pred"}, n_boot, LEVEL, seed
    )
    table.attrs["width"] = width
    return table


def plot_error_curves(curve: pd.DataFrame, min_faces: int = 10) -> plt.Figure:
    """Mean prediction, MAE and bias against true age, one line per model, with 95 % bands."""
    c = curve[curve.faces >= min_faces]
    c = c if len(c) else curve
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for model, g in c.groupby("model", observed=True):
        for ax, stat in zip(axes, ("predicted", "MAE", "bias")):
            ax.plot(g.age_bin, g[stat], marker=".", label=str(model))
            ax.fill_between(g.age_bin, g[f"{stat} lo"], g[f"{stat} hi"], alpha=0.2)
    top = c.age_bin.max() + 5
    axes[0].plot([0, top], [0, top], "k--", lw=1, label="perfect")
    axes[0].axhline(0, color="grey", lw=0.8)
    axes[2].axhline(0, color="k", lw=0.8)
    axes[0].set(title="mean predicted age", ylabel="years")
    axes[1].set(title="MAE", ylabel="years")
    axes[2].set(title="bias (predicted − true)", ylabel="years")
    for ax in axes:
        ax.set_xlabel("true age (years)")
    axes[0].legend(fontsize=7)
    width = curve.attrs.get("width", 5)
    fig.suptitle(
        f"bins of {width:g} years with ≥ {min_faces} faces; bands: 95 % bootstrap over faces and seeds",
        y=1.02,
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def plot_band_race_heatmaps(
    table: pd.DataFrame, models: list[str], stat: str = "MAE", min_faces: int = 10
) -> plt.Figure:
    """Seaborn heatmaps of a stat by age band × race, one per model, each cell annotated with its face count; cells with
    fewer than `min_faces` test faces are greyed out (their count still shown)."""
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models) + 1, 4.2), squeeze=False)
    vmax = table[table.model.isin(models)][stat].max()
    for ax, model in zip(axes[0], models):
        t = table[table.model == model]
        values = t.pivot_table(index="age_band", columns="race_name", values=stat, observed=False)
        counts = t.pivot_table(index="age_band", columns="race_name", values="faces", observed=False)
        few = counts.fillna(0) < min_faces
        annot = values.round(1).astype(str).where(~few, "–") + "\n(" + counts.fillna(0).astype(int).astype(str) + ")"
        ax.set_facecolor("#d9d9d9")
        sns.heatmap(
            values.where(~few),
            annot=annot,
            fmt="",
            cmap="rocket_r",
            vmin=0,
            vmax=vmax,
            ax=ax,
            cbar=ax is axes[0][-1],
            annot_kws={"fontsize": 7},
            cbar_kws={"label": f"{stat} (years)"},
        )
        ax.set(title=str(model), xlabel="race", ylabel="true age band")
    fig.suptitle(
        f"{stat} (y) by age band × race (mean over seeds; test faces in brackets; grey: fewer than {min_faces})",
        y=1.02,
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------- gender


def expected_calibration_error(prob: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """ECE: the face-weighted mean gap between predicted probability and observed frequency over equal-width bins."""
    prob, truth = np.asarray(prob, dtype=float), np.asarray(truth, dtype=float)
    idx = np.clip((prob * bins).astype(int), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(prob[m].mean() - truth[m].mean())
    return float(ece)


def calibration_table(frame: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Reliability data per model (seeds pooled): bin, mean P(female), observed share of females and faces."""
    g = frame[frame.gender_prob.notna()]
    g = g.assign(bin=np.clip((g.gender_prob * bins).astype(int), 0, bins - 1))
    return (
        g.groupby(["model", "bin"], observed=True)
        .agg(predicted=("gender_prob", "mean"), observed=("gender", "mean"), faces=("file", "size"))
        .reset_index()
    )


def calibration_summary(frame: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Per gender model: accuracy and ECE (mean ± sd over seeds), and the mean P(female) against the share of
    females."""
    g = frame[frame.gender_prob.notna()]
    rows = []
    for (model, seed), r in g.groupby(["model", "seed"], observed=True):
        rows.append(
            {
                "model": model,
                "seed": seed,
                "accuracy": ((r.gender_prob >= 0.5) == (r.gender == 1)).mean(),
                "ECE": expected_calibration_error(r.gender_prob, r.gender, bins),
                "mean P(female)": r.gender_prob.mean(),
                "share female": r.gender.mean(),
            }
        )
    per_seed = pd.DataFrame(rows)
    return (
        per_seed.groupby("model", observed=True)
        .agg(
            seeds=("seed", "size"),
            accuracy=("accuracy", "mean"),
            **{"accuracy sd": ("accuracy", "std")},
            ECE=("ECE", "mean"),
            **{
                "ECE sd": ("ECE", "std"),
                "mean P(female)": ("mean P(female)", "mean"),
                "share female": ("share female", "mean"),
            },
        )
        .round(4)
    )


def plot_reliability(frame: pd.DataFrame, bins: int = 10) -> plt.Figure:
    """Reliability diagram of P(female) (seeds pooled) and the histogram of the probabilities."""
    table = calibration_table(frame, bins)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for model, t in table.groupby("model", observed=True):
        axes[0].plot(t.predicted, t.observed, marker="o", label=str(model))
    axes[0].plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    axes[0].set(
        xlabel="mean predicted P(female) in the bin", ylabel="share of females in the bin", title="reliability diagram"
    )
    axes[0].legend(fontsize=7)
    g = frame[frame.gender_prob.notna()]
    sns.histplot(g, x="gender_prob", hue="gender_name", bins=20, ax=axes[1], element="step")
    if axes[1].get_legend() is not None:
        axes[1].get_legend().set_title("true gender")
    axes[1].set(xlabel="predicted P(female)", title="how confident the head is", yscale="log")
    fig.tight_layout()
    return fig


def threshold_table(
    frame: pd.DataFrame, thresholds: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7), young: int = 10
) -> pd.DataFrame:
    """Gender accuracy (mean over seeds) at several thresholds: overall, males, females, and ages below `young`."""
    g = frame[frame.gender_prob.notna()]
    rows = []
    for model, m in g.groupby("model", observed=True):
        for t in thresholds:
            correct = (m.gender_prob >= t).astype(int) == m.gender
            parts = {
                "all": correct,
                "males": correct[m.gender == 0],
                "females": correct[m.gender == 1],
                f"ages 0–{young - 1}": correct[m.age_true < young],
            }
            rows.append(
                {
                    "model": model,
                    "threshold": t,
                    **{k: v.groupby(m.seed[v.index]).mean().mean() for k, v in parts.items()},
                }
            )
    return pd.DataFrame(rows).round(3)


# ----------------------------------------------------------------------------------------- label noise


def duplicate_age_gaps(groups: pd.DataFrame) -> pd.DataFrame:
    """Per group of byte-identical images (``data.duplicate_groups``): its ages, age range and gender agreement."""
    rows = []
    for _, g in groups.iterrows():
        labels = [s.strip().split("_") for s in str(g["labels (age_gender)"]).split(",") if s.strip()]
        ages = [int(a) for a, _ in labels]
        pairs = list(itertools.combinations(ages, 2))
        rows.append(
            {
                "copies": len(ages),
                "ages": ", ".join(map(str, ages)),
                "age range": max(ages) - min(ages),
                "mean pair gap": float(np.mean([abs(a - b) for a, b in pairs])) if pairs else 0.0,
                "mean squared pair gap": float(np.mean([(a - b) ** 2 for a, b in pairs])) if pairs else 0.0,
                "gender agrees": len({s for _, s in labels}) == 1,
            }
        )
    return pd.DataFrame(
        rows, columns=["copies", "ages", "age range", "mean pair gap", "mean squared pair gap", "gender agrees"]
    )


def label_noise_summary(gaps: pd.DataFrame) -> dict[str, float]:
    """What the duplicate groups say about age-label noise, and the MAE floor it would imply (Gaussian noise model)."""
    if len(gaps) == 0:
        return {"groups": 0}
    differ = gaps[gaps["age range"] > 0]
    sigma = float(np.sqrt(gaps["mean squared pair gap"].mean() / 2))  # two copies: E[(e1 − e2)²] = 2σ²
    return {
        "groups": int(len(gaps)),
        "ages differ": int(len(differ)),
        "share differ": float(len(differ) / len(gaps)),
        "mean gap (all groups)": float(gaps["mean pair gap"].mean()),
        "median gap (groups that differ)": float(differ["mean pair gap"].median()) if len(differ) else 0.0,
        "largest gap": int(gaps["age range"].max()),
        "gender differs": int((~gaps["gender agrees"]).sum()),
        "noise sd": sigma,
        "MAE floor": sigma * float(np.sqrt(2 / np.pi)),
        # E|e1 − e2| = 2σ/√π for Gaussian noise: an estimate far less swayed by a few gross errors
        "noise sd (from mean gap)": float(gaps["mean pair gap"].mean() * np.sqrt(np.pi) / 2),
        "MAE floor (from mean gap)": float(gaps["mean pair gap"].mean() * np.sqrt(np.pi) / 2 * np.sqrt(2 / np.pi)),
    }


def label_noise_note(summary: dict[str, float]) -> str:
    """The label-noise summary as plain sentences."""
    if not summary.get("groups"):
        return "No duplicate groups in this data set: nothing to measure label noise with."
    s = summary
    return (
        f"{s['groups']} groups of byte-identical images; in {s['ages differ']} of them ({s['share differ']:.0%}) the "
        f"copies carry different ages (largest gap {s['largest gap']} years; "
        f"median gap {s['median gap (groups that differ)']:.1f} y where they differ), "
        f"and in {s['gender differs']} the gender differs. Averaged over all groups, two labels of the "
        f"same image differ by {s['mean gap (all groups)']:.2f} y. If each label were the true age plus one "
        f"independent Gaussian noise, the mean absolute gap would give that noise an sd of "
        f"{s['noise sd (from mean gap)']:.2f} y "
        f"(an MAE of {s['MAE floor (from mean gap)']:.2f} y for error-free predictions), the mean squared gap "
        f"{s['noise sd']:.2f} y (MAE {s['MAE floor']:.2f} y): the two disagree because a few gross gaps dominate the "
        "squares, so one Gaussian noise level does not fit these labels."
    )


# ----------------------------------------------------------------------------------------- worst errors, imbalance


def worst_errors(frame: pd.DataFrame, model: str, n: int = 10) -> pd.DataFrame:
    """The n test faces a model gets most wrong (prediction averaged over its seeds): file, true, predicted, group."""
    g = frame[frame.model == model]
    per_face = g.groupby("file", observed=True).agg(
        true=("age_true", "first"),
        predicted=("age_pred", "mean"),
        gender=("gender_name", "first"),
        race=("race_name", "first"),
        band=("age_band", "first"),
    )
    per_face["error"] = per_face.predicted - per_face.true
    per_face = per_face.reindex(per_face.error.abs().sort_values(ascending=False).index).head(n)
    return per_face.reset_index().round(1)


def show_faces(data, files: list[str], show: bool, titles: list[str] | None = None) -> plt.Figure | None:
    """The faces of the given files from a loaded data set; real faces only when `show` is on (else a printed
    notice)."""
    if not data.synthetic and not show:
        print(
            f"{len(files)} faces not shown: UTKFace faces are never stored in the committed notebook "
            "(set SHOW_FACES = True and run it to see them)."
        )
        return None
    index = pd.Series(np.arange(len(data.table)), index=data.table.file)
    fig, axes = plt.subplots(1, len(files), figsize=(1.6 * len(files), 2.0), squeeze=False)
    for i, (ax, f) in enumerate(zip(axes[0], files)):
        ax.imshow(data.images[index[f]])
        ax.set_title(titles[i] if titles else f.split("_20")[0], fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    return fig


def imbalance(table: pd.DataFrame, rows: str, columns: str) -> pd.DataFrame:
    """Counts of faces by two label columns (age, gender, race or their names/bands), with totals and shares."""
    t = with_groups(table.assign(age_true=table.age, age_pred=table.age))
    names = {"age": "age_band", "gender": "gender_name", "race": "race_name"}
    r, c = names.get(rows, rows), names.get(columns, columns)
    for col in (r, c):  # a face whose label is missing (race -1) gets an 'unknown' column, so the totals add up
        if isinstance(t[col].dtype, pd.CategoricalDtype) and t[col].isna().any():
            t[col] = t[col].cat.add_categories("unknown").fillna("unknown")
    counts = pd.crosstab(t[r], t[c], margins=True, margins_name="all")
    return counts


def plot_imbalance(table: pd.DataFrame) -> plt.Figure:
    """Faces by race and gender, and by age band and race (a table with age, gender and race columns)."""
    t = with_groups(table.assign(age_true=table.age, age_pred=table.age))
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), gridspec_kw={"width_ratios": [1, 1.8]})
    sns.countplot(t, x="race_name", hue="gender_name", ax=axes[0])
    axes[0].set(xlabel="", title="faces by race and gender")
    if axes[0].get_legend() is not None:
        axes[0].get_legend().set_title("gender")
    pd.crosstab(t.age_band, t.race_name).plot.bar(stacked=True, ax=axes[1], width=0.85)
    axes[1].legend(title="race", fontsize=8)
    axes[1].set(xlabel="age band", ylabel="faces", title="faces by age band and race")
    axes[1].tick_params(axis="x", rotation=0)
    fig.tight_layout()
    return fig


def share_note(table: pd.DataFrame) -> str:
    """Plain sentences on the largest and smallest groups of a label table (age, gender, race columns)."""
    t = with_groups(table.assign(age_true=table.age, age_pred=table.age))
    race = t.race_name.value_counts(normalize=True)
    band = t.age_band.value_counts(normalize=True)
    cells = pd.crosstab(t.age_band, t.race_name)
    small = cells.stack().sort_values()
    return (
        f"{len(t):,} faces. Race: " + ", ".join(f"{k} {v:.1%}" for k, v in race.items()) + ". "
        f"Female share {(t.gender == 1).mean():.1%}. Largest age band {band.idxmax()} ({band.max():.1%}), smallest "
        f"{band.idxmin()} ({band.min():.1%}). Smallest age band × race cells: "
        + ", ".join(f"{b} {r} ({n})" for (b, r), n in small.head(4).items())
        + "."
    )


# ----------------------------------------------------------------------------------------- computed sentences


def with_units(table: pd.DataFrame) -> pd.DataFrame:
    """A group or runs table with its year columns named with their unit ('MAE (y)', 'bias lo (y)', ...)."""
    years = [c for c in table.columns if str(c).split(" ")[0] in ("MAE", "bias")]
    return table.rename(columns={c: f"{c} (y)" for c in years})


def worst_within_note(
    table: pd.DataFrame,
    model: str,
    group: str = "race_name",
    within: str = "age_band",
    name: str = "White",
    stat: str = "MAE",
    min_faces: int = 20,
) -> str:
    """Does `name` stay the worst `group` within each band of `within`? (cells with fewer than min_faces left out)."""
    t = table[(table.model == model) & (table.faces >= min_faces)]
    worst, other = [], []
    for band, g in t.groupby(within, observed=True):
        if len(g) < 2 or name not in set(g[group]):
            continue
        top = g.loc[g[stat].idxmax(), group]
        (worst if top == name else other).append(f"{band}" if top == name else f"{band} ({top})")
    label = group.removesuffix("_name")
    return (
        f"{model}: {name} has the highest {stat} of any {label} with {min_faces}+ test faces in "
        f"{len(worst)} of {len(worst) + len(other)} age bands ({', '.join(worst) or 'none'}); "
        f"elsewhere the worst is: {', '.join(other) or 'none'}."
    )


def gap_by_band_note(
    table: pd.DataFrame, group: str, a: str, b: str, stat: str = "bias", within: str = "age_band"
) -> str:
    """Per band of `within`: stat for group a against b, and whether their 95 % intervals overlap."""
    parts = []
    for band, g in table.groupby(within, observed=True):
        ra, rb = g[g[group] == a], g[g[group] == b]
        if ra.empty or rb.empty:
            continue
        ra, rb = ra.iloc[0], rb.iloc[0]
        overlap = not (ra[f"{stat} hi"] < rb[f"{stat} lo"] or rb[f"{stat} hi"] < ra[f"{stat} lo"])
        parts.append(f"{band} {ra[stat]:+.1f} against {rb[stat]:+.1f} y{'' if overlap else ' (intervals apart)'}")
    return f"{stat} of {a} against {b} by {within.removesuffix('_band')} band: " + "; ".join(parts) + "."


def calibration_note(summary: pd.DataFrame, kids: pd.DataFrame | None = None) -> str:
    """The calibration summary in one sentence per model."""
    lines = []
    for model, r in summary.iterrows():
        lines.append(
            f"{model} ({int(r.seeds)} seeds): ECE {r.ECE:.3f} ± {r['ECE sd']:.3f} (0 = perfectly calibrated); mean "
            f"P(female) {r['mean P(female)']:.3f} against a true share of {r['share female']:.3f}; accuracy "
            f"{r.accuracy:.1%}."
        )
    return "\n".join(lines)


def children_gender_note(
    frame: pd.DataFrame, acc_band: pd.DataFrame, kids: pd.DataFrame, model: str = "article network"
) -> str:
    """Gender accuracy under 10 and under 3 against the accuracy of always answering the majority gender there."""
    g = frame[(frame.model == model) & frame.gender_prob.notna()]
    under10 = g[g.age_true < 10].drop_duplicates("file")
    male = float((under10.gender == 0).mean())
    acc10 = float(kids.loc[kids.under_10, "accuracy"].iloc[0])
    acc3 = acc_band[(acc_band.model == model) & (acc_band.age_band == "0–2")]
    acc3 = float(acc3.accuracy.iloc[0]) if len(acc3) else float("nan")
    return (
        f"{model}: gender accuracy {acc10:.1%} under 10 and {acc3:.1%} under 3 years; always answering "
        f"'{'male' if male >= 0.5 else 'female'}' would score {max(male, 1 - male):.1%} under 10."
    )


def band_note(by_band: pd.DataFrame, model: str, bands: list[str]) -> str:
    """A model's MAE in the given age bands, with intervals, in one line."""
    t = by_band[by_band.model == model].set_index("age_band")
    return f"{model}, MAE by age band: " + "; ".join(f"{b} {_ci(t.loc[b], 'MAE')}" for b in bands if b in t.index) + "."
