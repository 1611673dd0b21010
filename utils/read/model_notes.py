"""What notebook 09 (and appendix A2) say about the kept model, computed from its runs and checks: why it was
kept, its gender unit, whether its intervals cover, what the face detector costs, and how fast it answers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..base.labels import AGE_SCALE
from ..base.stats import ALPHA, mean_std, n_seeds, one_run_against, p_text, prediction_interval, t_df_p
from ..train.runs import Run

if TYPE_CHECKING:  # typing only
    from ..train.transfer import GenderChoice


def choice_note(age: pd.DataFrame | None, gender: pd.DataFrame | None, kept: str = "OR-CNN") -> str:
    """Which stored networks lead on validation, and whether the kept network (``kept``, a variant label) is the
    age leader."""
    if age is None or gender is None:
        return "no stored runs to choose from in this profile: the course's choice is taken from the laptop runs"
    col = age.columns[1]
    lines = [
        f"lowest validation age MAE: {age.network[0]}, {age[col][0]} y (n = {age.n[0]})",
        f"highest validation gender accuracy: {gender.network[0]}, {gender.iloc[0, 1]} (n = {gender.n[0]})",
    ]
    mine = age[age.network.str.startswith(kept + " ")]
    if mine.empty:
        lines.append(f"the kept network, {kept}, has no stored runs in this profile")
    elif mine.index[0] == 0:
        runner = f"; next: {age.network[1]}, {age[col][1]} y" if len(age) > 1 else ""
        values = age.attrs.get("values", {})
        a, b = (values.get(age.network[i], []) for i in (0, 1)) if len(age) > 1 else ([], [])
        if min(len(a), len(b)) >= 2:
            p = t_df_p(a, b)[2]
            runner += f" (Welch {p_text(p, 2)}" + (
                "; a pair picked after ranking, so that p is optimistic)"
                if p < ALPHA
                else ": not told apart at this n; the course keeps it, and validation does not contradict that)"
            )
        lines.append(f"the kept network, {kept}, has the best validation mean{runner}")
    else:
        lines.append(
            f"the kept network, {kept}, is not the validation leader here (it is #{mine.index[0] + 1}): "
            "keep the leader instead (experiments.use_model)"
        )
    return "\n".join(lines)


def kept_model_note(run: Run, path: Path) -> str:
    """What the kept model is, how it was trained, and its test figure."""
    size = f"{Path(path).stat().st_size / 1e6:.1f} MB" if Path(path).exists() else "not written"
    return (
        f"kept model {Path(path).name} ({size})\n"
        f"trained {run.epochs_run} epochs (best {run.best_epoch}), {run.wall_seconds / 60:.0f} min on "
        f"{run.hardware}; {run.data.get('kind', '?')} data, profile {run.profile.get('name', '?')}, "
        f"seed {run.seed} (n = 1)\n"
        f"test age MAE {run.metrics['age_mae_years']:.2f} y on {run.data.get('test', 0):,} faces"
    )


GENDER_NETWORKS = ("article network", "separate gender network")
"""The stored networks the gender unit is compared with (variant labels of experiments final and separate_gender)."""


def gender_unit_table(unit: dict, runs: list[Run], session: object) -> pd.DataFrame:
    """The gender unit (n = 1) beside the stored gender networks: validation and test accuracy, the article's figure."""
    runs = [r for r in runs if r.variant in GENDER_NETWORKS]
    from ..train.experiments import EXPERIMENTS
    from ..train.transfer import accuracy_at_kept_epoch

    article = {
        v.label: v.article["gender_accuracy"]
        for e in EXPERIMENTS.values()
        for v in e.variants
        if "gender_accuracy" in v.article
    }
    rows = [
        {
            "network": f"gender unit on the OR-CNN's frozen features ({unit['layer']})",
            "n": 1,
            "validation accuracy": f"{unit['val_accuracy']:.3f}",
            "test accuracy": f"{unit['test_accuracy']:.3f}",
            "reported in the article": "–",
        }
    ]
    for label in dict.fromkeys(r.variant for r in runs):
        group = [r for r in runs if r.variant == label]
        val = [v for r in group if (v := accuracy_at_kept_epoch(r)) is not None]
        test = [r.metrics["gender_accuracy"] for r in group]
        rows.append(
            {
                "network": label,
                "n": len(group),
                "validation accuracy": mean_std(val, 3),
                "test accuracy": mean_std(test, 3),
                "reported in the article": f"{article[label]:.3f}" if label in article else "–",
            }
        )
    table = pd.DataFrame(rows).set_index("network")
    print(f"{session.data.kind} data, profile {session.profile.name}; mean ± std over n seeds")
    return table


