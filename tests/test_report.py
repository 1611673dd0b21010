import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from utils.base import stats as S
from utils.base.profiles import PROFILES
from utils.nets.models import ARTICLE
from utils.read import face_plots as F
from utils.read import notes as N
from utils.read import plots as P
from utils.read import tables as T
from utils.train.experiments import EXPERIMENTS, get
from utils.train.runs import Run, frame


def run(variant, seed, loss, mae):
    return Run(
        ARTICLE,
        seed,
        data={"kind": "real"},
        variant=variant,
        metrics={"loss": loss, "age_mae": mae, "age_mae_years": mae * 116, "gender_accuracy": 0.9},
    )


def test_every_article_figure_belongs_to_a_table_variant():
    figures = {(e.name, v.label, m): x for e in EXPERIMENTS.values() for v in e.variants for m, x in v.article.items()}
    assert figures[("dropout", "dropout 0.6", "loss")] == pytest.approx(0.2472)
    assert len(figures) == 43  # every figure of the article's tables (data/article_figures.csv had 43 rows)
    for e in EXPERIMENTS.values():
        for v in e.variants:
            assert set(v.article) <= set(e.metrics), (e.name, v.label)  # each figure shows up in its table


def test_tidy_frame_has_one_row_per_run_and_metric():
    df = frame([run("a", 0, 0.3, 0.07), run("b", 1, 0.4, 0.08)])
    assert len(df) == 8 and set(df.columns) >= {"variant", "seed", "metric", "value", "digest"}


def test_table_shows_article_ours_n_profile_and_data():
    runs = [run("BN -> ReLU", s, 0.3 + 0.01 * s, 0.07) for s in range(3)] + [run("ReLU -> BN", 0, 0.5, 0.09)]
    t = T.experiment_table(get("bn_order"), runs, PROFILES["laptop"])
    first = t.iloc[0]
    assert first["article (reported)"] == "0.3031"
    assert first["ours (mean ± std)"] == "0.3100 ± 0.0100"
    assert first["n"] == 3 and first["profile"] == "laptop" and first["data"] == "real"
    assert t.iloc[1]["n"] == 1 and t.iloc[1]["age MAE (years)"] == "10.44"
    assert "mean ± std over n seeds" in t.attrs["caption"]


def test_normalised_age_figures_carry_years():
    assert T.in_years("age_mae", 0.067269) == "0.0673 (7.80 y)"
    assert "RMSE" in T.in_years("age_loss", 0.008)


def test_ranking_note_tests_single_seeds_against_the_reference_prediction_interval():
    runs = [run("BN -> ReLU", s, 0.30 + 0.02 * s, 0.07) for s in range(3)] + [run("ReLU -> BN", 0, 0.50, 0.09)]
    note = N.ranking_note(get("bn_order"), runs).splitlines()
    assert note[0] == "Our best by test loss (2·MSE + BCE): 'BN -> ReLU' (0.3200)." and note[1].endswith("Same choice.")
    lo, hi = S.prediction_interval([0.30, 0.32, 0.34])  # 0.32 ± t(2, .975)·0.02·sqrt(4/3) = 0.32 ± 0.0994
    assert (round(lo, 4), round(hi, 4)) == (0.2206, 0.4194) and f"{lo:.4f}–{hi:.4f}" in note[2]
    assert note[3] == "'ReLU -> BN' (1 seed, 0.5000): outside the prediction interval: significantly worse."
    inside = N.ranking_note(get("bn_order"), runs[:3] + [run("ReLU -> BN", s, 0.31 + 0.01 * s, 0.09) for s in range(2)])
    assert "'ReLU -> BN' (2 seeds, 0.3150): Welch t = -0.40" in inside and inside.endswith("not significant.")
    assert all(len(line) < 200 for line in note)


def test_welch_matches_scipy_and_the_issue_figures():
    from scipy import stats

    a, b = [0.30, 0.25, 0.34], [0.26, 0.27, 0.26]
    t, df, p = S.t_df_p(a, b)
    assert (t, p) == pytest.approx(tuple(stats.ttest_ind(a, b, equal_var=False)))
    va, vb = np.var(a, ddof=1) / 3, np.var(b, ddof=1) / 3
    assert df == pytest.approx((va + vb) ** 2 / (va**2 / 2 + vb**2 / 2))
    assert S.t_df_p([1, 1], [2, 2])[2] == 0.0 and S.t_df_p([1, 1], [1, 1])[2] == 1.0
    lo, hi = S.prediction_interval([0.30, 0.32, 0.34])  # one new run on the interval's edge has p = 0.05
    assert S.single_run_p(hi, [0.30, 0.32, 0.34]) == pytest.approx(0.05) and np.isnan(S.single_run_p(0.3, [0.3]))
    edge = S.one_run_against(hi, [0.30, 0.32, 0.34])  # the one decision the claims table and the notes share
    assert (edge.lo, edge.hi, edge.n, edge.inside) == (lo, hi, 3, True)
    assert not S.one_run_against(hi + 1e-9, [0.30, 0.32, 0.34]).inside


def test_one_run_reads_as_an_interval_and_as_a_p_that_agree():
    rng = np.random.default_rng(0)
    for _ in range(200):  # away from the edge (where both are 0.05 up to rounding) the two readings never disagree
        seeds, value = rng.normal(0.3, 0.02, rng.integers(2, 6)), rng.normal(0.3, 0.06)
        read = S.one_run_against(value, seeds)
        if abs(read.p - S.ALPHA) > 1e-6:
            assert read.inside == (read.p >= S.ALPHA), (value, seeds)
    assert S.one_run_against(0.3, [0.3, 0.3]).inside and np.isnan(S.one_run_against(0.3, [0.3, 0.3]).p)
    assert not S.one_run_against(0.31, [0.3, 0.3]).inside and S.one_run_against(0.31, [0.3, 0.3]).p == 0.0


def test_difference_note_says_not_significant_for_small_n():
    runs = [run("a", s, 0, 0.05 + 0.001 * s) for s in range(3)] + [run("b", s, 0, 0.08 + 0.001 * s) for s in range(3)]
    clear = N.seed_spread_note(runs, "a", "b", "age_mae")
    assert clear.startswith("age MAE (years): 'a' 5.92 y vs 'b' 9.40 y (n = 3 seeds each)")  # in the unit it prints
    assert "difference -3.48 y" in clear and "significant at the 5 % level" in clear and "not significant" not in clear
    assert clear.endswith("treat it as a first hint.")  # three seeds a side pass the test: a caution follows
    noisy = [run("a", s, [0.30, 0.25, 0.34][s], 0.05) for s in range(3)] + [
        run("b", s, [0.26, 0.27, 0.20][s], 0.05) for s in range(3)
    ]
    text = N.difference_note(noisy, "a", "b", "loss")
    assert text.endswith("p = 0.194: not significant at the 5 % level.") and "difference 0.0533" in text
    assert "no test possible" in N.seed_spread_note(runs[:1] + runs[3:], "a", "b", "age_mae")
    acc = [
        Run(ARTICLE, s, variant=v, metrics={"gender_accuracy": x + 0.001 * s})
        for v, x in (("a", 0.90), ("b", 0.88))
        for s in range(3)
    ]
    assert "difference 2.0 points" in N.difference_note(acc, "a", "b", "gender_accuracy")
    flat = [
        Run(ARTICLE, s, variant=v, metrics={"gender_accuracy": x})
        for v, x in (("a", 0.9), ("b", 0.8))
        for s in range(2)
    ]
    flat_line = N.difference_note(flat, "a", "b", "gender_accuracy")  # no spread: no test, so no caution about one
    assert "no test possible" in flat_line and "first hint" not in flat_line


