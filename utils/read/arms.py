"""The 64 px decomposition: how much of the gap between the laptop rule and the article's setting each one-change arm
closes (notebook 02's question, appendix A1's measurements).

Each arm is the laptop rule with one thing changed (``utils.base.profiles``: precise BatchNorm statistics, patience 10
with a cap of 60, a learning rate halved on plateaus). It is judged on validation (the kept epoch's loss and age MAE,
Welch's test against the laptop rule's seeds, only runs of the same precision) and reported on test once, as the share
of the laptop-to-128 px gap in test age MAE it closes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..base.labels import AGE_SCALE
from ..base.profiles import PROFILES
from ..base.stats import ALPHA, holm, mean_std, p_text, welch
from ..train.experiments import get
from ..train.runner import collect_from
from ..train.runs import Run
from ..train.store import stored_folder

REFERENCE, TARGET = "laptop", "full"
"""The rule every arm changes one thing of, and the article's setting (128 px, cap 90) that closes the gap."""
ARMS = ("laptop-precise-bn", "laptop-long", "laptop-plateau")
"""The one-change arms, in the queue's order (stage d)."""
CHANGES = {
    REFERENCE: "none: the reference (64 px, patience 4, at least 9 epochs, cap 30)",
    "laptop-precise-bn": "BatchNorm statistics re-measured before each validation",
    "laptop-long": "patience 10, cap 60",
    "laptop-plateau": "learning rate halved after 2 epochs on a plateau",
    TARGET: "the article's setting: 128 px, cap 90 (patience 10 is ours)",
}
"""What each profile changes, in a few words (``utils.base.profiles`` has the full rules)."""
VARIANT = "article network"
"""The network every arm trains: the article's final network, without augmentation (experiment 'final')."""


def stored_arms(kind: str = "real") -> dict[str, list[Run]]:
    """The article network's stored runs under the laptop rule, each arm and the full profile, read by profile name."""
    out = {}
    for name in (REFERENCE, *ARMS, TARGET):
        folder = stored_folder(name, kind)
        out[name] = [r for r in collect_from("final", folder) if r.variant == VARIANT] if folder else []
    return out


def kept(run: Run, key: str) -> float:
    """A validation figure at the epoch early stopping kept (``best_epoch``)."""
    return float(run.history[key][run.best_epoch - 1])


def same_precision(runs: dict[str, list[Run]]) -> dict[str, list[Run]]:
    """Every profile's runs in the laptop rule's precision (the most common one among its runs), so that an arm is
    compared with its reference in the same arithmetic."""
    ref = [r.precision for r in runs.get(REFERENCE, [])]
    if not ref:
        return runs
    policy = max(set(ref), key=ref.count)
    return {name: [r for r in rs if r.precision == policy] for name, rs in runs.items()}


def _p(a: list[float], b: list[float]) -> float:
    try:
        return welch(a, b).p
    except ValueError:  # fewer than two runs on a side: no test
        return float("nan")


