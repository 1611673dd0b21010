"""utils.read.errors on small hand-made predictions: known MAE and bias per group, intervals, calibration, adapter."""

import numpy as np
import pandas as pd
import pytest

from utils.base import stats
from utils.base.labels import age_band
from utils.read import calibration, error_plots, label_noise, tidy
from utils.read import errors as E


def toy(
    model="A",
    seed=0,
    errors=(1.0, -1.0, 3.0, -3.0),
    ages=(5, 5, 40, 40),
    races=(0, 0, 1, 1),
    genders=(0, 1, 0, 1),
    probs=None,
    files=None,
) -> pd.DataFrame:
    n = len(errors)
    frame = pd.DataFrame(
        {
            "model": model,
            "seed": seed,
            "file": files or [f"f{i}" for i in range(n)],
            "age_true": np.asarray(ages, float),
            "age_pred": np.asarray(ages, float) + np.asarray(errors, float),
            "race": list(races),
            "gender": list(genders),
            "gender_prob": np.nan if probs is None else list(probs),
        }
    )
    return frame


def test_age_bands_agree_with_the_split_bands():
    ages = np.array([0, 2, 3, 9, 10, 19, 20, 69, 70, 116])
    assert list(tidy.age_bands(ages).codes) == list(age_band(ages))
    assert list(tidy.age_bands([2, 3, 70]).astype(str)) == ["0–2", "3–9", "70+"]


def test_known_mae_and_bias_per_group():
    f = tidy.with_groups(toy())
    t = tidy.group_errors(f, "race_name", n_boot=200).set_index("race_name")
    assert t.loc["White", "MAE"] == pytest.approx(1.0) and t.loc["White", "bias"] == pytest.approx(0.0)
    assert t.loc["Black", "MAE"] == pytest.approx(3.0) and t.loc["Black", "faces"] == 2
    t = tidy.group_errors(f, ["age_band", "gender_name"], n_boot=200)
    row = t[(t.age_band == "40–49") & (t.gender_name == "male")].iloc[0]
    assert row.MAE == 3.0 and row.bias == 3.0 and row.faces == 1
    whole = tidy.group_errors(f, n_boot=200).iloc[0]
    assert whole.MAE == pytest.approx(2.0) and whole.bias == pytest.approx(0.0) and whole.seeds == 1


def test_bootstrap_interval_contains_the_truth_and_narrows_with_more_faces():
    rng = np.random.default_rng(1)
    small, large = rng.normal(2.0, 5.0, 100), rng.normal(2.0, 5.0, 2500)
    lo, hi = stats.bootstrap_interval(small, seed=0)
    assert lo < 2.0 < hi
    lo2, hi2 = stats.bootstrap_interval(large, seed=0)
    assert lo2 < 2.0 < hi2 and hi2 - lo2 < (hi - lo) / 3
    assert hi2 - lo2 == pytest.approx(2 * 1.96 * 5 / 50, rel=0.2)  # the normal theory width


def test_seeds_are_averaged_and_their_spread_widens_the_interval():
    rng = np.random.default_rng(0)
    files = [f"f{i}" for i in range(300)]
    ages = rng.uniform(20, 60, 300)
    same = [
        toy(seed=s, errors=rng.normal(0, 3, 300), ages=ages, races=[0] * 300, genders=[0] * 300, files=files)
        for s in (0, 1, 2)
    ]
    apart = [
        toy(seed=s, errors=rng.normal(4 * s, 3, 300), ages=ages, races=[0] * 300, genders=[0] * 300, files=files)
        for s in (0, 1, 2)
    ]
    a = tidy.group_errors(tidy.with_groups(pd.concat(same)), n_boot=300).iloc[0]
    b = tidy.group_errors(tidy.with_groups(pd.concat(apart)), n_boot=300).iloc[0]
    assert a.seeds == 3 and a.faces == 300
    assert b.bias == pytest.approx(4.0, abs=0.5) and b["bias seed sd"] == pytest.approx(4.0, abs=0.6)
    assert (b["bias hi"] - b["bias lo"]) > 3 * (a["bias hi"] - a["bias lo"])