def test_plots_draw(small_data):
    from utils.base.profiles import Profile
    from utils.train.training import train_run

    rec = train_run(ARTICLE, small_data, Profile("tiny", "synthetic", 32, 2, 1, 32), verbose=0).tagged(
        variant="article network"
    )
    for fig in (
        P.plot_history([rec]),
        P.plot_age_predictions(rec),
        P.plot_gender_confusion(rec),
        F.plot_label_distributions(small_data),
        F.show_samples(small_data, 6),
        F.show_augmentations(small_data, 4),
        F.show_resize(small_data),
        F.show_conflicting_duplicates(small_data),
        P.plot_extended_labels(),
        P.plot_rank_consistency([rec]),
    ):
        assert fig.axes
    assert list(T.split_table(small_data).index) == ["train", "val", "test"]


def test_curve_summary_reads_single_and_multi_output_histories():
    from utils.read.tables import CURVE_COLUMNS, curve_summary, curves
    from utils.train.diagnostics import bn_memory

    multi = Run(
        ARTICLE,
        0,
        variant="m",
        epochs_run=3,
        best_epoch=2,
        metrics={"age_mae_years": 9.0},
        history={"age_mae_years": [12, 10, 9], "val_age_mae_years": [13, 11, 14]},
    )
    single = Run(
        ARTICLE,
        1,
        variant="a",
        epochs_run=2,
        best_epoch=2,
        metrics={"age_mae_years": 8.0},
        history={"mae_years": [11, 9], "val_mae_years": [12, 10]},
    )
    gender = Run(ARTICLE, 0, variant="g", epochs_run=1, best_epoch=1, history={"accuracy": [0.9]})
    t = curve_summary([multi, single, gender])
    assert list(t.variant) == ["m", "a"]
    assert t.iloc[0]["val jump per epoch (y)"] == 2.5 and t.iloc[0]["val age MAE (y)"] == 11
    plain = curves([multi, single, gender])  # the same figures under plain names, unrounded, for the notes
    assert plain.iloc[0].val_jump == 2.5 and list(plain.columns[3:]) == list(CURVE_COLUMNS)
    assert bn_memory(100, (0.99,), 2).iloc[0, 0] == round(0.99**100, 3)


def test_worst_curve_shows_the_worst_seed_epoch_by_epoch_and_says_when_none_is_stored():
    from utils.read.tables import worst_curve

    def run(seed, mae, val):
        hist = {"age_mae_years": [12.0, 10.0, 9.0], "val_age_mae_years": val}
        return Run(ARTICLE, seed, variant="v", best_epoch=2, metrics={"age_mae_years": mae}, history=hist)

    table = worst_curve([run(0, 8.0, [9, 8, 7]), run(1, 9.5, [13, 11, 14])], "v")
    assert table.index.name == "epoch (v, seed 1; age MAE, y)" and list(table.index) == [1, 2, 3]
    assert list(table.val) == [13, 11, 14] and list(table.kept) == ["", "kept", ""]
    empty = worst_curve([run(0, 8.0, [9, 8, 7])], "other")  # a store that lacks the row: a labelled empty table
    assert empty.empty and empty.index.name == "epoch (other: no run stored)"


def test_real_faces_are_hidden_when_rendering(small_data, monkeypatch):
    import dataclasses

    real = dataclasses.replace(small_data, synthetic=False)
    assert not any(ax.images for ax in F.show_conflicting_duplicates(real, faces=False).axes)
    for fig in (
        F.show_samples(real, 4, faces=False),
        F.show_resize(real, faces=False),
        F.show_augmentations(real, 2, faces=False),
    ):
        assert (
            any(ax.images for ax in fig.axes) and fig._suptitle.get_text() == F.STAND_IN
        )  # synthetic stand-ins, said so
    assert any(ax.images for ax in F.show_samples(real, 4).axes)


def test_versus_article_note_states_gaps():
    runs = [run("article network", s, 0.25, 0.09) for s in range(2)]
    text = N.versus_article_note(get("final"), runs)
    assert "test loss" in text and "worse by 12% relative to the article's figure" in text
    assert (
        "age MAE (years): ours 10.44 y (n = 2), the article 7.89 y. Ours is worse by 2.55 years; the article's figure "
        "lies outside our seeds' 95 % prediction interval: a gap larger than our seed-to-seed scatter" in text
    )  # two identical seeds: an interval of zero width, so the article's run is outside it
    spread = N.versus_article_note(
        get("final"), [run("article network", s, 0.30 + d, 0.09) for s, d in ((0, -0.01), (1, 0.01), (2, 0.0))]
    )
    assert (
        "test loss (2·MSE + BCE): ours 0.3000 (n = 3)" in spread and "lies outside our seeds'" in spread.split("\n")[0]
    )
    assert "normalised): ours 10" not in text  # a figure in years is never labelled normalised
    close = N.versus_article_note(
        get("final"), [run("article network", s, 0.2227 + d, 0.09) for s, d in ((0, -0.01), (1, 0.008))]
    )
    assert (
        "Ours is better by 0.4% relative to the article's figure; the article's figure lies inside our seeds' "
        "95 % prediction interval: no difference shown." in close
    )
    assert "gender accuracy: ours 90.0% (n = 2), the article 91.6%. Ours is worse by 1.6 percentage points;" in text
    one = N.versus_article_note(get("final"), runs[:1])
    assert "Ours is worse by 2.55 years (one seed: no interval to read the article's figure against)." in one


def test_remedy_note_compares_with_the_baseline_spread():
    from utils.read.notes import remedy_note

    def rec(variant, seed, mae, val):
        return Run(
            ARTICLE,
            seed,
            variant=variant,
            epochs_run=len(val),
            best_epoch=1,
            metrics={"age_mae_years": mae},
            history={"age_mae_years": [20.0] * len(val), "val_age_mae_years": val},
        )

    runs = [
        rec("article network", 0, 10.0, [12, 18, 11]),
        rec("article network", 1, 12.0, [12, 16, 13]),
        rec("calm", 0, 11.0, [12, 12.5, 12]),
        rec("better", 0, 8.0, [14, 17, 10]),
    ]
    text = remedy_note(runs)
    assert "calm (1 seed): jumps 0.50 y per epoch (inside the prediction interval: not significant)" in text
    assert "better (1 seed): jumps 5.00 y per epoch" in text and "test age MAE 8.00 y (inside" in text


