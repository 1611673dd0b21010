"""Run All in a profile whose store lacks some rows (the class profile, or `full` on a GPU, with TRAIN = "auto"): the
readers say what is missing instead of failing. Each case here once stopped a notebook (05, 06, 07, 09, A2)."""

import dataclasses

import pandas as pd
import pytest

from utils.base.profiles import PROFILES
from utils.nets.models import ARTICLE
from utils.read import errors, lessons, plots, tidy
from utils.train import runner
from utils.train.runs import Run
from utils.train.store import ResultsStore


def _or_cnn(seed: int) -> Run:
    metrics = {"age_mae": 0.09 + seed / 1000, "age_mae_years": 10.0 + seed, "rank_consistency": 0.0}
    return Run(ARTICLE, seed, variant="OR-CNN", metrics=metrics)


def test_ordinal_note_without_the_reference_head_says_so():
    note = lessons.ordinal_note([_or_cnn(s) for s in range(3)])  # 'MSE regression' is not stored
    assert "MSE regression, the reference, has no stored run in this profile" in note and "Welch" not in note


def test_paired_compare_with_a_model_the_frame_lacks_names_it():
    frame = pd.DataFrame(
        {"model": "OR-CNN", "seed": 0, "file": ["a", "b"], "abs_error": [1.0, 2.0], "age_band": ["0–2", "3–9"]}
    )
    result = tidy.paired_compare(frame, "OR-CNN", "separate age network", by="age_band")
    assert result.empty and result.attrs["missing"] == ["separate age network"]
    assert errors.paired_note(result).startswith("nothing to compare: separate age network has no stored runs")


def test_plot_history_of_no_runs_says_so(capsys):
    assert plots.plot_history([], keys=("mae_years",), by_variant=True) is None
    assert "nothing to plot" in capsys.readouterr().out


def test_kept_model_not_stored_in_this_profile_says_what_to_do(tmp_path, small_data):
    store = ResultsStore(tmp_path, writable=False)
    full = dataclasses.replace(PROFILES["full"], image_size=small_data.size)
    with pytest.raises(FileNotFoundError, match=r"no kept model of 'use_model' \(seed 0\) is stored in profile 'full'"):
        runner.kept_model("use_model", full, small_data, 0, store=store)


def test_ordinal_note_tests_best_against_runner_up_only_when_the_reference_is_not_one_of_them():
    def head(variant: str, maes: list[float]) -> list[Run]:
        return [
            Run(ARTICLE, s, variant=variant, metrics={"age_mae": m / 116, "age_mae_years": m, "rank_consistency": 1.0})
            for s, m in enumerate(maes)
        ]

    heads = head("A", [6.0, 6.2, 6.1]) + head("B", [7.0, 7.3, 7.1]) + head("MSE regression", [9.0, 9.5, 9.2])
    assert "best vs runner-up, A vs B" in lessons.ordinal_note(heads)
    close = head("A", [6.0, 6.2, 6.1]) + head("MSE regression", [6.5, 6.6, 6.4]) + head("B", [9.0, 9.5, 9.2])
    note = lessons.ordinal_note(close)  # the runner-up is the reference: its test is already the line before
    assert "A vs MSE regression" in note and "best vs runner-up" not in note