def gender_unit_note(unit: dict, reference: list[Run]) -> str:
    """The gender unit's test accuracy against the reference network's seeds (95 % prediction interval, as n = 1)."""
    from .verdicts import welch_verdict

    ref = [r.metrics["gender_accuracy"] for r in reference if r.variant == GENDER_NETWORKS[0]]
    if len(ref) < 2:
        return (
            f"gender unit: test accuracy {unit['test_accuracy']:.3f} (n = 1); "
            "fewer than 2 stored runs of the reference network here, so no test"
        )
    verdict = welch_verdict([unit["test_accuracy"]], ref, "gender_accuracy")
    tried = ", ".join(f"{k} ({c['features']} features) {c['val_accuracy']:.3f}" for k, c in unit["candidates"].items())
    return (
        f"validation accuracy of a unit by layer: {tried}; kept: {unit['layer']}\n"
        f"gender unit: test accuracy {unit['test_accuracy']:.3f} (n = 1) against the article network's "
        f"{mean_std(ref, 3)} (n = {len(ref)}): {verdict}. "
        f"Features and fits took {unit['seconds']:.0f} s."
    )


def gender_choice_note(choice: GenderChoice) -> str:
    """``transfer.choose_gender``'s choice: both candidates' validation accuracy and the one kept; then, once, their
    test accuracy with its number of faces, beside the article's two gender figures."""
    from ..train.experiments import EXPERIMENTS
    from ..train.transfer import NETWORK

    c = choice.candidates

    def shown(name: str) -> str:
        d = c[name]
        where = f" at its kept epoch {d['kept_epoch']} of {d['epochs_run']}" if "kept_epoch" in d else ""
        trained = f", trained on {d['hardware']}" if "hardware" in d else ""
        return f"{name} {d['val_accuracy']:.3f}{where} ({d['params']:,} weights{trained}, n = 1)"

    lines = [f"validation accuracy: {'; '.join(shown(k) for k in c)}"]
    if len(c) == 1:
        lines.append(f"no stored {NETWORK} with its model here: the gender unit answers gender")
    else:
        other = next(k for k in c if k != choice.winner)
        gap = 100 * (c[choice.winner]["val_accuracy"] - c[other]["val_accuracy"])
        cost = (
            "a second network and a second forward pass per face"
            if choice.winner == NETWORK
            else "no second network: one forward pass answers both"
        )
        lines.append(f"kept for gender, on validation alone: the {choice.winner} ({gap:+.1f} points; {cost})")
    article = {
        v.label: v.article["gender_accuracy"]
        for e in EXPERIMENTS.values()
        for v in e.variants
        if "gender_accuracy" in v.article
    }
    words = {"article network": "multi-output network"}
    reported = ", ".join(f"{article[k]:.3f} for its {words.get(k, k)}" for k in GENDER_NETWORKS if k in article)

    def tested(name: str) -> str:
        d = c[name]
        se = np.sqrt(d["test_accuracy"] * (1 - d["test_accuracy"]) / max(d["test_faces"], 1))
        return f"{name} {d['test_accuracy']:.3f} ± {se:.3f} on {d['test_faces']:,} faces"

    lines.append(
        f"test accuracy, which played no part in the choice (one seed each; ± one binomial standard error over faces): "
        f"{'; '.join(tested(k) for k in c)}"
    )
    if reported:
        lines.append(f"reported in the article (apparently one run each, 128 px, its own split): {reported}")
    return "\n".join(lines)


