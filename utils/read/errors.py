"""Who the model gets wrong: error analysis and fairness figures and sentences (notebooks 07 and 08).

Everything here reads the tidy predictions frame (``tidy``: one row per run and test face) or the group tables
``tidy.group_errors`` makes from it, and returns DataFrames, figures or sentences. Intervals are ``tidy``'s two-level
bootstrap intervals (faces, and seeds when there are several). The figures are ``error_plots``'.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..base.labels import BANDS, MAX_AGE, MIN_AGE
from ..base.stats import N_BOOT, bootstrap_interval, n_seeds, p_text, t_half_width
from .tidy import LEVEL, seeds_by_faces, summarise, with_groups


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
    """How a difference of `difference` years in overall MAE compares with each model's uncertainty: half its 95 %
    bootstrap interval, or the seeds' t-interval (t · sd / √n) where that is wider (a bootstrap over three seeds
    understates their spread)."""
    lines, widths = [], []
    for _, r in overall.iterrows():
        half, sd, n = (r["MAE hi"] - r["MAE lo"]) / 2, r["MAE seed sd"], int(r.seeds)
        t_half = t_half_width(sd, n, LEVEL)
        spread = f"seed-to-seed sd {sd:.2f} y" if np.isfinite(sd) else "one seed, so no seed spread"
        seeds = f"; the seeds' t-interval ± {t_half:.2f} y" if np.isfinite(t_half) else ""
        widths.append(float(np.nanmax([half, t_half])))
        verdict = "smaller" if difference < widths[-1] else "larger"
        lines.append(
            f"{r.model}: MAE {r.MAE:.2f} y ± {half:.2f} y (half the 95 % bootstrap interval{seeds}; {spread}, "
            f"{n_seeds(n)}) — a {difference} y difference is {verdict} than "
            + ("the wider of the two." if np.isfinite(t_half) else "that uncertainty.")
        )
    if len(widths) >= 2:
        h1, h2 = np.sort(widths)[:2]
        both = float(np.hypot(h1, h2))
        lines.append(
            f"A difference between two models is uncertain by about √(h₁² + h₂²): {both:.2f} y even for the two "
            f"most precise models here (h = {h1:.2f} and {h2:.2f} y, the wider of each, taken as independent) — a "
            f"{difference} y difference is {'smaller' if difference < both else 'larger'} than that. "
            "`tidy.paired_compare` tests a difference paired on the same faces, and across the seeds."
        )
    return "\n".join(lines)


def _ci(row: pd.Series, name: str, unit: str = " y", digits: int = 1) -> str:
    return f"{row[name]:.{digits}f}{unit} (95 % CI {row[f'{name} lo']:.{digits}f}–{row[f'{name} hi']:.{digits}f})"


def _extremes(table: pd.DataFrame, model: str, stat: str, min_faces: int) -> tuple[pd.Series, pd.Series, bool] | None:
    """(worst, best, intervals apart) among one model's groups with ``min_faces``+ faces; None below two groups."""
    t = table[(table.model == model) & (table.faces >= min_faces)].dropna(subset=[stat])
    if len(t) < 2:
        return None
    higher_is_worse = stat != "accuracy"
    worst, best = (t.loc[t[stat].idxmax()], t.loc[t[stat].idxmin()])
    if not higher_is_worse:
        worst, best = best, worst
    apart = worst[f"{stat} lo"] > best[f"{stat} hi"] if higher_is_worse else worst[f"{stat} hi"] < best[f"{stat} lo"]
    return worst, best, bool(apart)


def extremes_note(table: pd.DataFrame, model: str, column: str, stat: str = "MAE", min_faces: int = 20) -> str:
    """A sentence naming the groups of one column where a model does worst and best, and whether that is real."""
    found = _extremes(table, model, stat, min_faces)
    if found is None:
        return f"{model}: fewer than two groups of {column} with {min_faces}+ test faces."
    worst, best, apart = found
    unit, digits = ("", 3) if stat == "accuracy" else (" y", 1)
    verdict = (
        "the intervals do not overlap (but worst and best were picked after looking, so read it as a hint, not a test)"
        if apart
        else "the intervals overlap: not shown to differ (test the gap itself to know more)"
    )
    label = column.removesuffix("_name")
    return (
        f"{model}, {stat} by {label}: worst for {worst[column]} {_ci(worst, stat, unit, digits)}, {worst.faces} faces; "
        f"best for {best[column]} {_ci(best, stat, unit, digits)}, {best.faces} faces — {verdict}."
    )