def test_compare_is_paired_and_says_when_a_difference_is_real():
    rng = np.random.default_rng(2)
    errs = rng.normal(0, 6, 400)
    a = toy("A", errors=errs, ages=[30] * 400, races=[0] * 400, genders=[0] * 400)
    b = toy("B", errors=errs + np.sign(errs) * 0.5, ages=[30] * 400, races=[0] * 400, genders=[0] * 400)
    f = tidy.with_groups(pd.concat([a, b]))
    r = tidy.paired_compare(f, "B", "A").iloc[0]
    assert r.difference == pytest.approx(0.5) and r.lo > 0.4  # paired: every face worse by 0.5
    assert r.verdict == "differs on these faces (one seed: another training run untested)"  # one seed a side
    same = tidy.paired_compare(f, "A", "A").iloc[0]
    assert same.difference == 0 and same.verdict == "not significant"
    assert "(95 % CI" in E.paired_note(tidy.paired_compare(f, "B", "A"))
    # four groups: each interval at 1 - 0.05 / 4, wider than the 95 % one, and the note says so
    f["band"] = np.repeat(["a", "b", "c", "d"], 100).tolist() * 2
    by = tidy.paired_compare(f, "B", "A", by="band")
    assert np.allclose(by.level, 0.9875) and (by.groups == 4).all()
    note = E.paired_note(by)
    assert "(98.8 % CI" in note and "400 faces" not in note and "100 faces; seeds 1, 1: no test)" in note
    assert note.endswith(
        "One seed on a side: only the faces are resampled, so 'differs on these faces' says nothing about another "
        "training run; each interval is widened for the 4 groups (Bonferroni)."
    )


def test_compare_needs_the_faces_and_the_seeds_to_call_a_difference_real():
    """Three seeds a side: a gap on every face that the seeds scatter around is not called real. Resampling three seeds
    narrows the bootstrap interval (it excludes zero below), Welch's test on the seeds' means does not."""
    errs = np.random.default_rng(4).normal(20, 2, 300)  # all positive: each face's MAE moves by the offset exactly
    ages, zeros = [30] * 300, [0] * 300

    def compare(a: list[float], b: list[float]) -> pd.DataFrame:
        runs = [
            toy(name, s, errs + d, ages, zeros, zeros) for name, ds in (("A", a), ("B", b)) for s, d in enumerate(ds)
        ]
        return tidy.paired_compare(tidy.with_groups(pd.concat(runs)), "B", "A")

    assert compare([0, 0.05, -0.05], [1, 1.05, 0.95]).iloc[0].verdict == "differs"
    scattered = compare([0, 1, -1], [1.5, 2.5, 0.5])
    r = scattered.iloc[0]
    assert r.lo > 0 and r["seeds p"] == pytest.approx(0.14, abs=0.01) and r.seeds == "3, 3"
    assert r.verdict == "differs on these faces; not shown across the seeds (seeds' p ≥ 0.05)"
    note = E.paired_note(scattered)
    assert (
        "300 faces; seeds 3, 3: Welch p = 0.14) — differs on these faces; not shown across the seeds (seeds' p ≥ 0.05)."
        in note
    )
    assert note.endswith(
        "'differs' needs both the faces (the interval excludes zero) and the seeds (Welch across the runs' means)."
    )


def test_ece_floor_is_what_a_calibrated_head_scores_on_a_finite_test_set():
    p = np.random.default_rng(5).uniform(0, 1, 3000)
    floor, high = calibration.ece_floor(p)
    assert 0.005 < floor < high < 0.04  # about sqrt(p(1 - p) / faces per bin) summed over bins: far from 0 on 3,000
    assert calibration.ece_floor(np.repeat(p, 10))[0] < floor / 2  # ten times the faces: about a third of it
    assert calibration.ece_floor(np.r_[np.zeros(50), np.ones(50)]) == (0.0, 0.0)  # certain labels: no sampling noise


