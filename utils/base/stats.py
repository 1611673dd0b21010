"""Statistics that fit a handful of seeds: mean ± std as the tables show it, Welch's t-test between two groups of
runs and its power, the prediction interval (and its test) for one new run against a few, bootstrap intervals, and a
sentence that says "significant" only when the test does. (n = 3 seeds per side: "exceeds
twice its standard error" is not a test.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

ALPHA = 0.05
N_BOOT = 1000  # bootstrap resamplings


@dataclass(frozen=True)
class Welch:
    """Welch's unequal-variance t-test of mean(a) - mean(b), with its 95 % confidence interval."""

    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    diff: float
    t: float
    df: float
    p: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """p below ``ALPHA`` (two-sided)."""
        return bool(self.p < ALPHA)


def mean_std(values, digits: int = 4, scale: float = 1.0, unit: str = "") -> str:
    """'mean ± std' (sample std) of a few runs' figures, each multiplied by ``scale`` and followed by ``unit`` (e.g.
    ``AGE_SCALE, " y"`` for a normalised age MAE in years); a single run shows its value and no spread, none '–'."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return "–"
    spread = f" ± {v.std(ddof=1) * scale:.{digits}f}" if len(v) > 1 else ""
    return f"{v.mean() * scale:.{digits}f}{spread}{unit}"


def welch(a, b, level: float = 0.95) -> Welch:
    """Welch's t-test (scipy's ``ttest_ind(equal_var=False)``) and the Welch-Satterthwaite interval of the difference.

    Needs at least two values on each side and some spread; raises ValueError otherwise.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's test needs at least 2 values per group, got {len(a)} and {len(b)}")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        raise ValueError("Welch's test needs some spread: every value is the same")
    res = _st.ttest_ind(a, b, equal_var=False)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    diff = float(a.mean() - b.mean())
    half = float(_st.t.ppf(0.5 + level / 2, df) * np.sqrt(va + vb))
    return Welch(
        float(a.mean()),
        float(b.mean()),
        len(a),
        len(b),
        diff,
        float(res.statistic),
        float(df),
        float(res.pvalue),
        diff - half,
        diff + half,
    )


def t_df_p(a, b) -> tuple[float, float, float]:
    """(t, degrees of freedom, two-sided p) of ``welch``; with no spread at all, (±inf or 0, nan, 0 or 1)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    try:
        w = welch(a, b)
    except ValueError:
        if len(a) < 2 or len(b) < 2:
            raise
        differ = a.mean() != b.mean()
        return (np.inf if differ else 0.0), np.nan, (0.0 if differ else 1.0)
    return w.t, w.df, w.p


def prediction_interval(ref, level: float = 0.95) -> tuple[float, float]:
    """Where one new run of the reference would fall with probability ``level`` (t-based; needs ≥ 2 reference runs)."""
    ref = np.asarray(ref, float)
    n = len(ref)
    half = _st.t.ppf(0.5 + level / 2, n - 1) * ref.std(ddof=1) * np.sqrt(1 + 1 / n)
    return float(ref.mean() - half), float(ref.mean() + half)


@dataclass(frozen=True)
class OneRun:
    """One run read against another row's seeds: where one more of those seeds would land, and whether it is there."""

    value: float
    lo: float
    hi: float
    seeds: tuple[float, ...]

    @property
    def n(self) -> int:
        """How many seeds the interval rests on."""
        return len(self.seeds)

    @property
    def inside(self) -> bool:
        """True when the single run falls inside the interval: no difference can be claimed."""
        return self.lo <= self.value <= self.hi

    @property
    def p(self) -> float:
        """The same test as a two-sided p: under 1 − the level when outside; nan for the seeds' own value, unspread."""
        return single_run_p(self.value, self.seeds)


def one_run_against(value: float, seeds: Sequence[float], level: float = 0.95) -> OneRun:
    """One run against two or more seeds of another row, read by their prediction interval (claims, notes, lessons)."""
    if len(seeds) < 2:
        raise ValueError(f"one run needs at least 2 seeds of the other row to be read against, got {len(seeds)}")
    lo, hi = prediction_interval(seeds, level)
    return OneRun(float(value), lo, hi, tuple(float(v) for v in seeds))


def t_half_width(sd: float, n: int, level: float = 0.95) -> float:
    """Half the t-interval of a mean of ``n`` seeds with sample sd ``sd`` (t · sd / √n); nan below two seeds."""
    return float(_st.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n)) if n >= 2 and np.isfinite(sd) else float("nan")


