"""How noisy are UTKFace's labels? Byte-identical images filed under different ages or genders (notebook 08)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..data.scan import duplicate_files


def duplicate_age_gaps(files: pd.DataFrame) -> pd.DataFrame:
    """Per group of byte-identical images (``data.duplicate_files`` of the scan table ``files``, e.g.
    ``S.data.files``): its ages, age range and gender agreement."""
    rows = []
    for _, g in duplicate_files(files).groupby("hash", sort=False):
        ages = [int(a) for a in g.age]
        pairs = list(itertools.combinations(ages, 2))
        rows.append(
            {
                "copies": len(ages),
                "ages": ", ".join(map(str, ages)),
                "age range": max(ages) - min(ages),
                "mean pair gap": float(np.mean([abs(a - b) for a, b in pairs])) if pairs else 0.0,
                "mean squared pair gap": float(np.mean([(a - b) ** 2 for a, b in pairs])) if pairs else 0.0,
                "gender agrees": g.gender.nunique() == 1,
            }
        )
    return pd.DataFrame(
        rows, columns=["copies", "ages", "age range", "mean pair gap", "mean squared pair gap", "gender agrees"]
    )


def summary(gaps: pd.DataFrame) -> dict[str, float]:
    """What the duplicate groups say about age-label noise, and the MAE floor it would imply (Gaussian noise model),
    under plain names (``note`` words them)."""
    if len(gaps) == 0:
        return {"groups": 0}
    differ = gaps[gaps["age range"] > 0]
    sigma = float(np.sqrt(gaps["mean squared pair gap"].mean() / 2))  # two copies: E[(e1 − e2)²] = 2σ²
    return {
        "groups": int(len(gaps)),
        "ages_differ": int(len(differ)),
        "share_differ": float(len(differ) / len(gaps)),
        "mean_gap": float(gaps["mean pair gap"].mean()),
        "median_gap_where_differ": float(differ["mean pair gap"].median()) if len(differ) else 0.0,
        "largest_gap": int(gaps["age range"].max()),
        "gender_differs": int((~gaps["gender agrees"]).sum()),
        "noise_sd": sigma,
        "mae_floor": sigma * float(np.sqrt(2 / np.pi)),
        # E|e1 − e2| = 2σ/√π for Gaussian noise: an estimate far less swayed by a few gross errors
        "noise_sd_from_mean_gap": float(gaps["mean pair gap"].mean() * np.sqrt(np.pi) / 2),
        "mae_floor_from_mean_gap": float(gaps["mean pair gap"].mean() * np.sqrt(np.pi) / 2 * np.sqrt(2 / np.pi)),
    }


def note(summary: dict[str, float]) -> str:
    """The label-noise summary as plain sentences."""
    if not summary.get("groups"):
        return "No duplicate groups in this data set: nothing to measure label noise with."
    s = summary
    return (
        f"{s['groups']} groups of byte-identical images; in {s['ages_differ']} of them ({s['share_differ']:.0%}) the "
        f"copies carry different ages (largest gap {s['largest_gap']} years; "
        f"median gap {s['median_gap_where_differ']:.1f} y where they differ), "
        f"and in {s['gender_differs']} the gender differs. Averaged over all groups, two labels of the "
        f"same image differ by {s['mean_gap']:.2f} y. If each label were the true age plus one "
        f"independent Gaussian noise, the mean absolute gap would give that noise an sd of "
        f"{s['noise_sd_from_mean_gap']:.2f} y "
        f"(an MAE of {s['mae_floor_from_mean_gap']:.2f} y for error-free predictions), the mean squared gap an sd of "
        f"{s['noise_sd']:.2f} y (MAE {s['mae_floor']:.2f} y): the two disagree because a few gross gaps dominate the "
        "squares, so one Gaussian noise level does not fit these labels."
    )
