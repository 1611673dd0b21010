"""The 64 px decomposition (utils.read.arms): arms judged on validation against the laptop rule in the same precision,
and the share of the laptop-to-128 px gap each closes on test."""

from __future__ import annotations

import numpy as np
import pytest

from utils.nets.models import ARTICLE
from utils.read import arms
from utils.train.runs import Run


def _run(profile: str, seed: int, val_mae: float, test_mae: float, precision: str = "mixed_bfloat16") -> Run:
    return Run(
        ARTICLE,
        seed,
        profile={"name": profile},
        data={"kind": "real"},
        variant=arms.VARIANT,
        precision=precision,
        epochs_run=3,
        best_epoch=2,
        history={"val_loss": [0.5, val_mae / 40, 0.6], "val_age_mae_years": [20.0, val_mae, 30.0]},
        metrics={"age_mae_years": test_mae},
    )


def _runs(**by_profile) -> dict[str, list[Run]]:
    return {
        name.replace("_", "-"): [_run(name.replace("_", "-"), s, v, t) for s, (v, t) in enumerate(pairs)]
        for name, pairs in by_profile.items()
    }


def test_an_arm_is_judged_on_the_kept_epoch_and_credited_with_its_share_of_the_gap():
    runs = _runs(
        laptop=[(10.0, 11.0), (10.4, 11.2), (10.2, 10.8)],  # test mean 11.0
        laptop_long=[(8.9, 9.6), (9.1, 9.4)],  # test mean 9.5: 1.5 of the 3.0 y gap
        full=[(7.9, 8.1), (8.1, 7.9)],  # test mean 8.0
    )
    table = arms.decomposition_table(runs).set_index("profile")
    assert table.loc["laptop-long", "n"] == 2 and table.loc["laptop-long", "gap closed"] == "50%"
    assert table.loc["laptop-long", "val age MAE (y)"] == "9.00 ± 0.14"  # the kept epoch (2), not the last or the best
    assert table.loc["laptop-long", "p val age MAE"] < 0.05
    assert np.isnan(table.loc["laptop", "p val loss"]) and table.loc["full", "gap closed"] == "–"
    note = arms.decomposition_note(runs)
    assert "11.00 y (n = 3)" in note and "8.00 y (n = 2): 3.00 y." in note
    assert "better than the laptop rule by 1.50 y, 50% of the gap" in note and "significant at the 5 % level" in note
    assert "laptop-plateau: no stored run yet." in note
    # one arm, two validation tests: Holm doubles the smaller p, so the age MAE's p < 0.05 need not survive
    val_p = [table.loc["laptop-long", "p val age MAE"], table.loc["laptop-long", "p val loss"]]
    assert "All 2 validation tests of the table together" in note
    assert f"smallest adjusted p = {min(1.0, 2 * min(val_p)):.3f}" in note


def test_one_run_gets_no_test_and_another_precision_is_left_out():
    runs = _runs(laptop=[(10.0, 11.0), (10.4, 11.2)], laptop_precise_bn=[(10.1, 11.5)], full=[(8.0, 8.0)])
    runs["laptop-precise-bn"].append(_run("laptop-precise-bn", 1, 2.0, 2.0, precision="float32"))
    note = arms.decomposition_note(runs)
    assert "(n = 1)" in note.replace("; n = 1)", " (n = 1)") and "one run: no test" in note
    assert "worse than the laptop rule by 0.40 y" in note  # the float32 run (2.0 y) would have made it better
    assert note.endswith("No arm has two runs yet: no test.")
    table = arms.decomposition_table(runs).set_index("profile")
    assert table.loc["laptop-precise-bn", "n"] == 1 and np.isnan(table.loc["laptop-precise-bn", "p val loss"])


def test_without_two_reference_runs_nothing_is_compared():
    assert "nothing to compare" in arms.decomposition_note(_runs(laptop=[(10.0, 11.0)], laptop_long=[(9.0, 9.0)]))


@pytest.mark.parametrize("name", arms.ARMS)
def test_every_arm_is_a_profile_with_a_plain_description(name):
    from utils.base.profiles import PROFILES

    assert name in PROFILES and PROFILES[name].image_size == PROFILES[arms.REFERENCE].image_size
    assert name in arms.CHANGES


def test_the_table_says_its_data_and_sets_the_articles_own_figure_last():
    table = arms.decomposition_table(_runs(laptop=[(10.0, 11.0), (10.4, 11.2)], full=[(8.0, 8.0)]))
    assert list(table.data) == ["real", "real", "real"]  # laptop, full, the article
    last = table.iloc[-1]
    assert last.profile == "the article (reported, 1 run)" and last["test age MAE (y)"] == "7.89" and last.n == 1