def fitting_p(vals: Sequence[float], ref: Sequence[float]) -> float:
    """The p value of the test that fits n: one run against the reference's seeds (``single_run_p``), or Welch's test
    for two or more a side; nan where no test can be run (no run, under two reference seeds, a missing value, no
    spread on either side)."""
    vals, ref = np.asarray(vals, float), np.asarray(ref, float)
    if not len(vals) or len(ref) < 2 or not np.isfinite(np.r_[vals, ref]).all():
        return float("nan")
    if np.ptp(ref) == 0 and (len(vals) == 1 or np.ptp(vals) == 0):
        return float("nan")
    return single_run_p(vals[0], ref) if len(vals) == 1 else t_df_p(vals, ref)[2]


def single_run_p(value: float, ref) -> float:
    """Two-sided p of one new run against the reference's seeds (the test behind ``prediction_interval``):
    t = (x − m) / (s·√(1 + 1/n)), df = n − 1; nan below two reference runs."""
    ref = np.asarray(ref, float)
    if len(ref) < 2:
        return float("nan")
    gap, sd = value - ref.mean(), ref.std(ddof=1)
    if sd == 0:  # seeds that agree exactly: any other value is outside their (empty) interval, theirs is untestable
        return float("nan") if gap == 0 else 0.0
    return float(2 * _st.t.sf(abs(gap / (sd * np.sqrt(1 + 1 / len(ref)))), len(ref) - 1))


def welch_sentence(
    a_label: str,
    b_label: str,
    a,
    b,
    what: str,
    scale: float = 1.0,
    unit: str = "",
    digits: int = 4,
    diff_unit: str | None = None,
) -> str:
    """One line: the two means, their difference with its 95 % interval, Welch's t, df and p, and the verdict.

    ``scale`` multiplies the values shown (e.g. 116 for an age MAE in years); the test does not depend on it.
    ``diff_unit`` names the difference's unit where it is not the means' (a share in % differs in points).
    Where no test can be computed (fewer than 2 values on a side, or no spread at all) the line says so instead.
    """
    a, b = np.asarray(a, float) * scale, np.asarray(b, float) * scale
    f = f"{{:.{digits}f}}"
    du = unit if diff_unit is None else diff_unit
    try:
        w = welch(a, b)
    except ValueError as exc:
        means = " vs ".join(
            f"{label} {f.format(v.mean()) + unit if len(v) else 'no runs'}" for label, v in ((a_label, a), (b_label, b))
        )
        reason = str(exc).replace("Welch's test needs", "it needs")
        return f"{what}: {means} ({seeds_phrase(len(a), len(b))}); no test possible: {reason}."
    level = f"the {ALPHA * 100:g} % level"
    verdict = f"significant at {level}" if w.significant else f"not significant at {level}"
    return (
        f"{what}: {a_label} {f.format(w.mean_a)}{unit} vs {b_label} {f.format(w.mean_b)}{unit} "
        f"({seeds_phrase(w.n_a, w.n_b)}); "
        f"difference {f.format(w.diff)}{du}, 95 % CI {f.format(w.low)} to {f.format(w.high)}{du}; "
        f"Welch t = {w.t:.2f}, df = {w.df:.1f}, {p_text(w.p)}: {verdict}."
    )


def p_text(p: float, digits: int = 3) -> str:
    """'p = 0.019', or 'p < 0.001' where the rounded figure would read as zero."""
    floor = 10.0**-digits
    return f"p < {floor:.{digits}f}" if p < floor else f"p = {p:.{digits}f}"


def n_seeds(n: int) -> str:
    """'1 seed' or '3 seeds'."""
    return f"{n} seed{'' if n == 1 else 's'}"


def seeds_phrase(n_a: int, n_b: int) -> str:
    """How many runs stand on each side: 'n = 3 seeds each', 'n = 1 seed each' or 'n = 2 and 3 seeds'."""
    if n_a == n_b:
        return f"n = {n_seeds(n_a)} each"
    return f"n = {n_a} and {n_b} seeds"


def pooled_t_power(sd: float, n: int, difference: float, alpha: float = ALPHA) -> float:
    """Power of a two-sided pooled two-sample t-test (equal n and sd, df = 2n − 2) to detect `difference` (noncentral
    t, exact)."""
    df = 2 * n - 2
    nc = difference / (sd * np.sqrt(2 / n))
    crit = _st.t.ppf(1 - alpha / 2, df)
    return float(_st.nct.sf(crit, df, nc) + _st.nct.cdf(-crit, df, nc))


SIMULATED_UP_TO = 20
"""Up to this many seeds a side ``welch_power`` simulates Welch's test; above, its power is the pooled t-test's within
0.01 (checked by a test), so the exact formula serves."""