def decomposition_table(runs: dict[str, list[Run]]) -> pd.DataFrame:
    """One row per profile: what it changes, n, the kept epoch's validation loss and age MAE (Welch p against the
    laptop rule), then the test age MAE and the share of the laptop-to-128 px gap it closes."""
    runs = same_precision(runs)
    ref = runs.get(REFERENCE, [])
    ref_val = [kept(r, "val_loss") for r in ref]
    ref_mae = [kept(r, "val_age_mae_years") for r in ref]
    test = {name: [r.metrics["age_mae_years"] for r in rs] for name, rs in runs.items()}
    gap = np.mean(test[REFERENCE]) - np.mean(test[TARGET]) if test.get(REFERENCE) and test.get(TARGET) else np.nan
    rows = []
    for name, rs in runs.items():
        val = [kept(r, "val_loss") for r in rs]
        mae = [kept(r, "val_age_mae_years") for r in rs]
        closes = (np.mean(test[REFERENCE]) - np.mean(test[name])) / gap if rs and test.get(REFERENCE) else np.nan
        rows.append(
            {
                "profile": name,
                "what changes": CHANGES.get(name, PROFILES[name].description),
                "n": len(rs),
                "epochs run": round(float(np.mean([r.epochs_run for r in rs])), 1) if rs else np.nan,
                "val loss (kept epoch)": mean_std(val) if rs else "–",
                "val age MAE (y)": mean_std(mae, 2) if rs else "–",
                "p val loss": np.nan if name == REFERENCE else round(_p(val, ref_val), 3),
                "p val age MAE": np.nan if name == REFERENCE else round(_p(mae, ref_mae), 3),
                "test age MAE (y)": mean_std(test[name], 2) if rs else "–",
                "gap closed": "–" if name in (REFERENCE, TARGET) or np.isnan(closes) else f"{closes:.0%}",
                "data": ", ".join(sorted({r.data.get("kind", "?") for r in rs})) or "–",
            }
        )
    article = get("final").variants[0].article.get("age_mae")  # its network without augmentation, one run, 128 px
    if article is not None:
        rows.append({"profile": "the article (reported, 1 run)", "what changes": "its own run at 128 px", "n": 1})
        rows[-1].update({"test age MAE (y)": f"{article * AGE_SCALE:.2f}", "data": "real"})
    return pd.DataFrame(rows).fillna(
        {c: "–" for c in ("epochs run", "val loss (kept epoch)", "val age MAE (y)", "gap closed")}
    )


def decomposition_note(runs: dict[str, list[Run]]) -> str:
    """The table read in sentences: the gap, then each arm on validation (with its test) and on test (its share)."""
    runs = same_precision(runs)
    ref, target = runs.get(REFERENCE, []), runs.get(TARGET, [])
    if len(ref) < 2:
        return f"Fewer than two stored runs of the laptop rule ({len(ref)}): nothing to compare the arms with yet."
    ref_test = float(np.mean([r.metrics["age_mae_years"] for r in ref]))
    lines = []
    if target:
        full = float(np.mean([r.metrics["age_mae_years"] for r in target]))
        lines.append(
            f"The gap: the laptop rule's test age MAE is {ref_test:.2f} y (n = {len(ref)}), the article's setting "
            f"(128 px, cap 90; patience 10 is ours) {full:.2f} y (n = {len(target)}): "
            f"{round(ref_test, 2) - round(full, 2):.2f} y."
        )
    tests = []  # every arm's two validation tests, for the correction over all of them
    for name in ARMS:
        rs = runs.get(name, [])
        if not rs:
            lines.append(f"{name}: no stored run yet.")
            continue
        val = [kept(r, "val_age_mae_years") for r in rs]
        ref_val = [kept(r, "val_age_mae_years") for r in ref]
        p = _p(val, ref_val)
        tests += [p, _p([kept(r, "val_loss") for r in rs], [kept(r, "val_loss") for r in ref])]
        test = float(np.mean([r.metrics["age_mae_years"] for r in rs]))
        judged = (
            f"Welch {p_text(p)}: {'significant' if p < ALPHA else 'not significant'} at the {ALPHA * 100:g} % level"
            if not np.isnan(p)
            else "one run: no test"
        )
        share = f", {(ref_test - test) / (ref_test - full):.0%} of the gap" if target and ref_test != full else ""
        better = "better" if test < ref_test else "worse"
        lines.append(
            f"{name} ({CHANGES[name]}; n = {len(rs)}): validation age MAE {np.mean(val):.2f} y against "
            f"{np.mean(ref_val):.2f} y ({judged}); on test {test:.2f} y, {better} than the laptop rule by "
            f"{abs(ref_test - test):.2f} y{share}."
        )
    lines.append(_holm_line([p for p in tests if not np.isnan(p)]))
    return "\n".join(lines)


def _holm_line(pvalues: list[float]) -> str:
    """The arms' validation tests taken together: Holm's correction over all of them (``stats.holm``)."""
    if not pvalues:
        return "No arm has two runs yet: no test."
    adjusted = holm(pvalues)
    hits = sum(p < ALPHA for p in adjusted)
    return (
        f"All {len(pvalues)} validation tests of the table together (each arm's loss and age MAE), Holm-corrected: "
        f"smallest adjusted {p_text(min(adjusted))}; {hits or 'none'} significant at the {ALPHA * 100:g} % level."
    )
