"""The architecture search read as a whole (notebook 03): one row per variant against the article network with the
test that fits its n (a prediction interval for one seed, Welch's t-test for more) and a Bonferroni column, the chance
of a false "significant" among so many tests, and how far the article network's own seeds spread."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..base.stats import ALPHA, fitting_p, p_text
from ..nets.models import ARTICLE
from ..train.runs import values


def search_summary(results: dict, exps: dict | None = None) -> pd.DataFrame:
    """One row per variant of the search against the article network: the article's loss (when ``exps`` gives the
    experiments), ours, the test that fits n (prediction interval for one seed, Welch for more) with its p-value, and
    whether it survives a Bonferroni correction over all the variants tested."""
    rows = []
    for name, runs in results.items():
        ref = next((r.variant for r in runs if r.config == ARTICLE), None)
        ref_vals = values(runs, "loss", ref) if ref else []
        article = {v.label: v.article.get("loss") for v in exps[name].variants} if exps and name in exps else {}
        for v in dict.fromkeys(r.variant for r in runs):
            if v == ref:
                continue
            vals = values(runs, "loss", v)
            rows.append(
                {
                    "table": name,
                    "variant": v,
                    "article": article.get(v),
                    "article's network (article)": article.get(ref),
                    "seeds": len(vals),
                    "ours": round(float(np.mean(vals)), 4),
                    "ours sd": _sd(vals),
                    "article network (ours)": round(float(np.mean(ref_vals)), 4) if ref_vals else None,
                    "article network sd": _sd(ref_vals),
                    "p": fitting_p(vals, ref_vals),
                    "profile": runs[0].profile.get("name", "?"),
                    "data": runs[0].data.get("kind", "?"),
                }
            )
    table = pd.DataFrame(rows)
    if len(table):
        if not exps:
            table = table.drop(columns=["article", "article's network (article)"])
        table["p"] = table.p.round(4)
        table[f"significant ({ALPHA * 100:g} %)"] = table.p < ALPHA
        k = max(int(table.p.notna().sum()), 1)  # the variants tested: a row without a p value was not
        table[f"after Bonferroni ({ALPHA * 100:g} % / {k})"] = table.p < ALPHA / k
    return table


def _sd(vals: list[float]) -> float | None:
    """The seeds' sample sd, rounded as the means are; None for a single run."""
    return round(float(np.std(vals, ddof=1)), 4) if len(vals) > 1 else None


def multiple_tests_note(summary: pd.DataFrame) -> str:
    """The chance of at least one false 'significant' among the search's tests,
    and which results survive a correction."""
    k = int(summary.p.notna().sum()) if len(summary) else 0
    if k == 0:
        return (
            "No variant can be tested yet: each test needs at least 2 stored seeds of the article network, and a "
            "spread on one side at least."
        )
    untested = f" ({len(summary) - k} more without a test: no p value)" if k < len(summary) else ""
    sig, bonf = summary[summary.p < ALPHA], summary[summary.p < ALPHA / k]
    level = f"{ALPHA * 100:g} %"
    return (
        f"{k} variants{untested}, each tested at {level}: if none differed from the article network, the chance of at "
        f"least one false 'significant' would be up to 1 − {1 - ALPHA:g}^{k} = {1 - (1 - ALPHA) ** k:.0%} (the "
        "figure for independent tests; these share the article network's seeds, which makes them correlated and the "
        "chance lower). "
        f"Significant at {level}: "
        + (", ".join(f"'{r.variant}' ({p_text(r.p, 4)})" for r in sig.itertuples()) or "none")
        + f". Still significant after Bonferroni (p < {ALPHA / k:.4f}): "
        + (", ".join(f"'{r.variant}'" for r in bonf.itertuples()) or "none")
        + "."
    )


def reference_spread_note(results: dict) -> str:
    """The article network's seeds: best epoch against test loss, and the seed-to-seed sd of its test loss."""
    runs = next(iter(results.values()), [])
    ref = [r for r in runs if r.config == ARTICLE]
    if len(ref) < 2:
        return "The article network has fewer than 2 stored seeds."
    losses = np.array([r.metrics["loss"] for r in ref])
    pairs = ", ".join(
        f"seed {r.seed}: best epoch {r.best_epoch} → {r.metrics['loss']:.4f}"
        for r in sorted(ref, key=lambda r: r.best_epoch)
    )
    return (
        f"The article network, one setting, {len(ref)} seeds ({pairs}): test loss sd {losses.std(ddof=1):.4f} "
        f"from seed alone, range {losses.max() - losses.min():.4f}."
    )
