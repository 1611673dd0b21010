"""utils.base.stats: Welch's test against scipy and a hand computation, and the sentence's verdict."""

import numpy as np
import pytest
from scipy import stats as st

from utils.base import stats


def test_welch_matches_scipy_and_the_issue_figures():
    # notebook 04's stored test losses (with / without augmentation): the issue quotes t = 2.08, df ~ 2.3, p ~ 0.16
    a, b = [0.31012, 0.31871, 0.26655], [0.27238, 0.26101, 0.25714]
    w = stats.welch(a, b)
    ref = st.ttest_ind(a, b, equal_var=False)
    assert w.t == pytest.approx(ref.statistic) and w.p == pytest.approx(ref.pvalue)
    assert w.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert w.df == pytest.approx(ref.df) and (w.low, w.high) == pytest.approx(tuple(ref.confidence_interval()))
    assert w.low < w.diff < w.high and (w.low < 0 < w.high) == (not w.significant)
    assert (
        w.t == pytest.approx(2.08, abs=0.01)
        and 2 < w.df < 2.5
        and w.p == pytest.approx(0.16, abs=0.01)
        and not w.significant
    )


def test_welch_interval_is_the_textbook_one():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 4.0, 6.0])
    va, vb = a.var(ddof=1) / 4, b.var(ddof=1) / 3
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    w = stats.welch(a, b)
    assert w.df == pytest.approx(df)
    assert w.high - w.diff == pytest.approx(st.t.ppf(0.975, df) * np.sqrt(va + vb))


def test_clear_difference_is_significant_and_the_sentence_says_so():
    line = stats.welch_sentence("x", "y", [1.0, 1.1, 0.9], [2.0, 2.1, 1.9], "metric", scale=10, unit=" y", digits=1)
    assert "x 10.0 y vs y 20.0 y" in line and ": significant" in line
    assert "not significant" in stats.welch_sentence("x", "y", [1, 2, 3], [1.5, 2.5, 2.0], "m")


def test_welch_sentence_says_how_many_seeds_in_plain_words():
    assert "(n = 3 seeds each); difference" in stats.welch_sentence("x", "y", [1, 2, 3], [1.5, 2.5, 2.0], "m")
    assert "(n = 2 and 3 seeds); difference" in stats.welch_sentence("x", "y", [1, 2], [1.5, 2.5, 2.0], "m")
    assert "(n = 1 seed each); no test possible" in stats.welch_sentence("x", "y", [1.0], [2.0], "m")


def test_welch_refuses_what_it_cannot_test():
    with pytest.raises(ValueError):
        stats.welch([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        stats.welch([1.0, 1.0], [1.0, 1.0])


def test_lessons_notes_say_when_one_seed_allows_no_test():
    from utils.nets.models import ARTICLE
    from utils.read import lessons
    from utils.train.runs import Run

    runs = [
        Run(ARTICLE, 0, metrics={"loss": 0.3, "age_mae": 0.1, "gender_accuracy": 0.9}, variant=v) for v in ("a", "b")
    ]
    assert "no test possible" in lessons.welch_note(runs, "a", "b")


def test_holm_adjusts_in_the_given_order():
    from utils.base.stats import holm

    adjusted = holm([0.009, 0.031, 0.029, 0.056])
    assert np.allclose(adjusted, [0.036, 0.087, 0.087, 0.087])
    assert holm([0.5, 0.6]) == [1.0, 1.0] or np.allclose(holm([0.5, 0.6]), [1.0, 1.0])
    assert holm([]) == []
    assert np.allclose(holm([0.01]), [0.01])


@pytest.mark.parametrize(
    "a, b, reason",
    [
        ([0.3, 0.3, 0.3], [0.3, 0.3, 0.3], "no test possible: it needs some spread"),
        ([0.3], [0.2, 0.25], "no test possible: it needs at least 2 values per group"),
        ([], [0.2, 0.25], "no runs"),
    ],
)
def test_a_test_that_cannot_be_computed_says_so(a, b, reason):
    from utils.base.stats import welch_sentence

    line = welch_sentence("with", "without", a, b, "loss")
    assert reason in line and line.startswith("loss: with ")


def test_pooled_sd_weights_groups_by_their_degrees_of_freedom():
    from utils.base.stats import pooled_sd

    assert pooled_sd([1.0, 3.0], [5.0, 7.0]) == pytest.approx(np.sqrt(2.0))  # each group's sd is sqrt(2)
    assert pooled_sd([1.0, 3.0], [10.0]) == pytest.approx(np.sqrt(2.0))  # a single run adds no spread
    assert pooled_sd([1.0, 2.0, 3.0], [0.0, 4.0]) == pytest.approx(np.sqrt((2.0 + 8.0) / 3))
    assert np.isnan(pooled_sd([1.0], [2.0]))


def test_paired_bootstrap_draws_the_same_faces_for_both_sides():
    rng = np.random.default_rng(0)
    b = rng.gamma(2, 4, (1, 300))
    a = b + rng.normal(1.0, 0.5, (1, 300))
    lo, hi = stats.paired_bootstrap_interval(a, b, seed=3)
    # one seed each: the paired interval is the interval of the per-face differences on the same draw of faces
    assert (lo, hi) == pytest.approx(stats.bootstrap_interval(a - b, seed=3))
    assert lo < 1.0 < hi and hi - lo < 0.2  # far narrower than the faces' own spread: the pairing cancels it
    assert stats.paired_bootstrap_interval(b, b, seed=3) == (0.0, 0.0)


def test_zero_p_is_a_one_sample_t_test_and_says_what_it_cannot_test():
    assert stats.zero_p([1.0, 2.5, 3.0]) == pytest.approx(st.ttest_1samp([1.0, 2.5, 3.0], 0).pvalue)
    assert stats.zero_p([2.0, 2.0]) == 0.0 and stats.zero_p([0.0, 0.0]) == 1.0  # no spread: certain either way
    assert np.isnan(stats.zero_p([1.0]))  # one seed: nothing to test


def test_welch_power_is_welchs_own_and_meets_the_pooled_t_where_it_switches():
    from utils.base.stats import SIMULATED_UP_TO, pooled_t_power, welch_power

    assert abs(welch_power(1.0, 3, 2.0) - 0.37) < 0.01  # Welch at 3 seeds a side, a gap of 2 sd
    assert pooled_t_power(1.0, 3, 2.0) - welch_power(1.0, 3, 2.0) > 0.07  # the pooled test overstates it there
    for d in (0.5, 1.0, 1.5):  # at the switch the two tests agree, so the power does not jump
        n = SIMULATED_UP_TO
        assert abs(welch_power(1.0, n, d) - pooled_t_power(1.0, n, d)) < 0.01
        assert welch_power(1.0, n + 1, d) == pooled_t_power(1.0, n + 1, d)
    assert 0.03 < welch_power(1.0, 10, 0.0) < 0.06  # no true gap: false alarms at about the 5 % level
    assert welch_power(2.0, 5, 1.0) < welch_power(1.0, 5, 1.0) < welch_power(1.0, 8, 1.0)
    assert np.isnan(welch_power(0.0, 3, 1.0)) and np.isnan(welch_power(float("nan"), 3, 1.0))
    assert np.isnan(welch_power(1.0, 1, 1.0))
