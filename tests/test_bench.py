"""The benchmark harness measures both ways in child processes and reports ratios (tiny synthetic run)."""

import math

from utils import bench


def test_prep_and_train_benchmarks_report_ratios_and_memory(tmp_path):
    rows = bench.bench_prep(size=32, synthetic=60) + bench.bench_train(
        sizes=(32,), steps=2, warmup=1, batch=16, synthetic=60
    )
    by = {r["measure"].split(" (")[0].split(",")[0]: r for r in rows}
    assert by["data preparation"]["ours"] > 0 and by["data preparation"]["plain"] > 0
    assert by["cached reload"]["ours"] < 2
    train = next(r for r in rows if r["measure"].startswith("training at 32 px"))
    assert train["ours"] > 0 and train["plain"] > 0 and math.isclose(train["ratio"], train["ours"] / train["plain"])
    rss = [r for r in rows if "peak RSS" in r["measure"]]
    assert all(0.05 < r["ours"] < 20 and 0.05 < r["plain"] < 20 for r in rss)


def test_full_profile_epoch_timer_runs():
    rows = bench.bench_epoch(synthetic=40)  # one 128-px epoch over the ~28 training faces of a tiny synthetic set
    assert rows[0]["ours"] > 0 and "full-profile epoch" in rows[0]["measure"]