def welch_power(sd: float, n: int, difference: float, alpha: float = ALPHA, draws: int = 20_000) -> float:
    """Power of Welch's two-sided test, the one the course runs, with ``n`` seeds a side of spread ``sd`` to detect a
    true ``difference``: simulated with a fixed seed (± 0.004) up to ``SIMULATED_UP_TO`` seeds a side, the pooled
    t-test's exact power above; nan below 2 seeds or without a spread. At few seeds Welch's test estimates its degrees
    of freedom and has less power than the pooled test (n = 3, a gap of 2 sd: 0.37 against 0.46)."""
    if n < 2 or not sd > 0:  # too few seeds, or a spread unknown (nan) or nil: no power to speak of
        return float("nan")
    if n > SIMULATED_UP_TO:
        return pooled_t_power(sd, n, difference, alpha)
    x = np.random.default_rng(0).standard_normal((draws, 2, n)) * sd
    x[:, 0] += difference
    var = x.var(axis=2, ddof=1) / n  # each side's squared standard error
    se2 = var.sum(axis=1)
    t = (x[:, 0].mean(axis=1) - x[:, 1].mean(axis=1)) / np.sqrt(se2)
    df = se2**2 / ((var**2).sum(axis=1) / (n - 1))  # Welch–Satterthwaite, per draw
    return float((2 * _st.t.sf(np.abs(t), df) < alpha).mean())


def holm(pvalues) -> list[float]:
    """Holm-Bonferroni adjusted p values, in the order given: compare each with ``ALPHA`` to keep the family-wise error
    rate at ``ALPHA`` over all the tests (the k-th smallest p is multiplied by m - k + 1, made monotone, capped at
    1)."""
    p = np.asarray(pvalues, float)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def pooled_sd(*groups) -> float:
    """The pooled standard deviation of several groups of runs (each group's spread about its own mean, weighted by
    its degrees of freedom); a group of one run adds nothing, and NaN means no group has two."""
    arrays = [np.asarray(g, float) for g in groups]
    df = sum(len(a) - 1 for a in arrays if len(a) > 1)
    if df == 0:
        return float("nan")
    return float(np.sqrt(sum(((a - a.mean()) ** 2).sum() for a in arrays if len(a) > 1) / df))


def _seed_means(values: np.ndarray, faces: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means of a seeds x faces matrix for drawn faces (n_boot x faces indices, the same draw for every
    seed): then its seeds are resampled, when there are several."""
    return _drawn_seeds(np.stack([v[faces].mean(axis=1) for v in values]), rng)  # seeds x n_boot, then seeds drawn


def _drawn_seeds(per_seed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mean over seeds drawn with replacement, per bootstrap draw, of a seeds x n_boot matrix (one seed: its row)."""
    n_seeds, n_boot = per_seed.shape
    if n_seeds == 1:
        return per_seed[0]
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    return per_seed[seeds, np.arange(n_boot)[:, None]].mean(axis=1)


def _two_level(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means of a seeds x faces matrix: faces resampled (the same draw for every seed), then seeds."""
    return _seed_means(values, rng.integers(0, values.shape[1], size=(n_boot, values.shape[1])), rng)


def bootstrap_interval(
    values: np.ndarray, n_boot: int = N_BOOT, level: float = 1 - ALPHA, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a faces vector or a seeds x faces matrix."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    if values.shape[1] == 0:
        return np.nan, np.nan
    boot = _two_level(values, n_boot, np.random.default_rng(seed))
    a = (1 - level) / 2
    return float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a))


def paired_bootstrap_interval(
    a: np.ndarray, b: np.ndarray, n_boot: int = N_BOOT, level: float = 1 - ALPHA, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a) - mean(b), two seeds x faces matrices over the same faces (columns):
    one draw of faces for both (paired), then each one's seeds resampled apart."""
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, a.shape[1], size=(n_boot, a.shape[1]))
    diff = _seed_means(a, faces, rng) - _seed_means(b, faces, rng)
    lo, hi = np.quantile(diff, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def group_gap_interval(
    a: np.ndarray, b: np.ndarray, n_boot: int = N_BOOT, level: float = 1 - ALPHA, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a) - mean(b), two seeds x faces matrices of the same seeds (rows) over
    different faces: each side's faces drawn apart, then the seeds drawn once for both, so a seed's offset cancels."""
    rng = np.random.default_rng(seed)
    fa, fb = (rng.integers(0, m.shape[1], size=(n_boot, m.shape[1])) for m in (a, b))
    gaps = np.stack([va[fa].mean(axis=1) - vb[fb].mean(axis=1) for va, vb in zip(a, b)])  # seeds x n_boot
    lo, hi = np.quantile(_drawn_seeds(gaps, rng), [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def zero_p(values) -> float:
    """Two-sided p of a one-sample t-test of mean 0 (nan below two values; 0 or 1 when they do not vary)."""
    v = np.asarray(values, float)
    if len(v) < 2:
        return float("nan")
    if np.ptp(v) == 0:
        return 0.0 if v[0] != 0 else 1.0
    return float(_st.ttest_1samp(v, 0.0).pvalue)