def seeds_beside_choice(seeds: list[Run], choice: GenderChoice) -> str:
    """The separate gender network's stored seeds (mean; from two seeds, where one more would land) beside
    ``transfer.choose_gender``'s candidates, on validation and on test."""
    from ..train.transfer import accuracy_at_kept_epoch

    lines = []
    for split, key, acc in (
        ("validation", "val_accuracy", [accuracy_at_kept_epoch(r) for r in seeds]),
        ("test", "test_accuracy", [r.metrics.get("gender_accuracy") for r in seeds]),
    ):
        acc = [a for a in acc if a is not None]  # a seed without that curve or figure is left out, not read as 0
        if not acc:
            lines.append(f"{split}: no stored seed of notebook 05's separate gender network to set beside the choice.")
            continue
        band = ""
        if len(acc) > 1:
            lo, hi = prediction_interval(np.array(acc))
            band = f" (95 % prediction interval for one more seed: {lo:.3f}–{hi:.3f})"
        candidates = "; ".join(f"{k} {c[key]:.3f}" for k, c in choice.candidates.items())
        lines.append(
            f"{split}: notebook 05's separate gender network {np.mean(acc):.3f} over {n_seeds(len(acc))}{band}; "
            + candidates
        )
    return "\n".join(lines)


def coverage_note(coverage: dict, kind: str) -> str:
    """How often the interval held the true age on the test split, against what the model claimed, and its width."""
    n = coverage["faces"]
    line = f"{kind} data, {n:,} test faces, direct path: age MAE {coverage['age_mae_years']:.2f} y"
    if "coverage" not in coverage:
        return line + "; the model's age head is not ordinal, so it gives no interval"
    claimed, seen = coverage["claimed"], coverage["coverage"]
    far = abs(seen - claimed) > 2 * np.sqrt(claimed * (1 - claimed) / n)  # about a 95 % binomial band around the claim
    verdict = (
        "as often as the model claimed (within two binomial standard errors)"
        if not far
        else "more often than claimed: the distribution is under-confident"
        if seen > claimed
        else "less often than claimed: the distribution is over-confident"
    )
    gender = f"; gender accuracy {coverage['gender_accuracy']:.3f}" if "gender_accuracy" in coverage else ""
    if "gender_changed_side" in coverage:
        moved = coverage["gender_changed_side"]
        gender += (
            f" (its run's record: {coverage['stored_gender_accuracy']:.3f}; the served model puts {moved} of the "
            f"{n:,} faces on the other side of 0.5"
            + (f", each within {coverage['changed_farthest']:.4f} of 0.5 in the record)" if moved else ")")
        )
    return (
        line + gender + f"\nthe {coverage['nominal']:.0%} interval (median width {coverage['median_width']:.0f} years, "
        f"in which the model put {claimed:.1%} of its probability on average) held the true age for {seen:.1%} of the "
        f"faces: {verdict}"
    )


def article_verdict(run: Run, seeds: Sequence[Run] = ()) -> str:
    """The kept age network's test MAE beside the article's like-for-like figure (its separate age network), and beside
    ``seeds``, the stored runs of the same configuration (its own seed spread), with why the two are figures, not a
    test."""
    from ..train.experiments import get

    raw = get("separate_age").article("separate age network")["age_mae"]  # normalised; × AGE_SCALE, as notebook 01
    article = raw * AGE_SCALE
    ours = run.metrics["age_mae_years"]
    word = "lower" if ours < article else "higher"
    name = run.variant.split(": ")[-1] if run.variant else "network"
    same = [r.metrics["age_mae_years"] for r in seeds if r.config == run.config and "age_mae_years" in r.metrics]
    kinds = "/".join(sorted({r.precision or "?" for r in seeds if r.config == run.config}))
    spread = ""
    if len(same) > 1:
        pi = one_run_against(article, same)
        spread = (
            f" The same configuration's stored seeds score {mean_std(same, 2)} y (n = {len(same)}, {kinds}; the kept "
            f"run {run.precision or '?'}): the article's figure lies {'inside' if pi.inside else 'outside'} where one "
            f"more of those seeds would land, {pi.lo:.2f}–{pi.hi:.2f} y (95 % prediction interval)."
        )
    return (
        f"kept {name}: test age MAE {ours:.2f} y ({run.data.get('kind', '?')} data, profile "
        f"{run.profile.get('name', '?')}, {run.data.get('image_size', '?')} px, n = 1), "
        f"{abs(ours - article):.2f} y {word} than "
        f"the {article:.2f} y of the article's separate (age-only) network (it reports {raw:.4f}, normalised; "
        f"× {AGE_SCALE:g} as in notebook 01), the like-for-like figure "
        "(one run, 128 px, its own split). One run each, on different splits and image sizes: a comparison of "
        f"figures, not a test.{spread}"
    )


