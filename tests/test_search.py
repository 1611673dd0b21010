"""The architecture search read as a whole (utils.read.search_notes): the test each n allows, and the correction."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from utils.nets.models import ARTICLE
from utils.read import search_notes as search
from utils.train.runs import Run


def _run(config, seed, loss, variant, best_epoch=10):
    return Run(config, seed, data={"kind": "real"}, variant=variant, metrics={"loss": loss}, best_epoch=best_epoch)


REF = [0.26, 0.27, 0.28]
RUNS = (
    [_run(ARTICLE, s, x, "article network", best_epoch=9 + s) for s, x in enumerate(REF)]
    + [_run(ARTICLE.with_(dropout=0.4), 0, 0.40, "dropout 0.4")]
    + [_run(ARTICLE.with_(dropout=0.5), s, x, "dropout 0.5") for s, x in enumerate([0.265, 0.275, 0.285])]
)


def test_each_variant_gets_the_test_its_n_allows_and_bonferroni_counts_them_all():
    rows = search.search_summary({"dropout": RUNS}).set_index("variant")
    assert list(rows.index) == ["dropout 0.4", "dropout 0.5"] and list(rows.seeds) == [1, 3]
    assert pd.isna(rows.loc["dropout 0.4", "ours sd"]) and rows.loc["dropout 0.5", "ours sd"] == pytest.approx(0.01)
    assert rows["article network sd"].tolist() == [0.01, 0.01] and set(rows.data) == {"real"}
    ref = np.array(REF)
    t = (0.40 - ref.mean()) / (ref.std(ddof=1) * np.sqrt(1 + 1 / 3))  # one new run against the reference's seeds
    assert rows.loc["dropout 0.4", "p"] == pytest.approx(round(2 * stats.t.sf(abs(t), 2), 4))
    welch = stats.ttest_ind([0.265, 0.275, 0.285], REF, equal_var=False).pvalue
    assert rows.loc["dropout 0.5", "p"] == pytest.approx(round(welch, 4))
    bonferroni = "after Bonferroni (5 % / 2)"
    assert rows.loc["dropout 0.4", bonferroni] and not rows.loc["dropout 0.5", bonferroni]
    assert rows.loc["dropout 0.5", "significant (5 %)"] == (welch < 0.05)


def test_the_notes_count_the_tests_and_the_reference_seeds():
    note = search.multiple_tests_note(search.search_summary({"dropout": RUNS}))
    assert "2 variants" in note and "1 − 0.95^2 = 10%" in note and "'dropout 0.4'" in note
    spread = search.reference_spread_note({"dropout": RUNS})
    assert "3 seeds" in spread and "sd 0.0100" in spread and "seed 0: best epoch 9 → 0.2600" in spread
    assert search.multiple_tests_note(search.search_summary({})).startswith("No variant can be tested yet")


def test_a_variant_without_a_test_is_not_counted_among_the_tests():
    one_ref = [r for r in RUNS if r.variant != "article network" or r.seed == 0]  # the smoke case: one seed each
    rows = search.search_summary({"dropout": one_ref})
    assert rows.p.isna().all() and not rows.filter(like="significant").any().any()
    assert search.multiple_tests_note(rows).startswith("No variant can be tested yet")
    more = RUNS + [_run(ARTICLE.with_(dropout=0.7), 0, 0.3, "dropout 0.7")]
    rows = search.search_summary({"dropout": more, "bn": [_run(ARTICLE.with_(dropout=0.3), 0, 0.3, "only")]})
    assert rows.p.notna().sum() == 3 and "after Bonferroni (5 % / 3)" in rows  # 'only' has no reference seeds
    assert "3 variants (1 more without a test: no p value)" in search.multiple_tests_note(rows)
