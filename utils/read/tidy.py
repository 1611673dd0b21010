"""The tidy predictions frame, the one shape every error analysis reads, and its grouped bootstrap summaries.

One row per (run, test face), with the columns

    model, seed, run, file, age_true, age_pred, gender, race, gender_prob (NaN for age-only networks),
    error (= age_pred - age_true), abs_error, age_band, gender_name, race_name

`frame_from_runs` builds it from today's run records (dicts as stored in ``results/``); every other public function
takes plain DataFrames and returns DataFrames, so it does not depend on how runs are stored.

Intervals are 95 % bootstrap intervals from a two-level bootstrap (``stats.bootstrap_interval``, and
``stats.paired_bootstrap_interval`` for a difference on the same faces, ``stats.group_gap_interval`` for one between
two groups of faces within each seed): the test faces of a group are resampled and,
when a model has several seeds, so are its seeds. They therefore cover both "another test set" and "another training
run".
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..base.labels import BAND_LABELS, GENDERS, RACES, age_band, parse_name
from ..base.stats import (
    ALPHA,
    N_BOOT,
    bootstrap_interval,
    group_gap_interval,
    holm,
    paired_bootstrap_interval,
    t_df_p,
    zero_p,
)
from ..train.runs import SUPERSEDED, current

LEVEL = 1 - ALPHA


RACE_ORDER = ("White", "Black", "Asian", "Indian", "Other")


GENDER_ORDER = ("male", "female")


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


def seeds_by_faces(rows: pd.DataFrame, column: str) -> np.ndarray:
    """Seeds x faces matrix of one column (faces present in every seed only)."""
    return _by_seed(rows, column).to_numpy(dtype=float)


def _as_list(by: str | list[str] | None) -> list[str]:
    return [] if by is None else [by] if isinstance(by, str) else list(by)


def summarise(
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
            m = seeds_by_faces(g, column)
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
    return summarise(frame, _as_list(by), {"MAE": "abs_error", "bias": "error"}, n_boot, level, seed)


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
    return summarise(g, _as_list(by), {"accuracy": "correct"}, n_boot, level, seed)


def paired_compare(
    frame: pd.DataFrame,
    a: str,
    b: str,
    by: str | list[str] | None = None,
    column: str = "abs_error",
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> pd.DataFrame:
    """Difference a − b of a per-face mean (MAE by default) on the same faces, per group, with a paired interval and
    a test across seeds.

    The interval resamples the faces (and each side's few seeds, which understates how far another seed lands), so
    with two seeds or more a side each group's per-seed means are also compared by Welch's test; "differs" needs both:
    the interval excludes zero and the seeds' p is below ``1 − level``. With several groups each interval is widened
    for their number (Bonferroni: level 1 − (1 − level) / groups) and the p values adjusted (Holm), so that "differs"
    holds for all the groups together at ``level``. With one seed a side only the faces are resampled.

    A model named without its superseded mark is found under it while only its superseded runs are there. A model the
    frame lacks gives an empty frame that names it (``attrs["missing"]``)."""
    (a, b), missing = _resolve(frame, a, b)
    by = _as_list(by)
    if missing:  # a profile without that model's runs: nothing to pair
        empty = pd.DataFrame()
        empty.attrs["missing"] = missing
        return empty
    rows = []
    groups = list(frame.groupby(by, observed=True)) if by else [((), frame)]
    each = 1 - (1 - level) / len(groups)  # Bonferroni over the groups
    for i, (key, g) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        files = sorted(set(g[g.model == a].file) & set(g[g.model == b].file))
        wa = g[g.model == a].pivot_table(index="seed", columns="file", values=column, observed=True)[files].to_numpy()
        wb = g[g.model == b].pivot_table(index="seed", columns="file", values=column, observed=True)[files].to_numpy()
        lo, hi = paired_bootstrap_interval(wa, wb, n_boot, each, seed + i)
        seeds_p = t_df_p(wa.mean(axis=1), wb.mean(axis=1))[2] if min(len(wa), len(wb)) >= 2 else np.nan
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
                "level": each,
                "groups": len(groups),
                "seeds": f"{len(wa)}, {len(wb)}",
                "seeds p": seeds_p,
            }
        )
    return _verdicts(pd.DataFrame(rows), level)


def group_gap(
    frame: pd.DataFrame,
    model: str,
    by: str | list[str] | None = "age_band",
    groups: tuple[str, str, str] = ("gender_name", "female", "male"),
    column: str = "error",
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> pd.DataFrame:
    """Gap between two groups of faces (``groups``: the column, then a and b; women − men by default) in a per-face
    mean (the bias by default) within each seed of one model, per group of ``by``: a seed's offset cancels in it.

    The interval draws each side's faces apart and the seeds once for both (``stats.group_gap_interval``), widened
    for the number of groups (Bonferroni); with two seeds or more the per-seed gaps are tested against zero (a
    one-sample t-test, Holm over the groups). "differs" needs both, as in ``paired_compare``, whose columns it shares.
    A group with no faces on one side is left out and named (``attrs["empty"]``); a model the frame lacks gives an
    empty frame that names it (``attrs["missing"]``)."""
    (model,), missing = _resolve(frame, model)
    if missing:  # a profile without that model's runs
        out = pd.DataFrame()
        out.attrs["missing"] = missing
        return out
    name, a, b = groups
    parts = list(frame[frame.model == model].groupby(_as_list(by), observed=True)) if by else [((), frame)]
    parts = [(k if isinstance(k, tuple) else (k,), g[g.model == model]) for k, g in parts]
    sides = {k: [_by_seed(g[g[name] == side], column) for side in (a, b)] for k, g in parts}
    empty = [k for k, (wa, wb) in sides.items() if wa.empty or wb.empty]
    rows, testable = [], [k for k in sides if k not in empty]
    each = 1 - (1 - level) / max(len(testable), 1)  # Bonferroni over the groups that can be compared
    for i, key in enumerate(testable):
        wa, wb = sides[key]
        common = wa.index.intersection(wb.index)  # each seed's gap from that seed's own two sides
        ma, mb = wa.loc[common].to_numpy(), wb.loc[common].to_numpy()
        gaps = ma.mean(axis=1) - mb.mean(axis=1)  # one per seed
        lo, hi = group_gap_interval(ma, mb, n_boot, each, seed + i)
        rows.append(
            {
                **dict(zip(_as_list(by), key)),
                "faces": ma.shape[1] + mb.shape[1],
                "a": a,
                "b": b,
                "a mean": ma.mean(),
                "b mean": mb.mean(),
                "difference": float(gaps.mean()),
                "lo": lo,
                "hi": hi,
                "level": each,
                "groups": len(testable),
                "seeds": str(len(gaps)),
                "seeds p": zero_p(gaps),
            }
        )
    out = _verdicts(pd.DataFrame(rows), level) if rows else pd.DataFrame()
    out.attrs |= {"seed_test": "t-test", "empty": [", ".join(map(str, k)) for k in empty]}
    return out


def _by_seed(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """Seeds x faces of one column, indexed by seed (faces present in every seed only)."""
    return rows.pivot_table(index="seed", columns="file", values=column, aggfunc="mean", observed=True).dropna(axis=1)


def _resolve(frame: pd.DataFrame, *names: str) -> tuple[list[str], list[str]]:
    """Each model name as the frame holds it (under its superseded mark while only its superseded runs are there),
    and the names it lacks."""
    models = set(frame.model.astype(str))
    found = [m + SUPERSEDED if m not in models and m + SUPERSEDED in models else m for m in names]
    return found, [m for m in found if m not in models]


def _verdicts(out: pd.DataFrame, level: float) -> pd.DataFrame:
    """Holm over the groups' seed p values, then each group's verdict: the faces' interval and the seeds' test."""
    tested = out["seeds p"].notna()
    out.loc[tested, "seeds p"] = holm(out.loc[tested, "seeds p"]) if tested.any() else []
    apart = (out.lo > 0) | (out.hi < 0)
    out["verdict"] = np.where(
        ~apart,
        "not significant",
        np.where(
            ~tested,
            "differs on these faces (one seed: another training run untested)",
            np.where(
                out["seeds p"] < 1 - level,
                "differs",
                f"differs on these faces; not shown across the seeds (seeds' p ≥ {1 - level:.2g})",
            ),
        ),
    )
    return out