def _change(r: pd.Series, key: str, scale: float, digits: int) -> str:
    """A change with its interval, ``+x [lo, hi]``, from the columns key, key_lo and key_hi times ``scale``."""
    value, lo, hi = (scale * r[key + end] for end in ("", "_lo", "_hi"))
    return f"{value:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def detector_table(summary: pd.DataFrame) -> pd.DataFrame:
    """``checks.detector_summary`` for a reader: shares in per cent, errors in years, each change with its interval."""

    def change(r: pd.Series, key: str, scale: float, digits: int) -> str:
        return "" if pd.isna(r.get(key)) else _change(r, key, scale, digits)

    rows = []
    for _, r in summary.iterrows():
        row = {
            "padding": f"{r['pad']:.0%} of the side",
            "faces": int(r["faces"]),
            "detected": f"{r['detected']:.1%}",
            "several boxes": int(r["several_boxes"]),
        }
        if not pd.isna(r.get("change")):
            row.update(
                {
                    "MAE direct (y)": round(r["mae_direct"], 2),
                    "MAE detector (y)": round(r["mae_detector"], 2),
                    "change (y)": change(r, "change", 1, 2),
                }
            )
        if not pd.isna(r.get("gender_change")):
            row.update(
                {
                    "gender acc. direct": round(r["gender_direct"], 3),
                    "gender acc. detector": round(r["gender_detector"], 3),
                    "gender change (pp)": change(r, "gender_change", 100, 1),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def detector_note(summary: pd.DataFrame) -> str:
    """One line per padding (``checks.detector_summary``): how often the detector found the face and what the MAE
    and gender accuracy did where it did."""
    lines = []
    for _, r in summary.iterrows():
        pad = f"{r['pad']:.0%} of the side"
        if pd.isna(r.get("change")):
            lines.append(f"padding {pad}: the detector found no face in {int(r['faces'])} faces")
            continue
        gender = (
            f"; gender accuracy {r['gender_direct']:.3f} direct and {r['gender_detector']:.3f} through the detector "
            f"(change {_change(r, 'gender_change', 100, 1)} percentage points)"
            if not pd.isna(r.get("gender_change"))
            else ""
        )
        lines.append(
            f"padding {pad}: face found in {r['detected']:.1%} of {int(r['faces'])} faces; on those, "
            f"MAE {r['mae_direct']:.2f} y direct and {r['mae_detector']:.2f} y through the detector "
            f"(change {_change(r, 'change', 1, 2)} y){gender}; "
            "95 % bootstrap intervals over faces"
        )
    return "\n".join(lines)


def speed_note(speed: dict, cli: dict, device: str) -> str:
    """Photos per second through detect + predict, and the command line's start-up."""
    return (
        f"{device}: one {speed['photo_px']} photo with {speed['faces']} face{'' if speed['faces'] == 1 else 's'} "
        f"takes {speed['seconds_per_photo']:.2f} s "
        f"({speed['photos_per_second']} photos/s), of which the detector {speed['of_which_detection']:.2f} s\n"
        f"command line: --help in {cli['help_s']:.1f} s; one photo, start to answer, {cli['photo_s']:.1f} s "
        "(importing TensorFlow, loading the model and one unwarmed call: not timed apart)"
    )