def _group_cell(r: pd.Series, column: str, stat: str, digits: int) -> str:
    lo, hi = r[f"{stat} lo"], r[f"{stat} hi"]
    return f"{r[column]}: {r[stat]:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f}), {r.faces} faces"


def _models(frame: pd.DataFrame) -> list:
    """The frame's models in their table order (the categories' order, else first appearance)."""
    return list(frame.model.cat.categories if hasattr(frame.model, "cat") else frame.model.unique())


def extremes_table(tables: dict[str, pd.DataFrame], stat: str = "MAE", min_faces: int = 20) -> pd.DataFrame:
    """``extremes_note`` as a table: per model and grouping column (the keys of ``tables``, each a
    ``tidy.group_errors`` frame), the worst and best group with ``min_faces``+ faces, their ``stat`` with its 95 %
    interval and faces, and whether the two intervals overlap."""
    digits = 3 if stat == "accuracy" else 1
    rows = []
    for column, table in tables.items():
        for model in _models(table):
            found = _extremes(table, model, stat, min_faces)
            if found is None:
                continue
            worst, best, apart = found
            rows.append(
                {
                    "model": model,
                    "by": column.removesuffix("_name"),
                    f"worst {stat} (95 % CI)": _group_cell(worst, column, stat, digits),
                    f"best {stat} (95 % CI)": _group_cell(best, column, stat, digits),
                    "intervals": "apart" if apart else "overlap",
                }
            )
    return pd.DataFrame(rows)


SEED_TESTS = {"Welch": "Welch across the runs' means", "t-test": "a t-test of the per-seed gaps against zero"}
"""The seeds' tests ``paired_note`` reads, by the short name each line prints."""


def paired_note(result: pd.DataFrame, label: str = "MAE", unit: str = " y") -> str:
    """One sentence per row of ``tidy.paired_compare`` or ``tidy.group_gap``: the difference, its interval (widened
    for the number of groups), the seeds' p (adjusted for them) and the verdict; then what "differs" needed."""
    empty = result.attrs.get("empty") and f"No faces on one side in {'; '.join(result.attrs['empty'])}: left out."
    if result.empty:
        missing = " and ".join(result.attrs.get("missing", [])) or "a model"
        return empty or f"nothing to compare: {missing} has no stored runs in this profile (TRAIN = True trains them)"
    test = result.attrs.get("seed_test", "Welch")  # tidy.group_gap tests the seeds' own gaps
    lines, own = [], ("faces", "a", "b", "a mean", "b mean", "difference", "lo", "hi", "level", "groups", "verdict")
    many = len(result) > 1
    for _, r in result.iterrows():
        where = ", ".join(str(r[c]) for c in result.columns if c not in own + ("seeds", "seeds p"))
        seeds = f"seeds {r.seeds}: " + (
            f"{test} {p_text(r['seeds p'], 2)}{' (Holm)' if many else ''}" if np.isfinite(r["seeds p"]) else "no test"
        )
        lines.append(
            f"{label} {r.a} − {r.b}{' (' + where + ')' if where else ''}: {r.difference:+.2f}{unit} "
            f"({r.level * 100:.3g} % CI {r.lo:+.2f} to {r.hi:+.2f}, {r.faces} faces; "
            f"{seeds}) — {r.verdict}."
        )
    level = 100 * (1 - (1 - float(result["level"].iloc[0])) * len(result))
    widened = f"each interval is widened for the {len(result)} groups (Bonferroni)" if many else ""
    if not result["seeds p"].notna().any():  # one seed on a side: no test across seeds was possible
        lines.append(
            "One seed on a side: only the faces are resampled, so 'differs on these faces' says nothing about another "
            "training run" + (f"; {widened}." if many else ".")
        )
    else:
        lines.append(
            f"'differs' needs both the faces (the interval excludes zero) and the seeds ({SEED_TESTS[test]})"
            + (
                f"; {widened} and each p adjusted (Holm), so it holds for all of them together at {level:.3g} %."
                if many
                else "."
            )
        )
    return "\n".join(lines + [empty] if empty else lines)


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
    """Per model: slope and intercept of predicted on true age (mean over seeds; the slope's seed-to-seed sd and n
    beside it) and the age where the mean line crosses the diagonal (from the mean slope and intercept: a seed with a
    slope near 1 must not blow up an average of ratios)."""
    rows = []
    for (model, seed), g in frame.groupby(["model", "seed"], observed=True):
        slope, intercept = np.polyfit(g.age_true, g.age_pred, 1)
        rows.append({"model": model, "seed": seed, "slope": slope, "intercept": intercept})
    out = pd.DataFrame(rows)
    out["model"] = pd.Categorical(out.model, categories=list(dict.fromkeys(frame.model.astype(str))), ordered=True)
    by = out.groupby("model", observed=True)
    mean = by[["slope", "intercept"]].mean()
    mean.insert(1, "slope sd", by.slope.std())  # NaN for one seed: no spread to show
    mean.insert(2, "seeds", by.size())
    mean["crossing age"] = np.where(mean.slope < 1, mean.intercept / (1 - mean.slope), np.nan)
    return mean.round(2)