def test_ece_of_a_calibrated_toy_is_near_zero_and_of_an_overconfident_one_is_not():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 20000)
    y = rng.uniform(0, 1, 20000) < p
    assert calibration.expected_calibration_error(p, y) < 0.02
    sharp = np.where(p > 0.5, 1.0, 0.0)
    assert calibration.expected_calibration_error(sharp, y) == pytest.approx(0.25, abs=0.02)
    assert calibration.expected_calibration_error(np.array([1.0, 0.0]), np.array([1, 0])) == 0


def test_gender_accuracy_threshold_table_and_calibration_summary():
    f = tidy.with_groups(toy(probs=(0.2, 0.9, 0.6, 0.4), genders=(0, 1, 0, 1)))
    acc = tidy.group_accuracy(f, n_boot=100).iloc[0]
    assert acc.accuracy == pytest.approx(0.5)
    t = calibration.threshold_table(f, thresholds=(0.5, 0.7)).set_index("threshold")
    assert t.loc[0.5, "all"] == pytest.approx(0.5) and t.loc[0.7, "all"] == pytest.approx(0.75)
    assert t.loc[0.7, "males"] == 1.0 and t.loc[0.7, "females"] == 0.5 and t.loc[0.5, "ages 0–9"] == 1.0
    s = calibration.summary(f).iloc[0]
    assert s.accuracy == pytest.approx(0.5) and s.share_female == 0.5 and s.seeds == 1
    assert "ECE 0." in calibration.note(calibration.summary(f)) and "of 1 seeds above that" in calibration.note(
        calibration.summary(f)
    )
    wrong = dict(errors=(0.0,) * 400, ages=(30,) * 400, races=(0,) * 400, genders=(1, 0) * 200)
    sharp = tidy.with_groups(toy(probs=(0.01, 0.99) * 200, **wrong))  # confidently wrong on every face
    assert calibration.summary(sharp).iloc[0].above_floor == 1
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 1, 400)
    base = dict(errors=(0.0,) * 400, ages=(30,) * 400, races=(0,) * 400)
    honest = [toy("C", s, probs=p, genders=tuple((rng.random(400) < p).astype(int)), **base) for s in (0, 1)]
    three = tidy.with_groups(pd.concat(honest + [toy("C", 2, probs=(0.01, 0.99) * 200, **wrong)]))
    assert calibration.summary(three).iloc[0].above_floor == 1  # the two calibrated seeds stay below their floor
    assert list(calibration.summary_table(f).columns) == [
        "seeds",
        "accuracy",
        "accuracy sd",
        "ECE",
        "ECE sd",
        "ECE if calibrated",
        "ECE if calibrated, 95 % below",
        "seeds above it",
        "mean P(female)",
        "share female",
    ]


def run_record(variant, seed, gender=True):
    files = ["5_1_2_20170101000000001.jpg.chip.jpg", "71_0_3_20170101000000002.jpg.chip.jpg"]
    p = {"file": files, "age_true": [5, 71], "age_pred": [-2.0, 60.0]}
    if gender:
        p.update(gender_true=[1, 0], gender_prob=[0.7, 0.2])
    return {"variant": variant, "seed": seed, "predictions": p}


def test_frame_from_runs_parses_groups_and_drops_shared_runs():
    runs = [
        run_record("article network", 0),
        run_record("article network", 1),
        run_record("MSE regression", 0, gender=False),
        run_record("separate age network", 0, gender=False),
    ]
    f = tidy.frame_from_runs(runs, rename={"MSE regression": "separate age network"})
    assert list(f.model.cat.categories) == ["article network", "separate age network"]
    assert len(f) == 6 and f.groupby("model", observed=True).seed.nunique().tolist() == [2, 1]
    age_only = f[f.model == "separate age network"]
    assert age_only.gender_prob.isna().all() and age_only.gender.tolist() == [1, 0]  # gender from the file name
    assert f.race_name.astype(str).tolist()[:2] == ["Asian", "Indian"] and f.age_band.astype(str).tolist()[:2] == [
        "3–9",
        "70+",
    ]
    assert f.error.tolist()[:2] == [-7.0, -11.0]
    r = E.prediction_range(f)
    assert r.loc["article network", "below 0 per seed"] == "1, 1" and r.loc["article network", "lowest"] == -2.0
    kids = E.age_range_table(f, 3, 10).set_index("model")
    assert kids.loc["article network", "below 0 y, per seed (of 2)"] == "1, 1"
    assert kids.loc["article network", "seeds"] == 2 and kids.loc["separate age network", "seeds"] == 1
    assert tidy.frame_from_runs(runs, keep=["article network"]).model.nunique() == 1


