"""Does the article hold? Each of its claims, the article's figures (its own 128 px runs, apparently one each, except
the ordinal ones it quotes from the CORAL paper), ours per profile with n, the test that fits n, and a verdict that
says only what that test shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..base.labels import AGE_SCALE
from ..base.stats import ALPHA, holm, mean_std, one_run_against, p_text, welch
from ..train.runs import SUPERSEDED, Run, resolve, values
from .tables import LOWER_IS_BETTER, in_years, readable_name

if TYPE_CHECKING:  # typing only
    from ..train.experiments import Experiment


@dataclass(frozen=True)
class Claim:
    """One sentence of the article: on ``metric``, row ``better`` beats row ``worse`` of table ``experiment``."""

    text: str
    experiment: str
    better: str
    worse: str
    metric: str
    source: str = ""  # where the article's figures come from, when not from its own runs


CORAL_PAPER = (
    "the article's figures are quoted from the CORAL paper (its own protocol), not the article's runs; they come "
    "without a unit: the years beside them read them as ages / 116, a guess"
)
CLAIMS: tuple[Claim, ...] = (
    Claim(
        "4 conv layers 128-64-32-32 beat 3 layers 128-64-32",
        "conv_stack",
        "4 CL 128 64 32 32",
        "3 CL 128 64 32",
        "loss",
    ),
    Claim("BatchNorm before ReLU beats ReLU before BatchNorm", "bn_order", "BN -> ReLU", "ReLU -> BN", "loss"),
    Claim("a linear age output beats a ReLU on it", "age_relu", "linear age output", "ReLU on age output", "loss"),
    Claim("a dense layer of 512 beats 1024", "dense", "dense 512", "dense 1024", "loss"),
    Claim("dropout 0.6 beats 0.5", "dropout", "dropout 0.6", "dropout 0.5", "loss"),
    Claim("Adam beats RMSprop", "optimizer", "Adam", "RMSprop", "loss"),
    Claim(
        "augmentation (with early stopping) lowers the test loss",
        "augmentation",
        "with augmentation",
        "without augmentation",
        "loss",
    ),
    Claim(
        "a separate age network has a lower age MAE than the multi-output one",
        "separate_age",
        "separate age network",
        "multi-output (augmented)",
        "age_mae",
    ),
    Claim(
        "the multi-output network is more accurate on gender than a separate one",
        "separate_gender",
        "multi-output (augmented)",
        "separate gender network",
        "gender_accuracy",
    ),
    Claim("CORAL has a lower age MAE than OR-CNN", "ordinal", "CORAL-CNN", "OR-CNN", "age_mae", CORAL_PAPER),
    Claim("OR-CNN has a lower age MAE than CE-CNN", "ordinal", "OR-CNN", "CE-CNN", "age_mae", CORAL_PAPER),
)


def _shown(metric: str, vals: list[float]) -> str:
    """An age MAE in years with 2 decimals, any other figure as it is with 4."""
    return mean_std(vals, 2, AGE_SCALE, " y") if metric == "age_mae" else mean_std(vals, 4)


@dataclass(frozen=True)
class Verdict:
    """One claim judged on one set of runs: ours (better vs worse with n), the test, what it shows, and its p."""

    ours: str
    test: str
    verdict: str
    p: float = np.nan  # the test's two-sided p; nan where no test ran

    @property
    def called(self) -> bool:
        """True when the test, on its own, says 'holds' or 'reversed'."""
        return self.verdict in ("holds", "reversed")


def judge(claim: Claim, runs: list[Run]) -> Verdict:
    """One claim on one set of runs: Welch's t-test for n ≥ 2 a side, else one run against the other's interval."""
    good, bad = resolve(runs, claim.better), resolve(runs, claim.worse)
    a, b = values(runs, claim.metric, good), values(runs, claim.metric, bad)
    ours = f"{_shown(claim.metric, a)} vs {_shown(claim.metric, b)} (n = {len(a)}, {len(b)})"
    if not a or not b:
        return Verdict(ours, "–", "not run yet")
    lower = claim.metric in LOWER_IS_BETTER
    same_way = (np.mean(a) < np.mean(b)) == lower
    if max(len(a), len(b)) < 2:
        return Verdict(ours, "none (n = 1 each)", f"{'same' if same_way else 'opposite'} direction, untested")
    if min(len(a), len(b)) < 2:  # one run against the other row's seeds: where would one more seed of that row land?
        one, many = (a, b) if len(a) == 1 else (b, a)
        read = one_run_against(one[0], many)
        test = f"95 % prediction interval of the {read.n}-seed row"
        if read.inside:
            return Verdict(ours, test, "not resolved: the single run is inside the interval", read.p)
        return Verdict(ours, test, "holds" if same_way else "reversed", read.p)
    try:
        w = welch(a, b)
    except ValueError:
        return Verdict(ours, "none (no spread)", "untested")
    test = f"Welch {p_text(w.p)}"
    if w.p >= ALPHA:
        return Verdict(ours, test, "not resolved: no significant difference at this n", w.p)
    return Verdict(ours, test, "holds" if same_way else "reversed", w.p)


def holm_note(runs_by_profile: dict[str, dict[str, list[Run]]]) -> str:
    """Per profile: which verdicts 'holds' or 'reversed' survive Holm's correction over that profile's tested claims."""
    lines = []
    for label, by_name in runs_by_profile.items():
        judged = [(c, judge(c, by_name.get(c.experiment, []))) for c in CLAIMS]
        tested = [(c, v) for c, v in judged if np.isfinite(v.p)]
        if not tested:
            continue
        adjusted = holm([v.p for _, v in tested])
        called = [(c, v.verdict, q) for (c, v), q in zip(tested, adjusted) if v.called]
        kept = [f"'{c.text}' ({verdict}, Holm-adjusted {p_text(q)})" for c, verdict, q in called if q < ALPHA]
        lost = [f"'{c.text}' ({verdict}, Holm-adjusted {p_text(q)})" for c, verdict, q in called if q >= ALPHA]
        head = f"{label}: {len(tested)} claims tested"
        if not called:
            lines.append(
                f"{head}; none is called 'holds' or 'reversed' even on its own, so no correction can change it."
            )
            continue
        stand = f"{len(kept)} of them {'stands' if len(kept) == 1 else 'stand'}"
        lines.append(
            f"{head}, {len(called)} called 'holds' or 'reversed' on its own test; after Holm's correction over the "
            f"{len(tested)} tests, {stand}"
            + (f": {'; '.join(kept)}" if kept else "")
            + (f". Not after it: {'; '.join(lost)}" if lost else "")
            + "."
        )
    return "\n".join(lines) or "No profile has a tested claim yet."


def claims_table(
    runs_by_profile: dict[str, dict[str, list[Run]]],
    experiments: dict[str, Experiment],
    caveats: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One row per claim and profile: the claim, the article's two figures, ours, the test, the verdict, a caveat.

    ``runs_by_profile``: profile label (e.g. 'laptop, 64 px, real') -> experiment name -> its stored runs.
    """
    rows = []
    for claim in CLAIMS:
        art = experiments[claim.experiment].article
        fa, fb = art(claim.better).get(claim.metric), art(claim.worse).get(claim.metric)
        article = (
            f"{in_years(claim.metric, fa)} vs {in_years(claim.metric, fb)}"
            if fa is not None and fb is not None
            else "–"
        )
        for label, by_name in runs_by_profile.items():
            judged = judge(claim, by_name.get(claim.experiment, []))
            shared = any(
                r.variant.endswith(SUPERSEDED)
                for r in by_name.get(claim.experiment, [])
                if r.variant
                in (resolve(by_name[claim.experiment], claim.better), resolve(by_name[claim.experiment], claim.worse))
            )
            caveat = "; ".join(
                filter(
                    None,
                    [
                        (caveats or {}).get(label, ""),
                        "augmented rows from the superseded shared-draw runs" if shared else "",
                        claim.source,
                    ],
                )
            )
            rows.append(
                {
                    "claim (the article)": claim.text,
                    "metric": readable_name(claim.metric),
                    "article (reported)": article,
                    "ours": judged.ours,
                    "profile": label,
                    "test": judged.test,
                    "verdict": judged.verdict,
                    "caveat": caveat or "–",
                }
            )
    columns = [
        "claim (the article)",
        "metric",
        "article (reported)",
        "ours",
        "profile",
        "test",
        "verdict",
        "caveat",
    ]
    return pd.DataFrame(rows, columns=columns)  # the columns even when no profile has runs (synthetic data)
