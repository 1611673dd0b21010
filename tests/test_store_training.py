import json
import os
from dataclasses import replace

import numpy as np
import pytest

from utils import __main__ as cli
from utils.base.profiles import PROFILES, Profile, resolve
from utils.base.settings import seeded
from utils.data import datasets
from utils.nets.models import ARTICLE
from utils.train import experiments, runner
from utils.train.pipeline import make_pipeline, targets
from utils.train.runs import Run
from utils.train.store import ResultsStore
from utils.train.training import train_run

TINY = Profile("tiny", "synthetic", 32, epochs=1, patience=1, batch_size=32)


def fake_record(seed=0):
    return {
        "config": ARTICLE.to_dict(),
        "seed": seed,
        "profile": TINY.to_dict(),
        "data": {"kind": "synthetic", "fingerprint": "fp", "split_id": "split"},
        "metrics": {"loss": 0.5},
        "history": {},
        "predictions": {},
    }


def test_store_writes_atomically_and_reads_back(tmp_path):
    store = ResultsStore(tmp_path)
    path = store.path(ARTICLE, 0, TINY, "synthetic", "fp", "split")
    store.write(path, fake_record())
    assert store.read(path).metrics["loss"] == 0.5
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    assert len(store.runs(TINY, "synthetic", "fp", "split", ARTICLE)) == 1
    assert store.runs(TINY, "synthetic", "fp", "other-split") == []


def test_corrupt_and_truncated_files_are_set_aside(tmp_path, capsys):
    store = ResultsStore(tmp_path)
    path = store.path(ARTICLE, 0, TINY, "synthetic", "fp", "split")
    store.write(path, fake_record())
    path.write_text(path.read_text()[:40])  # truncated
    assert store.read(path) is None
    assert len(list(path.parent.glob("*.corrupt"))) == 1 and not path.exists()
    store.write(path, {"seed": 0})  # valid JSON, missing keys
    assert store.read(path) is None
    assert len(list(path.parent.glob("*.corrupt"))) == 2  # a second bad file never overwrites the first
    assert "will be repeated" in capsys.readouterr().out


def test_profiles_are_defined_once_and_resolve():
    assert set(PROFILES) >= {"smoke", "laptop", "full"}
    assert PROFILES["full"].image_size == 128 and PROFILES["full"].epochs == 90
    assert resolve("smoke") is PROFILES["smoke"]
    with pytest.raises(ValueError, match="unknown profile"):
        resolve("huge")


def test_pipeline_scales_and_keeps_targets_aligned(small_data):
    rows = small_data.indices("train")[:10]
    y = targets(small_data, rows, ARTICLE)
    ds = make_pipeline(small_data.images, y, rows, batch_size=4)
    xs, ys = zip(*[(x.numpy(), t) for x, t in ds])
    x = np.concatenate(xs)
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert np.allclose(x * 255, small_data.images[rows], atol=1e-3)
    assert np.allclose(np.concatenate([t["age"] for t in ys]).ravel() * 116, small_data.table.age.to_numpy()[rows])
    assert ds.options().autotune.enabled is False  # the autotuner's thread stalled fit ~15 s an epoch on the CPU


def test_pipeline_with_autotune_gives_the_same_batches(small_data):
    rows = small_data.indices("train")[:12]
    y = targets(small_data, rows, ARTICLE)
    fixed = [x.numpy() for x, _ in make_pipeline(small_data.images, y, rows, 4, shuffle=True, seed=1)]
    tuned = [x.numpy() for x, _ in make_pipeline(small_data.images, y, rows, 4, shuffle=True, seed=1, autotune=True)]
    assert len(fixed) == len(tuned) == 3 and all(np.array_equal(a, b) for a, b in zip(fixed, tuned))


def test_one_smoke_epoch_trains_and_evaluates(small_data):
    record = train_run(ARTICLE, small_data, TINY, seed=0, verbose=0)
    m = record.metrics
    assert record.epochs_run == 1 and record.params > 0
    assert set(m) >= {
        "loss",
        "age_loss",
        "age_mae",
        "age_mae_years",
        "age_rmse_years",
        "gender_loss",
        "gender_accuracy",
    }
    assert m["age_mae_years"] == pytest.approx(m["age_mae"] * 116)
    error = np.subtract(record.predictions["age_pred"], record.predictions["age_true"])  # stored to 0.01 y
    assert m["age_mae_years"] == pytest.approx(np.mean(np.abs(error)), abs=0.01)  # the metric is the predictions' MAE
    assert len(record.predictions["age_pred"]) == len(small_data.indices("test"))
    assert (
        Run.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    )  # storable as it is, and read back the same