def test_shrinkage_recovers_slope_and_crossing():
    ages = np.arange(1, 91, dtype=float)
    f = tidy.with_groups(toy(errors=(0.5 * ages + 15) - ages, ages=ages, races=[0] * 90, genders=[0] * 90))
    s = E.shrinkage(f).iloc[0]
    assert s.slope == pytest.approx(0.5) and s["crossing age"] == pytest.approx(30.0)
    # two seeds, slopes 0.8 and 0.99 (crossings 40 and 100): the mean line (slope 0.895, intercept 4.5) crosses at
    # 42.9, not at the mean of the two crossings (70): a slope near 1 must not blow the average up
    two = pd.concat(
        [
            toy(seed=0, errors=(0.8 * ages + 8) - ages, ages=ages, races=[0] * 90, genders=[0] * 90),
            toy(seed=1, errors=(0.99 * ages + 1.0) - ages, ages=ages, races=[0] * 90, genders=[0] * 90),
        ]
    )
    m = E.shrinkage(tidy.with_groups(two)).iloc[0]
    assert m.slope == pytest.approx(0.895, abs=0.006) and m["crossing age"] == pytest.approx(4.5 / 0.105, abs=0.01)
    assert m["slope sd"] == pytest.approx(np.std([0.8, 0.99], ddof=1), abs=0.006) and m.seeds == 2
    assert np.isnan(s["slope sd"]) and s.seeds == 1  # one seed: no spread


def test_label_noise_from_duplicate_groups():
    groups = {
        "a": [(30, 0), (30, 0)],
        "b": [(10, 1), (14, 1)],
        "c": [(50, 0), (52, 1)],
        "d": [(20, 0), (20, 0), (26, 0)],
    }
    rows = [(h, age, gender) for h, labels in groups.items() for age, gender in labels]
    rows += [("e", 40, 0), ("", 33, 1), ("f", -1, 0), ("f", 70, 0)]  # no copy, no hash, an unlabelled copy
    files = pd.DataFrame(rows, columns=["hash", "age", "gender"]).assign(file=lambda t: [f"{i}.jpg" for i in t.index])
    gaps = label_noise.duplicate_age_gaps(files)
    assert gaps["age range"].tolist() == [0, 4, 2, 6] and gaps["mean pair gap"].tolist() == [0, 4, 2, 4]
    s = label_noise.summary(gaps)
    assert s["groups"] == 4 and s["ages_differ"] == 3 and s["gender_differs"] == 1 and s["largest_gap"] == 6
    assert s["noise_sd"] == pytest.approx(np.sqrt((0 + 16 + 4 + 24) / 4 / 2))
    assert "4 groups" in label_noise.note(s)
    assert label_noise.summary(label_noise.duplicate_age_gaps(files.iloc[:0])) == {"groups": 0}


def test_worst_errors_extremes_and_imbalance():
    f = tidy.with_groups(
        pd.concat([toy(errors=(1, -1, 30, -3), races=(0, 0, 1, 1)), toy(seed=1, errors=(1, -1, 10, -3))])
    )
    w = E.worst_errors(f, "A", n=2)
    assert w.file.tolist() == ["f2", "f3"] and w.error.tolist() == [20.0, -3.0]
    many = tidy.with_groups(
        toy(errors=[1.0] * 30 + [9.0] * 30, ages=[30] * 60, races=[0] * 30 + [1] * 30, genders=[0] * 60)
    )
    note = E.extremes_note(tidy.group_errors(many, "race_name", n_boot=200), "A", "race_name")
    assert "worst for Black 9.0" in note and "do not overlap" in note and "picked after looking" in note
    table = E.extremes_table({"race_name": tidy.group_errors(many, "race_name", n_boot=200)}).iloc[0]
    assert table["worst MAE (95 % CI)"].startswith("Black: 9.0") and table.intervals == "apart" and table.by == "race"
    labels = pd.DataFrame({"age": [1, 30, 30, 80], "gender": [0, 1, 1, 0], "race": [0, 0, 2, 4]})
    counts = E.imbalance(labels, "age", "race")
    assert counts.loc["all", "all"] == 4 and counts.loc["30–39", "White"] == 1
    assert "Female share 50.0%" in E.share_note(labels)


