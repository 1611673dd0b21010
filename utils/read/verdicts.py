"""One variant against a reference in a few words, by the test that fits the number of seeds: Welch's t-test with two
or more seeds a side, the reference's 95 % prediction interval for a single run; and a family of such comparisons,
each significant one checked again after Holm's correction over the family (``notes``, ``model_notes``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..base.stats import ALPHA, fitting_p, holm, one_run_against, p_text, t_df_p
from .tables import LOWER_IS_BETTER


def welch_verdict(vals: Sequence[float], ref: Sequence[float], metric: str) -> str:
    """A short verdict on one variant against a reference: a test that fits the number of seeds, or why none is
    possible (too few seeds, a missing value, no spread on either side)."""
    vals, ref = list(vals), list(ref)
    if not vals or len(ref) < 2:
        return "too few seeds for a test"
    if not np.all(np.isfinite(vals + ref)):
        return "a value is missing (NaN): untested"
    if np.isnan(fitting_p(vals, ref)):
        return "no spread on either side: untested"
    better = (np.mean(vals) < np.mean(ref)) == (metric in LOWER_IS_BETTER)
    word = "better" if better else "worse"
    if len(vals) == 1:
        if one_run_against(vals[0], ref).inside:
            return "inside the prediction interval: not significant"
        return f"outside the prediction interval: significantly {word}"
    t, df, p = t_df_p(vals, ref)
    verdict = f"significantly {word}" if p < ALPHA else "not significant"
    return f"Welch t = {t:.2f}, df ≈ {df:.1f}, {p_text(p, 2)}: {verdict}"


def welch_verdicts(pairs: Sequence[tuple[Sequence[float], Sequence[float]]], metric: str) -> list[str]:
    """``welch_verdict`` for each (variant, reference) pair of one family of comparisons; where two or more were
    tested, each significant one also says its Holm-adjusted p over the family, and whether it survives it."""
    verdicts = [welch_verdict(vals, ref, metric) for vals, ref in pairs]
    ps = [fitting_p(vals, ref) for vals, ref in pairs]
    tested = [i for i, p in enumerate(ps) if np.isfinite(p)]
    if len(tested) < 2:
        return verdicts
    adjusted = dict(zip(tested, holm([ps[i] for i in tested])))
    for i in tested:
        if ps[i] < ALPHA:
            after = p_text(adjusted[i], 3)
            verdicts[i] += f" (Holm over {len(tested)} tests: {after}" + (
                ")" if adjusted[i] < ALPHA else ", not significant)"
            )
    return verdicts