@pytest.mark.parametrize(
    "tasks, head",
    [("age", "regression"), ("gender", "regression"), ("age", "ce"), ("age", "or"), ("age", "coral"), ("age", "corn")],
)
def test_single_head_models_train_one_epoch(small_data, tasks, head):
    record = train_run(ARTICLE.with_(tasks=tasks, age_head=head), small_data, TINY, seed=0, verbose=0)
    assert np.isfinite(record.metrics["loss"])
    if head != "regression":
        assert 0 <= record.metrics["rank_consistency"] <= 1
    if head in ("ce", "corn"):  # consistent by construction: cumulative softmax, running products of sigmoids
        assert record.metrics["rank_consistency"] == 1.0


def test_runner_reuses_stored_runs_and_resumes(small_data, tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    calls = []
    real = train_run

    def counting(*args, **kw):
        calls.append(args[0])
        return real(*args, **kw)

    monkeypatch.setattr("utils.train.training.train_run", counting)
    first = runner.run(["bn_order"], TINY, [0], data=small_data, store=store, verbose=0)
    assert len(calls) == 2 and len(first["bn_order"]) == 2
    # interrupted grid: delete one stored run and ask again, only that one is retrained
    next(
        p
        for p in store.folder(TINY, "synthetic", small_data.fingerprint, small_data.split_id).iterdir()
        if "relu_bn" in p.name
    ).unlink()
    runner.run(["bn_order", "optimizer"], TINY, [0], data=small_data, store=store, verbose=0)
    # relu_bn again, and rmsprop; Adam is the article network already stored
    assert len(calls) == 4


def test_auto_profile_is_smoke_without_the_real_data(tmp_path, monkeypatch):
    monkeypatch.delenv("UTKFACE_DIR", raising=False)
    monkeypatch.setattr("utils.data.archive.DATA_DIR", tmp_path)
    assert datasets.resolve_profile("auto").name == "smoke"
    assert resolve("auto", real_data=False).name == "smoke" and resolve("auto", real_data=True, gpu=True).name == "full"


def test_synthetic_faces_are_learnable():
    """A short run learns gender from synthetic faces (BatchNorm averages set to adapt quickly).

    Age is learnt too, but slowly and noisily at this budget (the subject of notebook 02), so only gender is asserted.
    """
    profile = Profile("learn", "synthetic", 32, epochs=12, patience=12, batch_size=32, n_synthetic=600)
    data = datasets.for_profile(profile, verbose=False)
    m = train_run(ARTICLE.with_(bn_momentum=0.9), data, profile, seed=0, verbose=0).metrics
    test = data.indices("test")
    majority = max(data.table.gender.to_numpy()[test].mean(), 1 - data.table.gender.to_numpy()[test].mean())
    assert m["gender_accuracy"] > majority + 0.15


def test_shuffled_pipeline_keeps_images_and_targets_together(small_data):
    rows = small_data.indices("train")
    ds = make_pipeline(
        small_data.images, {"age": rows.reshape(-1, 1).astype("float32")}, rows, batch_size=16, shuffle=True, seed=3
    )
    seen = []
    for x, t in ds:
        idx = t["age"].numpy().ravel().astype(int)
        assert np.allclose(x.numpy() * 255, small_data.images[idx], atol=1e-3)
        seen += idx.tolist()
    assert sorted(seen) == sorted(rows.tolist()) and seen != sorted(seen)


class _FakeModel:
    stop_training = False

    def get_weights(self):
        return []

    def set_weights(self, w):
        pass


def _stop_epoch(losses, patience, min_epochs, nan_at=None):
    from utils.train.callbacks import WarmEarlyStopping

    cb = WarmEarlyStopping(min_epochs, monitor="val_loss", patience=patience, restore_best_weights=True)
    cb.set_model(_FakeModel())
    cb.on_train_begin()
    for epoch, loss in enumerate(losses):
        cb.model.stop_training = epoch == nan_at
        cb.on_epoch_end(epoch, {"val_loss": loss})
        if cb.model.stop_training:
            return epoch + 1, cb.best_epoch + 1
    return len(losses), cb.best_epoch + 1


def test_warm_early_stopping_waits_for_min_epochs_and_keeps_the_best_from_epoch_one():
    worse = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    assert _stop_epoch(worse, patience=2, min_epochs=0) == (3, 1)
    assert _stop_epoch(worse, patience=2, min_epochs=6) == (6, 1)
    late = [0.5, 0.4, 0.3, 0.2, 0.1, 0.2, 0.3, 0.4]  # plain early stopping ends at epoch 7 >= 6: unchanged
    assert _stop_epoch(late, patience=2, min_epochs=6) == _stop_epoch(late, patience=2, min_epochs=0) == (7, 5)
    assert _stop_epoch(worse, patience=9, min_epochs=9, nan_at=1)[0] == 2  # a NaN stop is never overridden


def test_the_replayed_rule_is_the_callbacks_rule():
    """``read.replay.stopped_at`` (the solutions' replays) stops and keeps where ``WarmEarlyStopping`` does."""
    from utils.read.replay import stopped_at

    rng = np.random.default_rng(0)
    for _ in range(300):  # noisy falling curves, with ties, every patience and floor the profiles use and more
        curve = np.round(np.exp(-rng.uniform(0.05, 0.4) * np.arange(30)) + rng.normal(0, 0.05, 30), 2).tolist()
        patience, floor = int(rng.integers(1, 11)), int(rng.integers(0, 12))
        assert stopped_at(curve, patience, floor) == _stop_epoch(curve, patience, floor), (curve, patience, floor)


def test_stored_runs_are_valid_under_their_profiles_min_epochs():
    """Runs stored before ``min_epochs`` existed are kept only if they stopped at or after it (so the rule changes
    nothing)."""
    from utils.base.paths import REPO_ROOT

    for path in (REPO_ROOT / "results").glob("*-*-*/*-seed*.json"):
        rec = json.loads(path.read_text())
        profile = PROFILES.get(rec["profile"]["name"])
        if profile is None or "min_epochs" in rec["profile"]:
            continue
        assert rec["epochs_run"] >= profile.min_epochs or rec["epochs_run"] == profile.epochs, path.name


def test_run_trains_nothing_when_told_not_to(small_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(runner.TRAIN_ENV, "0")
    out = runner.run(["bn_order"], TINY, [0], data=small_data, store=ResultsStore(tmp_path))
    assert out == {"bn_order": []} and not list(tmp_path.rglob("*.json"))
    assert "2 run(s) not stored yet, not trained now" in capsys.readouterr().out


def test_run_refuses_faces_of_another_size_than_its_profile(small_data, tmp_path):
    """A run is filed under its profile: faces loaded for another size (PROFILE = "auto" on a GPU) would mislabel it."""
    with pytest.raises(ValueError, match=r"the faces are 32 px but profile 'wide' trains at 64 px.*for_profile"):
        runner.run(
            ["bn_order"],
            replace(TINY, name="wide", image_size=64),
            [0],
            data=small_data,
            store=ResultsStore(tmp_path, writable=True),
            train_missing=True,
            verbose=0,
        )
    assert not list(tmp_path.rglob("*.json"))


def test_the_store_refuses_a_record_whose_faces_are_not_its_profiles_size(tmp_path):
    """The deeper guard, for any caller of ``train_run``: a record says its faces' size and its profile's."""
    record = fake_record()
    record["data"]["image_size"] = TINY.image_size
    ResultsStore.write(tmp_path / "same.json", record)
    bigger = record | {"data": record["data"] | {"image_size": 2 * TINY.image_size}}
    with pytest.raises(ValueError, match=r"wrong.json: its faces are 64 px but its profile 'tiny' is 32 px"):
        ResultsStore.write(tmp_path / "wrong.json", bigger)
    assert [p.name for p in tmp_path.iterdir()] == ["same.json"]
    ResultsStore.write(tmp_path / "odd.json", record | {"data": None, "profile": []})  # malformed: no size to check


@seeded
def test_bn_probe_measures_without_changing_the_model(small_data, seed=0):
    import keras

    from utils.nets.models import build_model
    from utils.train.probes import BNProbe

    model = build_model(ARTICLE, small_data.size, seed=seed)
    probe = BNProbe(small_data, ARTICLE, batch_size=16, n_batches=2)
    probe.set_model(model)
    probe.on_train_begin()
    before = [w.copy() for w in model.get_weights()]
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [b.momentum for b in bns]
    probe.on_epoch_end(0)
    assert all(
        np.array_equal(a, b) for a, b in zip(before, model.get_weights())
    )  # weights and moving averages restored
    assert [b.momentum for b in bns] == momenta and model.get_layer("dropout").rate == ARTICLE.dropout
    rec = probe.record
    assert all(len(v) == 1 and np.isfinite(v[0]) for v in rec.values())
    # freshly initialised averages (mean 0, variance 1) sit far from the statistics of real activations
    assert rec["bn_mean_gap"][0] > 0.05
    assert rec["precise_train"][0] != rec["moving"][0]
    with pytest.raises(ValueError, match="regression age output"):
        BNProbe(small_data, ARTICLE.with_(tasks="gender"), batch_size=16)


def test_probed_runs_are_stored_apart_and_scored_like_keras(small_data, tmp_path):
    from utils.read import bn_probe

    store = ResultsStore(tmp_path)
    runs = runner.run(
        ["bn_probe"],
        Profile("tiny", "synthetic", 32, epochs=2, patience=2, batch_size=32),
        [0],
        data=small_data,
        store=store,
        verbose=0,
    )["bn_probe"]
    assert len(runs) == 2 and all(p.parent.name == "probes" for p in tmp_path.rglob("*.json"))
    for r in runs:  # the probe's "moving" score is Keras' own validation age MAE
        key = "val_age_mae_years" if "val_age_mae_years" in r.history else "val_mae_years"
        np.testing.assert_allclose(r.probes["bn"]["moving"], r.history[key], rtol=1e-4)
    frame, table = bn_probe.frame(runs), bn_probe.table(runs)
    assert len(frame) == 6 and set(frame.variant) == {"article network", "separate age network (shared draws)"}
    assert set(frame.statistics) == set(bn_probe.SCORINGS)
    assert set(table[bn_probe.LABELS["statistics"]]) == set(bn_probe.SCORINGS.values())
    moving = frame[(frame.statistics == "moving") & (frame.variant == "article network")].iloc[0]
    curve = np.asarray(next(r for r in runs if r.variant == "article network").probes["bn"]["moving"])
    assert moving.lowest == curve.min() and round(moving.lowest, 2) == table[bn_probe.LABELS["lowest"]].iloc[0]
    assert len(bn_probe.verdicts(runs)) == 2


class _Phases(__import__("keras").callbacks.Callback):
    key = "phases"

    def __init__(self):
        super().__init__()
        self.record = []

    def on_epoch_begin(self, epoch, logs=None):
        self.record.append(self.model.get_layer("backbone").trainable)


def test_pretrained_body_trains_frozen_then_unfrozen(small_data, monkeypatch):
    import keras

    def small(
        include_top, weights, input_shape
    ):  # ResNet50 itself is built in test_models; a small stand-in trains fast
        return keras.Sequential([keras.Input(input_shape), keras.layers.Conv2D(4, 3, strides=4)])

    monkeypatch.setattr(keras.applications, "ResNet50", small)
    config = ARTICLE.with_(body="resnet50", weights=None, freeze_epochs=1, tasks="age")
    phases = _Phases()
    run = train_run(
        config,
        small_data,
        Profile("tiny", "synthetic", 32, epochs=2, patience=2, batch_size=64),
        verbose=0,
        probes=[phases],
    )
    assert phases.record == [False, True] and run.epochs_run == 2 and len(run.history["loss"]) == 2


@pytest.mark.parametrize(
    "content, why",
    [
        ("42", "JSON object"),
        ("null", "JSON object"),
        ('"a string"', "JSON object"),
        (json.dumps({**fake_record(), "metrics": {"loss": "low"}}), "not numbers"),
        (json.dumps({**fake_record(), "seed": "0"}), "seed"),
        (json.dumps({**fake_record(), "history": {"loss": 3}}), "history"),
        (json.dumps({**fake_record(), "config": {"dropout": 7}}), "config"),
        (json.dumps(fake_record(seed=1)), "belong in"),  # a seed-1 record filed under seed 0
        (
            json.dumps({**fake_record(), "config": ARTICLE.with_(dropout=0.5).to_dict()}),
            "belong in",
        ),  # another config's record
        (
            json.dumps({**fake_record(), "config": {**ARTICLE.to_dict(), "learning_rate": "0.001"}}),
            "learning_rate must be a number",
        ),
        (json.dumps({**fake_record(), "config": {**ARTICLE.to_dict(), "age_range": [1]}}), "age_range must be 2"),
        (json.dumps({**fake_record(), "metrics": {"loss": float("nan"), "age_mae": float("nan")}}), "not finite"),
        (json.dumps({**fake_record(), "metrics": {"age_mae": 0.1}}), "no 'loss'"),
        (json.dumps({**fake_record(), "history": {"loss": [0.9, 0.8]}, "best_epoch": 3}), "best_epoch 3 is not one"),
        (json.dumps({**fake_record(), "history": {"loss": [0.9]}}), "best_epoch 0 is not one of the 1 epochs"),
        (
            json.dumps({**fake_record(), "profile": PROFILES["smoke"].to_dict()}),
            "belong in smoke-synthetic-",
        ),  # a smoke run filed elsewhere
        (
            json.dumps({**fake_record(), "data": {"kind": "real", "fingerprint": "fp", "split_id": "split"}}),
            "belong in tiny-real-",
        ),
    ],
)
def test_bad_records_are_set_aside_by_the_runner_and_skipped_by_readers(tmp_path, capsys, content, why):
    path = ResultsStore(tmp_path).path(ARTICLE, 0, TINY, "synthetic", "fp", "split")
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert ResultsStore(tmp_path, writable=False).read(path) is None  # a read-only reader: warns, moves nothing
    assert path.read_text() == content and why in capsys.readouterr().out
    assert ResultsStore(tmp_path).read(path) is None and not path.exists()
    assert len(list(path.parent.glob(f"{path.name}.*.corrupt"))) == 1


@pytest.mark.parametrize("make", ["fifo", "directory", "huge"])
def test_a_record_that_is_not_a_regular_small_file_is_refused_without_waiting(tmp_path, capsys, make, monkeypatch):
    import os

    path = ResultsStore(tmp_path).path(ARTICLE, 0, TINY, "synthetic", "fp", "split")
    path.parent.mkdir(parents=True)
    if make == "fifo":
        os.mkfifo(path)  # opening it for reading would block forever
    elif make == "directory":
        path.mkdir()
    else:
        monkeypatch.setattr("utils.train.store.RECORD_LIMIT", 100)
        path.write_text(json.dumps(fake_record()))
    assert ResultsStore(tmp_path, writable=False).read(path) is None
    assert "not a valid run" in capsys.readouterr().out and os.path.lexists(path)
    assert ResultsStore(tmp_path).read(path) is None and not os.path.lexists(path)  # the runner sets it aside


def test_a_killed_writer_leaves_the_old_file_whole(tmp_path, monkeypatch):
    from utils.base import files

    path = tmp_path / "README.md"
    path.write_text("old text\n")

    def dies(*args, **kwargs):
        raise KeyboardInterrupt  # a kill in the middle of the rename, or a full disk (OSError) in the write

    monkeypatch.setattr(files.os, "replace", dies)
    with pytest.raises(KeyboardInterrupt):
        files.write_text(path, "new text that never lands\n")
    assert path.read_text() == "old text\n" and [p.name for p in tmp_path.iterdir()] == ["README.md"]


def test_summary_check_never_moves_a_file(tmp_path, monkeypatch):
    from utils import summary

    folder = tmp_path / "laptop-real-abc123"
    folder.mkdir()
    bad = folder / f"{__import__('utils.train.store', fromlist=['slug']).slug(ARTICLE)}-seed0.json"
    bad.write_text("42")
    summary.results_markdown(root=tmp_path)
    assert bad.read_text() == "42" and not list(folder.glob("*.corrupt"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "final", "--seeds", "-1"], "seed must be in 0..4294967295"),
        (["run", "final", "--seeds", str(2**32)], "seed must be in 0..4294967295"),
        (["table", "final", "--profile", "huge"], "unknown profile 'huge'"),
        (["table", "nope"], "unknown experiment(s) nope"),
    ],
)
def test_cli_checks_arguments_before_loading_data(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(
        "utils.data.datasets.for_profile", lambda *a, **k: pytest.fail("loaded data before checking arguments")
    )
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err


def test_queue_stages_name_live_rows_and_cover_every_augmented_row():
    from utils import queue

    for stage in queue.STAGES:
        for name, labels in stage.rows:
            live = {v.label for v in experiments.get(name).variants if not v.superseded}
            assert set(labels) <= live, (stage.tag, name, set(labels) - live)
    queued = {
        (name, label) for st in queue.STAGES if st.profile == "laptop" for name, labels in st.rows for label in labels
    }
    for name in ("augmentation", "separate_age", "separate_gender", "ordinal"):  # no 64 px table rests on shared draws
        for v in experiments.get(name).variants:
            if v.config.augment is not None and not v.superseded and v.label != "multi-output (augmented)":
                assert (name, v.label) in queued, (name, v.label)


def test_queue_lists_missing_runs_in_priority_order_and_trains_what_fits(small_data, tmp_path, monkeypatch, capsys):
    from utils import queue, timing

    monkeypatch.setattr("utils.train.store.RESULTS_DIR", tmp_path)
    monkeypatch.setattr(timing, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(queue, "LOCK", tmp_path / "queue.lock")
    monkeypatch.setattr("utils.data.datasets.for_profile", lambda *a, **k: small_data)
    stages = (
        queue.Stage("x", "two rows", "laptop", (("bn_order", ("BN -> ReLU", "ReLU -> BN")),)),
        queue.Stage("y", "one row", "full", (("optimizer", ("RMSprop",)),), seeds=(0,), more=(1,)),
    )
    todo = queue.items(stages)
    got = [(i.stage.tag, i.variant, i.seed) for i in todo]
    assert got == [
        ("x", "BN -> ReLU", 0),
        ("x", "ReLU -> BN", 0),
        ("x", "BN -> ReLU", 1),
        ("x", "ReLU -> BN", 1),
        ("y", "RMSprop", 0),
        ("x", "BN -> ReLU", 2),
        ("x", "ReLU -> BN", 2),
        ("y", "RMSprop", 1),
    ]
    # a stored run leaves the queue
    record, laptop = train_run(ARTICLE, small_data, TINY, seed=0, verbose=0).to_dict(), PROFILES["laptop"]
    record |= {"profile": laptop.to_dict(), "data": record["data"] | {"image_size": laptop.image_size}}  # as if 64 px
    ResultsStore.write(todo[0].path, record)
    assert [(i.variant, i.seed) for i in queue.items(stages)][0] == ("ReLU -> BN", 0)
    # with 1 hour, runs of 0.4 h each: two fit, the rest are skipped with a reason; each trains in its own process
    monkeypatch.setattr(queue, "STAGES", stages)
    monkeypatch.setattr(timing, "epoch_seconds", lambda *a, **k: (0.4 * 3600 / 10, "test"))
    monkeypatch.setattr(timing, "expected_epochs", lambda *a, **k: (10.0, "test"))
    calls, clock = [], [1e9]
    monkeypatch.setattr(queue.time, "time", lambda: clock[0])

    def train(cmd, deadline=None, **kw):  # each run takes the 0.4 h it was expected to, or stops at its deadline
        calls.append(cmd)
        if deadline is not None:
            clock[0] = deadline
            return queue.PAST_DEADLINE
        clock[0] += 0.4 * 3600
        return 0

    monkeypatch.setattr(queue, "run_child", train)
    assert queue.main(["--hours", "1"]) == 0
    out = capsys.readouterr().out
    assert len(calls) == 2 and calls[0][-6:] == ["--profile", "laptop", "--seeds", "0", "--only", "ReLU -> BN"]
    assert out.count("skip (needs ~0.4 h") == 5 and "~24 min (10 epochs to go x 144 s" in out
    assert queue.main([]) == 0 and not calls[2:]  # no --hours: list only
    assert "nothing trained" in capsys.readouterr().out
    # --fill: the 0.2 h left after two runs would idle; the first of the shortest skipped runs trains until the deadline
    assert queue.main(["--hours", "1", "--fill"]) == 0
    out = capsys.readouterr().out
    assert len(calls) == 5 and calls[4][-3:] == ["1", "--only", "ReLU -> BN"] and "== start (it cannot end" in out
    assert "stopped at the deadline" in out and "stored" not in out.split("== start")[1]
    monkeypatch.setattr(timing, "epoch_seconds", lambda *a, **k: (0.6 * 3600, "test"))  # two epochs do not fit
    assert queue.main(["--hours", "1", "--fill"]) == 0 and len(calls) == 5
    monkeypatch.setattr(timing, "epoch_seconds", lambda *a, **k: (144.0, "test"))  # 0.4 h a run again, but
    monkeypatch.setattr(timing, "expected_epochs", lambda *a, **k: (40.0, "test"))  # 1.6 h: no next hour finishes it
    assert queue.main(["--hours", "0.5", "--fill"]) == 0 and len(calls) == 5
    assert queue.main(["--hours", "1", "--fill"]) == 0 and len(calls) == 6  # 1.6 h <= 1 h now + 1 h next time
    monkeypatch.setattr(timing, "expected_epochs", lambda *a, **k: (100.0, "test"))  # 4 h: three more hours do not
    assert queue.main(["--hours", "1", "--fill"]) == 0 and len(calls) == 6
    assert queue.main(["--hours", "1", "--fill", "--stretches", "3"]) == 0 and len(calls) == 7  # 4 h <= 1 + 3 x 1 h
    # a run with an epoch checkpoint here goes first, though a fresh one is shorter: its finished epochs are sunk
    rmsprop = next(i.path for i in queue.items(stages) if i.variant == "RMSprop")
    monkeypatch.setattr(
        timing, "checkpoint_state", lambda path: {"epochs_done": 2, "stop": {}} if path == rmsprop else None
    )
    monkeypatch.setattr(timing, "expected_epochs", lambda *a, **k: (40.0, "test"))  # 1.6 h fresh; the resumed one 2 h
    monkeypatch.setattr(timing, "epochs_left", lambda profile, expected, state: expected + (10 if state else 0))
    assert queue.main(["--hours", "1", "--fill"]) == 0 and calls[-1][-1] == "RMSprop"
    with pytest.raises(SystemExit):
        queue.main(["--hours", "1", "--fill", "--stretches", "0"])
    with pytest.raises(SystemExit):
        queue.main(["--hours", "1", "--stretches", "2"])  # without --fill it would change nothing


def test_a_checkpointed_run_is_priced_by_the_epochs_it_has_left():
    from utils import timing

    full = PROFILES["full"]  # patience 10, cap 90
    state = {"epochs_done": 34, "stop": {"wait": 3, "stopped": False}}
    assert timing.epochs_left(full, 42.0, None) == 42.0  # no checkpoint: the whole run
    assert timing.epochs_left(full, 42.0, state) == 8.0  # the expected 42 less the 34 done
    assert timing.epochs_left(full, 30.0, state) == 7.0  # early stopping still waits 10 - 3 epochs
    assert timing.epochs_left(full, 120.0, state) == 56.0  # never past the cap
    assert timing.epochs_left(full, 42.0, state | {"stop": {"stopped": True}}) == 0.0


def test_a_run_is_priced_by_this_machines_stored_runs_before_its_checkpoint(tmp_path, monkeypatch):
    from utils import timing

    full, run = PROFILES["full"], tmp_path / "run.json"
    monkeypatch.setattr(timing, "checkpoint_state", lambda path: {"epoch_seconds": [300.0, 290.0]})  # beside tests

    def price():
        return timing.epoch_seconds(ARTICLE, full, run, None, "cpu A", "float32", measure=False, root=tmp_path)

    assert price() == (295.0, "its checkpoint")  # nothing stored here yet
    kind = {"tasks": ARTICLE.tasks, "augment": ARTICLE.augment}
    stored = {"device": "cpu A", "precision": "float32", "config": kind, "epoch_seconds": [250.0, 210.0, 212.0]}
    folder = tmp_path / "full-real-abc123"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps(stored))
    (folder / "b.json").write_text(json.dumps(stored | {"device": "cpu B", "epoch_seconds": [9.0, 9.0]}))
    assert price() == (211.0, "1 stored run here")  # the first epoch (compiling) left out; another machine ignored


@pytest.mark.parametrize(
    "argv, message", [(["--hours", "-1"], "--hours must be 0 or more"), (["--stages", "z"], "no stage matches")]
)
def test_queue_checks_its_arguments(argv, message, capsys):
    from utils import queue

    with pytest.raises(SystemExit) as exit_:
        queue.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_a_run_in_the_background_prints_one_line_per_epoch(small_data, capsys):
    train_run(ARTICLE, small_data, replace(TINY, epochs=2, patience=2), seed=0, verbose="progress")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert "val_loss" in lines[0] and "best" in lines[0] and "left" in lines[0] and "cap reached" in lines[1]


def test_table_without_the_data_reads_the_stored_runs_and_run_says_one_line(monkeypatch, capsys):
    from utils.data import DatasetNotFound

    def absent(*a, **k):
        raise DatasetNotFound("UTKFace not found: put the archive in data/\nmore help")

    monkeypatch.setattr("utils.data.datasets.for_profile", absent)
    assert cli.main(["table", "bn_order", "--profile", "laptop"]) == 0
    out = capsys.readouterr().out
    assert "UTKFace is not here: showing the stored runs in laptop-real-" in out and "BN -> ReLU" in out
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "bn_order", "--profile", "laptop"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "UTKFace not found" in err and "Traceback" not in err


def test_a_run_leaves_the_callers_precision_and_seed_as_they_were(small_data, monkeypatch):
    import keras

    from utils.base import settings
    from utils.train import machine

    monkeypatch.setenv(machine.PRECISION_ENV, "mixed_bfloat16")  # what 'auto' picks on a bf16 CPU, forced here
    assert machine.resolve_precision("auto") == "mixed_bfloat16"
    before = settings.current()
    record = train_run(ARTICLE, small_data, TINY, seed=11, verbose=0)
    assert record.precision == "mixed_bfloat16" and keras.config.dtype_policy().name == before.policy
    assert settings.same(before, settings.current())


def test_real_data_trains_only_when_asked(monkeypatch):
    monkeypatch.delenv(runner.TRAIN_ENV, raising=False)
    assert runner.may_train(PROFILES["smoke"]) and not runner.may_train(PROFILES["laptop"])
    assert not runner.may_train(PROFILES["full"])  # Run All on a GPU reads the stored runs too
    monkeypatch.setenv(runner.TRAIN_ENV, "1")  # TRAIN = True in a notebook's parameters cell
    assert runner.may_train(PROFILES["laptop"])
    monkeypatch.setenv(runner.TRAIN_ENV, "0")
    assert not runner.may_train(PROFILES["smoke"])


@pytest.mark.parametrize("launch", [None, "1"])
def test_train_auto_goes_back_to_what_the_command_line_said(monkeypatch, launch):
    """TRAIN = True, then "auto" again in one kernel: the tables stop training (unless `render --train` said so)."""
    from utils import course

    monkeypatch.setattr(course, "LAUNCH_TRAIN", launch)
    monkeypatch.setenv(runner.TRAIN_ENV, "unset after the test")  # so that monkeypatch puts back what was there
    monkeypatch.delenv(runner.TRAIN_ENV)
    course.set_train(True)
    assert runner.may_train(PROFILES["laptop"])
    course.set_train("auto")
    assert os.environ.get(runner.TRAIN_ENV) == launch and runner.may_train(PROFILES["laptop"]) == (launch == "1")
    with pytest.raises(ValueError, match="TRAIN must be True, False or 'auto', got 'yes'"):
        course.set_train("yes")


def test_gradient_norms_are_plain_and_the_probe_records_them_per_epoch(small_data):
    """``gradient_norms`` names its columns plainly (the probe reads them), ``loss_gradient_norms`` labels them for a
    reader, and ``GradientProbe`` records one row per shared layer before training and after each epoch."""
    from utils.exercises import GradientProbe
    from utils.train import diagnostics

    config = ARTICLE.with_(conv_filters=(8, 8), dense_units=16)
    shown = diagnostics.loss_gradient_norms(small_data, config, n=32)
    assert list(shown.columns) == ["layer", "age loss (×weight)", "gender loss", "gender / age"]
    assert {"conv1", "conv2", "dense"} <= set(shown.layer) and (shown["age loss (×weight)"] > 0).all()
    np.testing.assert_allclose(shown["gender / age"], shown["gender loss"] / shown["age loss (×weight)"])
    probe = GradientProbe(small_data, config, n=32)
    run = train_run(
        config, small_data, replace(TINY, epochs=2, patience=2), seed=0, verbose=0, precision="float32", probes=[probe]
    )
    rec = run.probes["gradients"]
    layers = len(shown)
    assert rec["epoch"] == [0] * layers + [1] * layers + [2] * layers and rec["layer"][:layers] == shown.layer.tolist()
    assert all(np.isfinite(rec["age"])) and all(g > 0 for g in rec["gender"])


def test_an_exercise_run_says_the_same_line_whether_trained_or_read_back(small_data, tmp_path, capsys, monkeypatch):
    from utils import exercises
    from utils.course import Session

    monkeypatch.delenv(runner.TRAIN_ENV, raising=False)  # a synthetic profile trains unasked: seconds
    session = Session(TINY, small_data, ResultsStore(tmp_path, writable=True), seeds=None, precision="float32")
    trained = exercises.run(ARTICLE, session)
    first = capsys.readouterr().out.strip()
    again = exercises.run(ARTICLE, session)
    second = capsys.readouterr().out.strip()
    assert first.startswith("trained and stored ") and second.startswith("read from the store: ")
    assert first.removeprefix("trained and stored ") == second.removeprefix("read from the store: ")
    assert again.metrics == trained.metrics and f"{trained.epochs_run} epochs on a" in second
    with pytest.raises(ValueError, match="the faces are 32 px but profile 'wide' trains at 64 px"):
        exercises.run(ARTICLE, session, seed=1, prof=replace(TINY, name="wide", image_size=64))


def test_a_session_clock_says_how_long_and_on_what(small_data, tmp_path):
    import time

    from utils.course import Session

    session = Session(TINY, small_data, ResultsStore(tmp_path), seeds=None, precision="float32")
    line = session.clock()
    assert line.startswith("This copy ran from its setup cell to here in 0 s: profile 'tiny', synthetic faces, ")
    assert "float32" in line and line.endswith(".")
    session.started = time.perf_counter() - 150
    assert " in 2.5 min: " in session.clock()