def test_error_plots_draw_the_tables_errors_computes():
    import matplotlib.pyplot as plt

    f = tidy.with_groups(pd.concat([toy(), toy(model="B", errors=(2.0, -2.0, 1.0, -1.0))]))
    curve = E.error_curve(f, width=10, n_boot=50)
    by_band_race = tidy.group_errors(f, ["age_band", "race_name"], n_boot=50)
    labels = pd.DataFrame({"age": [1, 30, 30, 80], "gender": [0, 1, 1, 0], "race": [0, 0, 2, 4]})
    figures = [
        error_plots.plot_error_curves(curve, min_faces=1),
        error_plots.plot_band_race_heatmaps(by_band_race, ["A", "B"], min_faces=1),
        error_plots.plot_imbalance(labels),
    ]
    assert [len(fig.axes) for fig in figures] == [3, 3, 2]  # two heatmaps and their shared colour bar
    plt.close("all")


def test_children_gender_note_sets_each_age_group_against_its_own_majority():
    ages = [1, 1, 1, 5, 5, 5, 5, 5]  # under 3: two boys of three; under 10: five girls of eight
    genders = [0, 0, 1, 1, 1, 1, 1, 0]
    f = tidy.with_groups(toy(errors=[0.0] * 8, ages=ages, races=[0] * 8, genders=genders, probs=[0.5] * 8))
    f["model"] = "article network"
    kids = pd.DataFrame({"under_10": [True], "accuracy": [0.6]})
    band = pd.DataFrame({"model": ["article network"], "age_band": ["0–2"], "accuracy": [0.55]})
    note = calibration.children_gender_note(f, band, kids)
    assert note.endswith("under 10 'female' scores 62.5%, under 3 'male' scores 66.7%.")


def test_resolution_note_judges_by_the_wider_of_the_bootstrap_and_the_seeds_t_interval():
    errs = np.random.default_rng(6).normal(20, 2, 400)  # all positive: each seed's MAE moves by its offset
    runs = [toy("A", s, errs + d, [30] * 400, [0] * 400, [0] * 400) for s, d in enumerate([0.0, 0.3, -0.3])]
    overall = tidy.group_errors(tidy.with_groups(pd.concat(runs)), n_boot=300)
    r = overall.iloc[0]
    t_half = 4.303 * r["MAE seed sd"] / np.sqrt(3)  # t(0.975, 2) · sd / √3
    assert t_half > (r["MAE hi"] - r["MAE lo"]) / 2  # three seeds: the bootstrap is the narrower
    note = E.resolution_note(overall, 0.5)
    assert f"the seeds' t-interval ± {t_half:.2f} y" in note
    assert t_half == pytest.approx(4.303 * 0.3 / np.sqrt(3), rel=1e-3) and note.endswith(
        "a 0.5 y difference is smaller than the wider of the two."  # t_half 0.75 y; the bootstrap's half is narrower
    )


def test_each_group_gets_its_own_holm_adjusted_seed_test():
    """Two bands, three seeds a side: the steady gap differs, the scattered one only on its faces; each row carries
    its own Holm-adjusted p (the smaller p times two, the larger kept at least as large)."""
    errs = np.random.default_rng(7).normal(20, 2, 200)
    ages, zeros = [30] * 200, [0] * 200
    offsets = {"A": ([0, 0.05, -0.05], [0, 1, -1]), "B": ([1, 1.05, 0.95], [1.5, 2.5, 0.5])}  # per band: steady, wide
    runs = []
    for name, (steady, wide) in offsets.items():
        for s in range(3):
            e = errs + np.r_[np.full(100, steady[s]), np.full(100, wide[s])]
            runs.append(toy(name, s, e, ages, zeros, zeros).assign(band=["steady"] * 100 + ["wide"] * 100))
    by = tidy.paired_compare(tidy.with_groups(pd.concat(runs)), "B", "A", by="band").set_index("band")
    raw = [stats.t_df_p([1, 1.05, 0.95], [0, 0.05, -0.05])[2], stats.t_df_p([1.5, 2.5, 0.5], [0, 1, -1])[2]]
    assert by.loc["steady", "seeds p"] == pytest.approx(2 * min(raw)) and by.loc["wide", "seeds p"] == pytest.approx(
        max(max(raw), 2 * min(raw))
    )
    assert by.loc["steady", "verdict"] == "differs"
    assert by.loc["wide", "verdict"] in (
        "differs on these faces; not shown across the seeds (seeds' p ≥ 0.05)",
        "not significant",
    )
    assert E.paired_note(by.reset_index()).endswith("so it holds for all of them together at 95 %.")