def _age_range(frame: pd.DataFrame, model: str, lo: int, hi: int) -> dict:
    g = frame[frame.model == model]
    kids = g[(g.age_true >= lo) & (g.age_true <= hi)]
    per_seed = kids.groupby("seed").agg(MAE=("abs_error", "mean"), bias=("error", "mean"))
    return {
        "faces": kids.file.nunique(),
        "per_seed": per_seed,
        "ci_mae": bootstrap_interval(seeds_by_faces(kids, "abs_error")),
        "ci_bias": bootstrap_interval(seeds_by_faces(kids, "error")),
        "negative": g.groupby("seed").age_pred.apply(lambda x: int((x < 0).sum())).tolist(),
        "test_faces": int(g.groupby("seed").size().iloc[0]),
    }


def age_range_table(frame: pd.DataFrame, lo: int = BANDS[1][0], hi: int = BANDS[1][1]) -> pd.DataFrame:
    """Per model, one row each: the error on true ages lo–hi (default: the 3–9 band) (MAE and bias, mean over seeds
    with a 95 % interval over seeds and faces; MAE per seed) and the test faces predicted below 0 years, per seed."""
    rows = []
    for model in _models(frame):
        r = _age_range(frame, model, lo, hi)
        per_seed, (m_lo, m_hi), (b_lo, b_hi) = r["per_seed"], r["ci_mae"], r["ci_bias"]
        rows.append(
            {
                "model": model,
                f"faces aged {lo}–{hi}": r["faces"],
                "seeds": len(per_seed),
                "MAE (y, 95 % CI)": f"{per_seed.MAE.mean():.1f} ({m_lo:.1f}–{m_hi:.1f})",
                "MAE per seed (y)": ", ".join(f"{v:.1f}" for v in per_seed.MAE),
                "bias (y, 95 % CI)": f"{per_seed.bias.mean():+.1f} ({b_lo:+.1f} to {b_hi:+.1f})",
                f"below 0 y, per seed (of {r['test_faces']:,})": ", ".join(str(v) for v in r["negative"]),
            }
        )
    return pd.DataFrame(rows)


def error_curve(frame: pd.DataFrame, width: int = 5, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """MAE, bias and mean prediction per model against true age in bins of `width` years, with intervals."""
    binned = frame.assign(age_bin=(frame.age_true // width) * width + width / 2)
    table = summarise(
        binned, ["age_bin"], {"MAE": "abs_error", "bias": "error", "predicted": "age_pred"}, n_boot, LEVEL, seed
    )
    table.attrs["width"] = width
    return table


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


def band_note(by_band: pd.DataFrame, model: str, bands: list[str]) -> str:
    """A model's MAE in the given age bands, with intervals, in one line."""
    t = by_band[by_band.model == model].set_index("age_band")
    return f"{model}, MAE by age band: " + "; ".join(f"{b} {_ci(t.loc[b], 'MAE')}" for b in bands if b in t.index) + "."