def test_run_lengths_count_shared_runs_once_and_correlate_with_scores():
    from utils.read.notes import run_length_note
    from utils.read.tables import for_reader, run_lengths

    def rec(cfg, seed, best, loss):
        return Run(
            ARTICLE.with_(dense_units=cfg + 1),
            seed,
            epochs_run=best + 4,
            best_epoch=best,
            variant=f"v{cfg}",
            metrics={"loss": loss, "age_mae_years": 10.0},
        )

    shared = rec(0, 0, 10, 0.26)
    t = run_lengths({"a": [shared, rec(1, 0, 20, 0.24)], "b": [shared, rec(2, 0, 5, 0.30), rec(3, 0, 15, 0.25)]})
    assert len(t) == 4 and list(t.table) == ["a", "a", "b", "b"]
    assert list(for_reader(t).columns[4:]) == ["best epoch", "test loss", "test age MAE (y)"]
    note = run_length_note(t)
    assert (
        "best epoch ranged 5–20" in note
        and "with the test loss: -1.00 (p < 0.01)" in note
        and "Significant: runs that trained longer tended to score better" in note
    )
    t.loc[3, "test_loss"] = 0.23  # the ranks no longer agree: rho = -0.4 on 4 runs
    assert "Not significant" in run_length_note(t)
    assert "Too few runs" in run_length_note(t.iloc[:3])
    t["best_epoch"] = 2  # the smoke profile: every run kept the same epoch, so Spearman's rho is undefined
    assert run_length_note(t).endswith("no rank correlation to measure.") and "nan" not in run_length_note(t)


def test_dead_output_note_spots_an_output_stuck_at_zero():
    from utils.read.notes import dead_output_note

    runs = [
        Run(ARTICLE, 0, variant="relu", predictions={"age_pred": [0.0] * 10}),
        Run(ARTICLE, 0, variant="linear", predictions={"age_pred": [0.0] + [30.0] * 9}),
    ]
    note = dead_output_note(runs)
    assert "relu: 100% of test faces predicted exactly 0 years (1 seed) — the output is dead" in note
    assert "linear: 10% of test faces" in note and note.count("dead") == 1
    flat = {"age_mae_years": [33.6, 33.22, 33.25, 33.2]}  # answering 0 for every face, epoch after epoch
    runs[0] = Run(ARTICLE, 0, variant="relu", predictions={"age_pred": [0.0] * 10}, history=flat)
    assert "stayed at 33.20–33.25 y from epoch 2 on in 1 seed, flat" in dead_output_note(runs)
    moving = {"age_mae_years": [33.6, 30.0, 25.0]}  # still learning in training mode: dead only at test
    runs[0] = Run(ARTICLE, 0, variant="relu", predictions={"age_pred": [0.0] * 10}, history=moving)
    assert "still moved after epoch 1 (25.00–30.00 y): dead at test, not in training" in dead_output_note(runs)


def test_bn_probe_frame_verdicts_and_plot_read_the_probe_record():
    from utils.read import bn_probe

    run = Run(
        ARTICLE,
        0,
        variant="article network",
        best_epoch=2,
        epochs_run=3,
        probes={
            "bn": {
                "moving": [12.0, 9.0, 13.0],
                "precise_train": [11.0, 10.5, 10.0],
                "precise_inference": [11.5, 11.0, 10.5],
                "bn_mean_gap": [0.3, 0.2, 0.2],
            }
        },
    )
    fig = bn_probe.plot([run])
    assert len(fig.axes[0].lines) == 4  # three curves and the kept-epoch line
    f = bn_probe.frame([run]).set_index("statistics")
    # steps: moving 3 and 4 (median 3.5), training regime 0.5 and 0.5, inference regime 0.5 and 0.5
    assert f.loc["moving", "median_jump"] == 3.5 and f.loc["precise_train", "mean_jump"] == 0.5
    assert (
        f.loc["moving", "level"] == 11.0
        and f.loc["moving", "at_best"] == 9.0
        and f.loc["precise_train", "lowest"] == 10
    )
    v = bn_probe.verdicts(
        [run, run.tagged(seed=1, probes={"bn": {**run.probes["bn"], "precise_inference": [1, 9, 1]}})]
    )
    assert v.calmest.tolist() == [bn_probe.SCORINGS["precise_train"], bn_probe.SCORINGS["precise_train"]]
    assert v["median jump, moving averages (Keras) (y)"].tolist() == [3.5, 3.5] and v["kept epoch"].tolist() == [2, 2]
    assert v["val age MAE at the stop, re-measured (y)"].tolist() == [10.0, 1.0]
    assert bn_probe.frame([]).empty and bn_probe.verdicts([]).empty and bn_probe.plot([]).axes[0].texts


def test_fit_note_tells_underfitting_from_overfitting():
    import pandas as pd

    from utils.read.notes import fit_note

    table = pd.DataFrame({"variant": ["a", "a", "b"], "train_mae": [12.0, 13.0, 4.0], "val_mae": [12.5, 13.0, 8.0]})
    note = fit_note(table).splitlines()
    assert (
        "a (2 seeds): train age MAE 12.00–13.00 y" in note[0]
        and "+0.25 y" in note[0]
        and "no sign of overfitting" in note[0]
    )
    assert "+4.00 y" in note[1] and note[1].endswith(": overfitting (the course's rule of thumb, not a test).")
    below = fit_note(pd.DataFrame({"variant": ["c"], "train_mae": [12.0], "val_mae": [10.0]}))
    assert "Validation below training" in below and "cannot say how well the network fits" in below
    assert fit_note(pd.DataFrame()) == "No runs with an age curve yet."
    mixed = pd.DataFrame({"variant": ["d", "d"], "seed": [0, 1], "train_mae": [10.0, 10.0], "val_mae": [10.0, 13.0]})
    assert fit_note(mixed).endswith(
        "Except seed 1: validation +3.00 y from training at its kept epoch, one run's gap: read its curves to tell "
        "overfitting (validation rising while training falls) from a noisy epoch."
    )


def test_table_shows_figures_in_years_with_two_decimals():
    runs = [
        Run(
            ARTICLE,
            s,
            data={"kind": "synthetic"},
            variant="MSE regression",
            metrics={"age_mae": 0.1, "age_rmse_years": x},
        )
        for s, x in enumerate((13.9, 16.36, 14.48))
    ]
    t = T.experiment_table(get("ordinal"), runs, PROFILES["smoke"])
    assert t.iloc[1]["ours (mean ± std)"] == "14.91 ± 1.29" and set(t.data) == {"synthetic"}