def test_one_run_needs_two_seeds_to_be_read_against():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        stats.one_run_against(0.5, [0.4])


def test_resolution_note_with_one_seed_has_one_width():
    errs = np.random.default_rng(8).normal(20, 2, 300)
    overall = tidy.group_errors(tidy.with_groups(toy("A", 0, errs, [30] * 300, [0] * 300, [0] * 300)), n_boot=200)
    note = E.resolution_note(overall, 0.5)
    assert "one seed, so no seed spread, 1 seed)" in note and note.endswith("than that uncertainty.")


def test_group_gap_cancels_each_seeds_offset_that_separate_intervals_carry():
    """Women 2 y above men in every seed, each seed shifting every face by its own offset: the two groups' own
    intervals overlap (the offsets widen both), the gap within each seed does not carry them and is called real."""
    rng = np.random.default_rng(8)
    genders = [0] * 200 + [1] * 200

    def model(gap: float) -> pd.DataFrame:
        runs = []
        for s, offset in enumerate((0.0, 6.0, -6.0)):
            errs = offset + rng.normal(0, 3, 400) + gap * np.asarray(genders)
            runs.append(toy("A", s, errs, [30] * 400, [0] * 400, genders))
        return tidy.with_groups(pd.concat(runs))

    f = model(2.0)
    own = tidy.group_errors(f, "gender_name", n_boot=300).set_index("gender_name")
    assert own.loc["female", "bias lo"] < own.loc["male", "bias hi"]  # apart groups' intervals overlap
    gap = tidy.group_gap(f, "A", by=None, n_boot=300).iloc[0]
    assert gap.difference == pytest.approx(2.0, abs=0.8) and 0 < gap.lo < gap.hi < 4 and gap.verdict == "differs"
    note = E.paired_note(tidy.group_gap(f, "A", by=None, n_boot=300), "bias")
    assert "bias female − male: +" in note and "400 faces; seeds 3: t-test p < 0.01) — differs." in note
    assert note.endswith("and the seeds (a t-test of the per-seed gaps against zero).")
    assert tidy.group_gap(model(0.0), "A", by=None, n_boot=300).iloc[0].verdict == "not significant"


def test_group_gap_by_band_widens_and_adjusts_for_the_bands_and_names_what_it_cannot_compare():
    genders = [0] * 100 + [1] * 100
    runs = [toy("A", s, np.r_[np.zeros(100), np.full(100, 3.0)] + s, [30] * 200, [0] * 200, genders) for s in range(3)]
    runs += [toy("A", s, [1.0, 2.0], [70, 70], [0, 0], [0, 0], files=["o1", "o2"]) for s in range(3)]  # men only
    gap = tidy.group_gap(tidy.with_groups(pd.concat(runs)), "A", n_boot=200)
    assert list(gap.age_band) == ["30–39"] and gap.attrs["empty"] == ["70+"]  # 70+ has no women: named, not tested
    assert gap.iloc[0].level == pytest.approx(0.95) and gap.iloc[0].difference == pytest.approx(3.0)
    note = E.paired_note(gap, "bias")
    assert note.endswith("No faces on one side in 70+: left out.") and "seeds 3: t-test p < 0.01" in note
    assert tidy.group_gap(tidy.with_groups(pd.concat(runs)), "B").attrs["missing"] == ["B"]