def test_size_table_gives_the_ratio_to_the_reference():
    runs = [Run(ARTICLE, 0, variant="dense 512", params=371842), Run(ARTICLE, 0, variant="dense 1024", params=637570)]
    t = T.size_table(runs)
    assert list(t["× reference"]) == [1.0, 1.71]
    assert T.size_table([]).empty


def test_versus_article_plot_has_one_row_per_variant_and_both_markers():
    runs = [run("BN -> ReLU", s, 0.30 + 0.02 * s, 0.07) for s in range(3)] + [run("ReLU -> BN", 0, 0.50, 0.09)]
    fig = P.plot_versus_article(get("bn_order"), runs, profile=PROFILES["laptop"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["BN -> ReLU", "ReLU -> BN"]
    assert ax.get_legend() is None  # the figure's legend, below the axes, hides no row
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(t.startswith("article") for t in legend) and any("laptop, 64 px, real" in t for t in legend)
    assert any("prediction interval" in t for t in legend)  # the interval the notes test a single run against is shaded
    assert any(t.get_text() == "n = 3" for t in ax.texts)


def test_rank_consistency_plot_labels_every_bar_even_at_zero():
    runs = [
        Run(ARTICLE, s, variant=v, metrics={"rank_consistency": x})
        for v, x in (("OR-CNN", 0.0), ("CORAL-CNN", 1.0))
        for s in range(2)
    ]
    texts = [t.get_text() for t in P.plot_rank_consistency(runs).axes[0].texts]
    assert texts == ["0%\n(n = 2)", "100%\n(n = 2)"]


def test_history_plot_has_integer_epochs_labels_and_shared_axes_by_variant():
    def rec(variant, seed):
        return Run(
            ARTICLE,
            seed,
            variant=variant,
            best_epoch=2,
            history={
                "loss": [1.0, 0.5, 0.4],
                "val_loss": [1.1, 0.6, 0.7],
                "age_mae_years": [20, 15, 12],
                "val_age_mae_years": [21, 16, 17],
            },
        )

    fig = P.plot_history(
        [rec("with", 0), rec("without", 0), rec("with", 1)], keys=("loss", "age_mae_years"), by_variant=True
    )
    axes = fig.axes
    assert len(axes) == 4 and axes[1].get_ylabel() == "age MAE (years)" and axes[0].get_title() == "with: loss"
    assert axes[0].get_ylim() == axes[2].get_ylim()  # both variants on the same scale
    assert all(float(x).is_integer() for x in axes[0].get_xticks())
    three = [rec(v, 0) for v in ("a", "b", "c")]  # one curve, three variants: two a row, the fourth panel hidden
    fig = P.plot_history(three, keys=("age_mae_years",), by_variant=True)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == [f"{v}: age MAE" for v in "abc"]
    assert len(fig.axes) == 4 and not fig.axes[3].get_visible() and fig.axes[0].get_ylim() == fig.axes[2].get_ylim()


def test_loss_balance_colours_the_part_of_the_loss_and_styles_the_seed():
    runs = [Run(ARTICLE, s, history={"age_loss": [0.2, 0.05, 0.03], "gender_loss": [0.6, 0.4, 0.3]}) for s in range(2)]
    ax = P.plot_loss_balance(runs).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["2·age MSE, seed 0", "2·age MSE, seed 1", "gender BCE, seed 0", "gender BCE, seed 1"]
    assert lines["2·age MSE, seed 0"].get_color() == lines["2·age MSE, seed 1"].get_color()
    assert lines["2·age MSE, seed 0"].get_color() != lines["gender BCE, seed 0"].get_color()
    assert lines["gender BCE, seed 0"].get_linestyle() != lines["gender BCE, seed 1"].get_linestyle()
    np.testing.assert_allclose(lines["2·age MSE, seed 1"].get_ydata(), [0.4, 0.1, 0.06])  # weighted as trained


def test_gradient_ratio_plot_reads_its_log_axis_as_plain_numbers():
    ratio = pd.DataFrame({"conv1": [0.2, 1.5, 6.0], "dense": [0.3, 0.5, 1.2]}, index=[0, 1, 2])
    ax = P.plot_gradient_ratios(ratio, "t").axes[0]
    assert ax.get_yscale() == "log" and ax.get_title() == "t"
    assert [line.get_label() for line in ax.get_lines()][:2] == ["conv1", "dense"]
    ax.figure.canvas.draw()
    shown = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert shown and all("^" not in t for t in shown) and "1" in shown  # 0.2, 0.3, 0.5, 1, 2 ...: no 10^x


def test_age_prediction_plot_has_a_colourbar_and_the_course_age_bands():
    from utils.base.labels import BAND_LABELS

    r = Run(ARTICLE, 0, predictions={"age_true": [10, 20, 30, 40] * 5, "age_pred": [12, 18, 33, 39] * 5})
    fig = P.plot_age_predictions(r)
    assert len(fig.axes) == 3 and "log" in fig.axes[-1].get_ylabel()
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == list(BAND_LABELS)  # the tables' labels


def test_best_epoch_note_names_a_run_the_cap_stopped_before_its_patience_ran_out():
    from utils.read import lessons

    rule = {"name": "laptop", "epochs": 30, "patience": 4}
    stopped = Run(ARTICLE, 0, variant="CORAL", profile=rule, epochs_run=26, best_epoch=22)  # patience ran out
    capped = Run(ARTICLE, 1, variant="CORAL", profile=rule, epochs_run=30, best_epoch=29)
    waited = Run(ARTICLE, 2, variant="CORAL", profile=rule, epochs_run=30, best_epoch=26)  # the cap and patience agree
    note = lessons.best_epoch_note([stopped, capped, waited])
    assert note.startswith("CORAL: best epoch 22–29, epochs run 26–30 (3 seeds).")
    assert note.endswith(
        "before the patience ran out (more epochs might still have helped): CORAL seed 1 (best epoch 29 of 30)."
    )
    assert "cap" not in lessons.best_epoch_note([stopped])
    also = capped.tagged(seed=3, best_epoch=28)
    assert lessons.best_epoch_note([capped, also]).endswith("(more epochs might still have helped): every run.")


def test_time_note_counts_a_shared_run_once_and_groups_by_device():
    from utils.read import lessons

    a = Run(
        ARTICLE,
        0,
        profile={"name": "laptop"},
        wall_seconds=600.0,
        epochs_run=20,
        epoch_seconds=[40.0] + [30.0] * 19,
        device="CPU x86_64 x2",  # the older records' form: the core count is the last field
        precision="float32",
    )
    b = Run(
        ARTICLE.with_(dense_units=1024),
        0,
        profile={"name": "laptop"},
        wall_seconds=300.0,
        epochs_run=10,
        epoch_seconds=[30.0] * 10,
        device="CPU AMD EPYC x2",
        precision="float32",
    )
    c = Run(
        ARTICLE,
        1,
        profile={"name": "laptop"},
        wall_seconds=120.0,
        epochs_run=5,
        epoch_seconds=[24.0] * 5,
        device="GPU NVIDIA H200",
        precision="mixed_float16",
    )
    lines = lessons.time_note([a, b, a, c]).splitlines()
    assert len(lines) == 2 and lines[0].startswith(
        "profile laptop (a 2-core CPU, 32-bit floats): 2 stored runs, 30 epochs"
    )
    assert "median 30 s per epoch" in lines[0] and "0.2 h in all" in lines[0]
    assert "(a GPU, 16-bit mixed precision)" in lines[1]  # plain words: the record keeps the exact device
    assert lessons.time_note([]) == "no stored runs"


def test_every_claim_names_live_rows_and_the_verdict_follows_the_test():
    from utils.read.claims import CLAIMS, Claim, judge
    from utils.train import experiments

    for c in CLAIMS:
        live = {v.label for v in experiments.get(c.experiment).variants if not v.superseded}
        assert {c.better, c.worse} <= live, c

    def runs(label, losses):
        return [
            Run(ARTICLE, s, data={"kind": "synthetic"}, variant=label, metrics={"loss": x})
            for s, x in enumerate(losses)
        ]

    claim = Claim("a beats b", "bn_order", "a", "b", "loss")
    assert judge(claim, runs("a", [0.20, 0.21, 0.19]) + runs("b", [0.30, 0.31, 0.29])).verdict == "holds"
    assert judge(claim, runs("a", [0.30, 0.31, 0.29]) + runs("b", [0.20, 0.21, 0.19])).verdict == "reversed"
    assert judge(claim, runs("a", [0.20, 0.30, 0.25]) + runs("b", [0.24, 0.26, 0.31])).verdict.startswith(
        "not resolved"
    )
    assert judge(claim, runs("a", [0.2]) + runs("b", [0.2, 0.21, 0.19])).verdict.startswith("not resolved")  # inside
    assert judge(claim, runs("a", [0.2])).verdict == "not run yet"
    assert judge(claim, runs("a", [0.2]) + runs("b", [0.3])).verdict == "same direction, untested"
    # a superseded row stands in, labelled, while its live row has no runs
    assert "(n = 3, 3)" in judge(claim, runs("a (shared draws)", [0.2, 0.21, 0.19]) + runs("b", [0.3, 0.31, 0.29])).ours


def test_the_holm_note_keeps_only_verdicts_that_survive_the_number_of_claims_tested():
    from utils.read.claims import CLAIMS, holm_note

    def runs(label, losses, metric="loss"):
        return [Run(ARTICLE, s, variant=label, metrics={"loss": 0.1, metric: x}) for s, x in enumerate(losses)]

    first, second, third = CLAIMS[:3]  # all on the test loss
    clear = runs(first.better, [0.20, 0.201, 0.199]) + runs(first.worse, [0.30, 0.301, 0.299])  # p far below 0.05
    marginal = runs(second.better, [0.20, 0.23, 0.17]) + runs(second.worse, [0.27, 0.30, 0.24])  # p ≈ 0.046 alone
    reversed_ = runs(third.better, [0.27, 0.30, 0.24]) + runs(third.worse, [0.20, 0.23, 0.17])  # the same, reversed
    note = holm_note({"p": {first.experiment: clear, second.experiment: marginal, third.experiment: reversed_}})
    assert note.startswith("p: 3 claims tested, 3 called 'holds' or 'reversed' on its own test")
    assert f"1 of them stands: '{first.text}' (holds, Holm-adjusted p < 0.001). Not after it: '{second.text}'" in note
    assert f"'{third.text}' (reversed, Holm-adjusted p = 0.09" in note  # 2 × 0.046: two tests not yet ruled out
    quiet = holm_note({"q": {second.experiment: runs(second.better, [0.2, 0.3]) + runs(second.worse, [0.25, 0.2])}})
    assert (
        quiet
        == "q: 1 claims tested; none is called 'holds' or 'reversed' even on its own, so no correction can change it."
    )
    assert holm_note({"r": {}}) == "No profile has a tested claim yet."


def test_a_superseded_row_stands_in_until_its_live_row_has_two_seeds():
    from utils.train.runs import SUPERSEDED, current, resolve

    exp = get("augmentation")
    old = next(v for v in exp.variants if v.superseded)
    assert old.label == "with augmentation" + SUPERSEDED and old.config.augment.seeding == "shared"
    live = next(v for v in exp.variants if v.label == "with augmentation")
    assert live.config.augment.seeding == "per_layer"

    def runs(label, n):
        return [Run(ARTICLE, s, data={"kind": "real"}, variant=label, metrics={"loss": 0.3}) for s in range(n)]

    plain = runs("without augmentation", 3)
    only_old = plain + runs(old.label, 3)
    assert [v.label for v in exp.rows(only_old)] == [old.label, "without augmentation"]
    assert exp.rows(only_old)[0].article == live.article  # the article's figure stays on its row
    assert resolve(only_old, "with augmentation") == old.label and current(only_old) == only_old
    one = only_old + runs("with augmentation", 1)  # one retrained seed does not yet displace three old ones
    assert {r.variant for r in current(one)} == {old.label, "without augmentation"}
    assert resolve(one, "with augmentation") == old.label and exp.rows(one)[0].label == old.label
    lone = plain + runs(old.label, 1) + runs("with augmentation", 1)  # one against one: the live row
    assert resolve(lone, "with augmentation") == "with augmentation"
    assert old.label not in {r.variant for r in current(lone)}
    both = only_old + runs("with augmentation", 2)
    assert [v.label for v in exp.rows(both)] == ["with augmentation", "without augmentation"]
    assert {r.variant for r in current(both)} == {"with augmentation", "without augmentation"}
    assert resolve(both, "with augmentation") == "with augmentation"
    table = T.experiment_table(exp, only_old, PROFILES["laptop"])
    assert set(table.variant) == {old.label, "without augmentation"}


def test_superseded_runs_stay_readable_after_their_live_row_replaces_them(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from utils.train import runner
    from utils.train.store import ResultsStore

    monkeypatch.setattr("utils.train.store.RESULTS_DIR", tmp_path)
    exp, prof = get("augmentation"), PROFILES["laptop"]
    data = SimpleNamespace(kind="real", fingerprint="fp", split_id="sp")
    for v in exp.variants:
        if v.label != "without augmentation":
            for seed in range(2 if v.superseded else 3):
                r = Run(v.config, seed, profile=prof.to_dict(), data=vars(data), metrics={"loss": 0.3})
                ResultsStore.write(ResultsStore().path(v.config, seed, prof, "real", "fp", "sp", sub=exp.sub), r)
    assert {r.variant for r in runner.collect("augmentation", prof, data)} == {"with augmentation"}  # live row shown
    old = runner.superseded("augmentation", prof, data)
    assert [(r.variant, r.seed) for r in old] == [
        ("with augmentation (shared draws)", 0),
        ("with augmentation (shared draws)", 1),
    ]
    assert all(r.config.augment.seeding == "shared" for r in old)
    assert runner.superseded("augmentation", prof, SimpleNamespace(kind="real", fingerprint="x", split_id="sp")) == []


def test_a_table_shows_the_article_setting_beside_ours_where_it_is_stored(tmp_path, monkeypatch):
    from utils.train.store import ResultsStore

    monkeypatch.setattr("utils.train.store.RESULTS_DIR", tmp_path)
    exp = get("bn_order")
    data = {"kind": "real", "fingerprint": "fp", "split_id": "sp"}

    def run(profile, label, loss, seed=0):
        config = next(v.config for v in exp.variants if v.label == label)
        r = Run(config, seed, profile=PROFILES[profile].to_dict(), data=data, metrics={"loss": loss}, variant=label)
        ResultsStore.write(ResultsStore().path(config, seed, PROFILES[profile], "real", "fp", "sp"), r)
        return r

    laptop = [run("laptop", "BN -> ReLU", 0.26), run("laptop", "ReLU -> BN", 0.36)]
    assert "ours at 128 px" not in T.show_table(exp, laptop, PROFILES["laptop"]).data  # nothing at 128 px yet
    run("full", "BN -> ReLU", 0.21)
    run("full", "BN -> ReLU", 0.23, seed=1)
    shown = T.show_table(exp, laptop, PROFILES["laptop"]).data
    assert list(shown["n at 128 px"]) == [2, 0] and shown["ours at 128 px"].iloc[0].startswith("0.2200 ±")
    assert "gender acc." not in shown and "age MAE (years)" not in shown  # no run records them: nothing to show
    assert "ours at 128 px" not in T.show_table(exp, laptop, PROFILES["full"]).data  # the full profile's own table


def test_context_columns_stand_once_per_variant_and_never_beside_their_own_figure():
    metrics = {"loss": 0.26, "age_mae": 0.09, "gender_accuracy": 0.9, "age_mae_years": 10.44}
    runs = [Run(ARTICLE, s, metrics=metrics, variant="article network") for s in range(2)]
    full = T.experiment_table(get("final"), runs, PROFILES["laptop"])
    assert (full["age MAE (years)"] == "10.44 ± 0.00").all()  # the full table, as the README reads it, repeats it
    shown = T.context_once(full).set_index("metric")
    assert shown.loc["test loss (2·MSE + BCE)", "age MAE (years)"] == "10.44 ± 0.00"  # the variant's first row
    assert (shown["age MAE (years)"].iloc[1:] == "–").all() and (shown["gender acc."].iloc[1:] == "–").all()
    ordinal = T.context_once(T.experiment_table(get("ordinal"), [], PROFILES["laptop"]))
    assert (ordinal["age MAE (years)"] == "–").all()  # its first row is the MAE itself: nothing left to show


def test_beside_names_rows_whose_two_columns_come_from_different_draws():
    from utils.read.tables import beside

    ours = pd.DataFrame({"variant": ["with augmentation (shared draws)", "without"], "ours (mean ± std)": ["1", "2"]})
    full = pd.DataFrame({"variant": ["with augmentation", "without"], "ours (mean ± std)": ["3", "–"], "n": [1, 0]})
    out = beside(ours, full)
    assert list(out.variant) == ["with augmentation (64 px: shared draws; 128 px: independent)", "without"]
    assert list(out["ours at 128 px"]) == ["3", "–"] and list(out["n at 128 px"]) == [1, 0]
    unrun = beside(ours, full.assign(n=[0, 0]))  # no 128 px run: the row keeps its own label
    assert unrun.variant.iloc[0] == "with augmentation (shared draws)"
    with pytest.raises(ValueError, match="rows differ"):
        beside(ours, full.assign(variant=["other", "without"]))


def test_the_detector_summary_is_plain_numbers_and_its_table_and_note_label_them():
    from utils.read import model_notes
    from utils.use import checks

    rng = np.random.default_rng(0)
    n = 40
    frame = pd.DataFrame(
        {
            "pad": np.repeat([0.0, 0.25], n),
            "row": np.tile(np.arange(n), 2),
            "faces_found": np.r_[np.zeros(n, int), np.ones(n, int)],
            "age_true": np.tile(rng.integers(10, 70, n), 2),
            "gender_true": np.tile(rng.integers(0, 2, n), 2),
        }
    )
    frame["age_direct"] = frame.age_true + 3.0
    frame["age_detector"] = frame.age_true + 5.0
    frame["female_direct"] = frame.gender_true.astype(float)  # always right
    frame["female_detector"] = 0.9  # says female every time
    summary = checks.detector_summary(frame)
    assert all(" " not in c and "(" not in c for c in summary.columns)  # names for code, not for readers
    padded = summary[summary.pad == 0.25].iloc[0]
    assert padded.detected == 1.0 and padded.mae_direct == 3.0 and padded.change == pytest.approx(2.0)
    assert padded.gender_direct == 1.0 and padded.gender_detector == pytest.approx(frame.gender_true[:n].mean())
    table = model_notes.detector_table(summary)
    assert table["padding"].tolist() == ["0% of the side", "25% of the side"]
    assert table.loc[1, "change (y)"] == "+2.00 [+2.00, +2.00]" and table.loc[1, "detected"] == "100.0%"
    note = model_notes.detector_note(summary).splitlines()
    assert note[0] == f"padding 0% of the side: the detector found no face in {n} faces"
    assert "MAE 3.00 y direct and 5.00 y through the detector (change +2.00 [+2.00, +2.00] y)" in note[1]


def test_the_age_shape_note_reads_the_unrounded_band_errors_and_the_table_rounds_them():
    from utils.read import lessons

    true = np.array([5, 6, 25, 26, 27, 35, 36, 85, 86], float)
    pred = true + np.array([12.04, 11.96, -1.0, 1.0, 0.0, -2.0, -2.0, -15.0, -15.0])  # large at both ends
    run = Run(
        ARTICLE,
        0,
        variant="toy",
        metrics={"age_mae_years": 5.0},
        predictions={"age_true": true.tolist(), "age_pred": pred.tolist()},
    )
    plain = T.age_band_errors(run)
    assert list(plain.columns) == ["ages", "faces", "mae", "bias"] and plain.mae.iloc[0] == pytest.approx(12.0)
    shown = T.age_bands_table(run)
    assert list(shown.columns) == ["ages", "test faces", "MAE (y)", "bias (y)"] and shown["MAE (y)"].iloc[0] == 12.0
    note = lessons.age_shape_note(run)
    assert "U-shaped" in note and "lowest 0.7 y" in note and "highest 15.0 y" in note
    assert "bias falls band after band, from +12.0 y to -15.0 y" in note
    rising = run.tagged(predictions={"age_true": true.tolist(), "age_pred": (true + np.linspace(-3, 3, 9)).tolist()})
    assert "bias does not fall overall, from -2.6 y to +2.6 y" in lessons.age_shape_note(rising)  # never "falls"
    adults = run.tagged(predictions={"age_true": true[2:].tolist(), "age_pred": pred[2:].tolist()})
    assert lessons.age_shape_note(adults).endswith("no test faces aged 3–9, or a single age band: no per-age reading.")


def test_loss_share_plot_and_diagnosis_name_each_runs_own_weights_and_losses():
    """Nothing outside the heads assumes 2·MSE + BCE: a run re-weighted to 20·MSE is read with its own weight."""
    from utils.read.lessons import diagnosis_note

    heavy = ARTICLE.with_(loss_weights=(20.0, 1.0))
    metrics = {"loss": 0.5, "age_loss": 0.02, "gender_loss": 0.1, "age_mae_years": 9.0, "gender_accuracy": 0.9}
    runs = [Run(heavy, 0, variant="age weight 20", metrics=metrics)]
    note = N.loss_share_note(runs, reference="age weight 20")
    assert "20·MSE(age) = 0.4000 against BCE(gender) = 0.1000, so age is 80%" in note
    assert N.loss_share_note(runs) == "No stored run of 'the article network' with both losses."  # no crash
    history = {"age_loss": [0.03, 0.02], "gender_loss": [0.5, 0.4]}
    fig = P.plot_loss_balance([runs[0].tagged(history=history)])
    assert [line.get_label() for line in fig.axes[0].lines] == ["20·age MSE, seed 0", "gender BCE, seed 0"]
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [0.6, 0.4])
    base = [Run(ARTICLE, s, variant="article network", metrics=metrics) for s in range(2)]
    assert "test loss 0.5000 = 20·MSE + BCE;" in diagnosis_note(base + runs)
    assert (T.weighted(1, "BCE"), T.weighted(0.5, "BCE")) == ("BCE", "0.5·BCE")  # weight 1 goes unwritten


def test_article_setting_note_compares_two_rows_at_128_px_and_tests_only_with_two_runs_a_side(monkeypatch):
    from utils.read import notes
    from utils.train.experiments import get

    exp = get("separate_age")
    va, vb = [v for v in exp.variants if not v.superseded]
    a, b = va.label, vb.label
    full = [
        Run(va.config, 0, variant=a, metrics={"age_mae": 0.06}),
        Run(vb.config, 0, variant=b, metrics={"age_mae": 0.07}),
    ]
    monkeypatch.setattr(notes, "article_setting_runs", lambda *args: full)
    one = notes.article_setting_note(exp, [], PROFILES["laptop"], "age_mae", a, b)
    assert "age MAE (years)" in one and "6.96 y" in one and "8.12 y" in one and "no test possible" in one
    more = full + [r.tagged(seed=1, metrics={"age_mae": r.metrics["age_mae"] + 0.001}) for r in full]
    monkeypatch.setattr(notes, "article_setting_runs", lambda *args: more)
    assert "Welch t" in notes.article_setting_note(exp, [], PROFILES["laptop"], "age_mae", a, b)
    monkeypatch.setattr(notes, "article_setting_runs", lambda *args: more[:3])  # 2 runs of a, 1 of b
    two_one = notes.article_setting_note(exp, [], PROFILES["laptop"], "age_mae", a, b)
    assert (
        "no test possible" in two_one and f"Instead, the single run of {b} against where one more run of {a}" in two_one
    )
    assert "to 8.29 y (95 % prediction interval, 2 seeds): inside the prediction interval: not significant." in two_one
    monkeypatch.setattr(notes, "article_setting_runs", lambda *args: [])
    assert "no runs of this experiment are stored" in notes.article_setting_note(
        exp, [], PROFILES["laptop"], "age_mae", a, b
    )
    monkeypatch.setattr(notes, "article_setting_runs", lambda *args: full[1:])  # one side has none: no '0, 1 seeds'
    assert f"cannot be compared yet: '{a}' 0 seeds, '{b}' 1 seed stored" in notes.article_setting_note(
        exp, [], PROFILES["laptop"], "age_mae", a, b
    )
    shares = [r.tagged(metrics={"gender_accuracy": x}) for r, x in zip(more, (0.913, 0.926, 0.915, 0.924))]
    line = notes.article_setting_note(exp, shares, PROFILES["full"], "gender_accuracy", a, b)
    assert f"{a} 91.4% vs {b} 92.5% (n = 2 seeds each); difference -1.1 points" in line  # accuracies in % and points
    assert "Welch t" in notes.article_setting_note(exp, more, PROFILES["full"], "age_mae", a, b)  # runs are 128 px


def test_welch_note_reads_each_metric_in_its_unit():
    from utils.read import lessons

    runs = [
        Run(
            ARTICLE,
            s,
            variant=v,
            metrics={"loss": 0.3 + d + 0.01 * s, "age_mae": 0.1 + d, "gender_accuracy": 0.9 - d + 0.001 * s},
        )
        for v, d in (("a", 0.0), ("b", 0.02))
        for s in range(3)
    ]
    loss, age, gender = lessons.welch_note(runs, "a", "b").splitlines()
    assert loss.startswith("loss: a 0.3100 vs b 0.3300 (n = 3 seeds each); difference -0.0200,")
    assert age.startswith("age MAE: a 11.60 y vs b 13.92 y")
    assert gender.startswith("gender accuracy: a 90.1% vs b 88.1%") and "difference 2.0 points" in gender


def test_val_turn_note_measures_noise_on_the_plateau_not_the_first_descent():
    from utils.read import lessons

    plateau = [1.0, 0.5, 0.3, 0.30, 0.31, 0.30, 0.29]  # steep descent, then steps of 0.01
    turned = Run(ARTICLE, 0, variant="a", history={"val_loss": plateau + [0.35, 0.36]})  # rises 0.065: a turn
    flat = Run(ARTICLE, 1, variant="a", history={"val_loss": plateau + [0.30, 0.295]})  # rises 0.0075: noise
    one, two = lessons.val_turn_note([turned, flat]).splitlines()
    assert "noise (median change per epoch over the later half before it) 0.0100" in one
    assert one.endswith("a turn upward") and two.endswith("no clear turn upward")
    last = Run(ARTICLE, 2, variant="a", history={"val_loss": [0.9, 0.8]})  # the smoke profile's two epochs
    first = Run(ARTICLE, 3, variant="a", history={"val_loss": [0.8, 0.9]})
    three, four = lessons.val_turn_note([last, first]).splitlines()
    assert three.endswith("at epoch 2 of 2; no epoch after it, so no turn can be read")
    assert four.endswith("at epoch 1 of 2; no epoch before it to measure the noise, so no turn can be read")


def test_choice_note_tests_the_validation_leader_against_the_next_network():
    from utils.read import model_notes

    def r(variant, experiment, seed, val):
        history = {"val_mae_years": [val + 1, val], "val_accuracy": [0.8, 0.9]}
        return Run(ARTICLE, seed, variant=variant, experiment=experiment, history=history, best_epoch=2)

    runs = [r("OR-CNN", "ordinal", s, v) for s, v in enumerate([7.0, 6.5, 7.6])]
    runs += [r("CORAL-CNN", "ordinal", s, v) for s, v in enumerate([7.1, 7.0, 7.2])]
    age, gender = T.validation_choice(runs, "age"), T.validation_choice(runs, "gender")
    note = model_notes.choice_note(age, gender)
    assert "the kept network, OR-CNN, has the best validation mean; next: CORAL-CNN (ordinal)" in note
    assert "(Welch p = 0.85: not told apart at this n; the course keeps it" in note


def test_article_verdict_sets_the_kept_run_beside_its_configurations_seeds():
    from utils.read import model_notes

    def r(seed, mae, precision):
        return Run(
            ARTICLE,
            seed,
            data={"kind": "real", "image_size": 64},
            profile={"name": "laptop"},
            metrics={"age_mae_years": mae},
            variant="age: OR-CNN",
            precision=precision,
        )

    kept = r(0, 6.60, "float32")
    text = model_notes.article_verdict(kept, [r(s, m, "mixed_bfloat16") for s, m in enumerate([7.84, 6.95, 6.75])])
    assert text.startswith("kept OR-CNN: test age MAE 6.60 y (real data, profile laptop, 64 px, n = 1), 0.23 y higher")
    assert "6.37 y of the article's separate (age-only) network (it reports 0.0549, normalised; × 116" in text
    assert text.endswith(
        "The same configuration's stored seeds score 7.18 ± 0.58 y (n = 3, mixed_bfloat16; the kept run float32): the "
        "article's figure lies inside where one more of those seeds would land, 4.30–10.06 y (95 % prediction "
        "interval)."
    )
    assert "stored seeds" not in model_notes.article_verdict(kept)  # none given: the figure alone


def test_diagnosis_note_reads_one_remedy_run_against_the_baselines_prediction_interval():
    from utils.read.lessons import diagnosis_note

    def r(variant, seed, mae, acc, best, config=ARTICLE):
        metrics = {"loss": 0.3, "age_mae_years": mae, "gender_accuracy": acc}
        return Run(config, seed, variant=variant, metrics=metrics, best_epoch=best)

    base = [
        r("article network", s, m, a, b)
        for s, (m, a, b) in enumerate([(9.6, 0.893, 9), (11.7, 0.901, 12), (10.7, 0.897, 15)])
    ]
    heavy = r("age loss weight 20", 0, 10.74, 0.851, 6, ARTICLE.with_(loss_weights=(20.0, 1.0)))
    lo, hi = S.prediction_interval([0.893, 0.901, 0.897])
    note = diagnosis_note(base + [heavy])
    assert "kept epochs 9/12/15." in note and "age loss weight 20 (seed 0, kept epoch 6)" in note
    two = diagnosis_note(base + [heavy, heavy.tagged(seed=1, best_epoch=8)])  # every stored seed read, each on its own
    assert "(seed 0, kept epoch 6)" in two and "age loss weight 20 (seed 1, kept epoch 8)" in two
    assert f"gender accuracy 0.851, outside the baseline's interval {lo:.3f}–{hi:.3f}." in note
    assert "age MAE 10.74 y, inside the baseline's interval" in note and "no test is possible" not in note
    assert "At that epoch" not in note  # no validation curves stored: nothing to set side by side
    assert note.endswith("before crediting the remedy.")
    assert diagnosis_note(base + [heavy], kind="change").endswith("before crediting the change.")
    curve = lambda *acc: {"val_gender_accuracy": list(acc)}  # noqa: E731
    base = [b.tagged(history=curve(*h)) for b, h in zip(base, [(0.8,) * 9, (0.84,) * 6 + (0.9,) * 6, (0.86,) * 15])]
    note = diagnosis_note(base + [heavy.tagged(history=curve(0.7, 0.75, 0.8, 0.81, 0.82, 0.852))])
    assert (
        "At that epoch, validation gender accuracy 0.852 against the baseline seeds' 0.800–0.860 at their epoch 6."
        in note
    )


def test_shown_seed_note_names_the_run_its_profile_and_data_beside_the_mean():
    from utils.read.lessons import shown_seed_note

    runs = [
        Run(
            ARTICLE,
            s,
            variant="article network",
            profile={"name": "laptop", "image_size": 64},
            data={"kind": "real"},
            metrics={"age_mae_years": m, "gender_accuracy": 0.9},
        )
        for s, m in enumerate([10.0, 11.0, 12.0])
    ]
    note = shown_seed_note(runs, 1)
    assert note.startswith("The plots below show one run: article network, seed 1 (laptop, 64 px, real data)")
    assert "test age MAE 11.00 y" in note and "mean over 3 seeds: 11.00 y" in note and "10.00–12.00 y" in note


def test_a_family_of_verdicts_says_which_significant_ones_survive_holm():
    from utils.read.verdicts import welch_verdict, welch_verdicts

    ref = [0.30, 0.31, 0.32]
    pairs = [([0.36], ref), ([0.37], ref), ([0.311], ref)]  # two single runs just outside the interval, one inside
    raw = [S.single_run_p(v[0], ref) for v, _ in pairs]
    adjusted = S.holm(raw)
    said = welch_verdicts(pairs, "loss")
    assert said[2] == welch_verdict([0.311], ref, "loss") == "inside the prediction interval: not significant"
    for text, p, q in zip(said[:2], raw, adjusted):
        assert p < S.ALPHA and text.startswith("outside the prediction interval: significantly worse (Holm over 3")
        assert text.endswith(")" if q < S.ALPHA else ", not significant)") and S.p_text(q, 3) in text
    assert welch_verdicts(pairs[:1], "loss") == [welch_verdict(*pairs[0], "loss")]  # one test: nothing to correct
    far = welch_verdicts([([0.60], ref), *pairs[:2]], "loss")  # the far run survives Holm, the near ones do not
    assert far[0].startswith("outside the prediction interval: significantly worse (Holm over 3 tests: p")
    assert not far[0].endswith("not significant)") and all(v.endswith(", not significant)") for v in far[1:])
    assert welch_verdict([0.3, 0.3], [0.4, 0.4], "loss") == "no spread on either side: untested"
    assert welch_verdict([0.5], [0.4, 0.4], "loss") == "no spread on either side: untested"
    assert welch_verdict([0.3, np.nan], ref, "loss") == "a value is missing (NaN): untested"
    assert (
        np.isnan(S.fitting_p([0.3, 0.3], [0.4, 0.4]))
        and np.isnan(S.fitting_p([0.3, np.nan], ref))
        and S.fitting_p([0.3, 0.31], [0.4, 0.5]) < 1
    )
