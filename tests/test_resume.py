"""Runs cut short (a session ending, a kill) resume from their last complete epoch; the GPU path runs on the CPU."""

import contextlib
import json

import numpy as np
import pytest

from utils.base.profiles import PROFILES, Profile
from utils.base.settings import run_settings
from utils.nets.augment import AugmentConfig
from utils.nets.models import ARTICLE
from utils.train import training
from utils.train.callbacks import EpochCheckpoint, read_checkpoint, run_key
from utils.train.training import train_run

FOUR = Profile("four", "synthetic", 32, epochs=4, patience=10, batch_size=32)


class Killed(Exception):
    pass


def test_a_killed_run_resumes_from_its_last_epoch(small_data, tmp_path, monkeypatch):
    ckpt = tmp_path / "ckpt"
    real = EpochCheckpoint.on_epoch_end

    def dies_after_epoch_2(self, epoch, logs=None):
        real(self, epoch, logs)
        if epoch == 1:
            raise Killed  # what a kill after the second epoch's checkpoint leaves behind

    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", dies_after_epoch_2)
    with pytest.raises(Killed):
        train_run(ARTICLE, small_data, FOUR, seed=3, verbose=0, checkpoint_dir=ckpt)
    state = json.loads((ckpt / "state.json").read_text())
    assert state["epochs_done"] == 2 and len(state["history"]["loss"]) == 2 and len(state["epoch_seconds"]) == 2
    assert sorted(p.suffix for p in ckpt.iterdir()) == [".json", ".keras", ".npz"]  # older epochs' files removed

    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", real)
    record = train_run(ARTICLE, small_data, FOUR, seed=3, verbose=0, checkpoint_dir=ckpt)
    assert record.epochs_run == 4 and record.extra["resumed_at"] == [2]
    assert all(len(v) == 4 for v in record.history.values())
    assert record.history["loss"][:2] == state["history"]["loss"]
    assert record.best_epoch == int(np.argmin(record.history["val_loss"])) + 1


def test_a_finished_but_unstored_run_only_restores_its_best_weights(small_data, tmp_path):
    ckpt = tmp_path / "ckpt"
    first = train_run(ARTICLE, small_data, FOUR, seed=4, verbose=0, checkpoint_dir=ckpt)
    again = train_run(ARTICLE, small_data, FOUR, seed=4, verbose=0, checkpoint_dir=ckpt)  # nothing left to train
    assert again.epochs_run == 4 and again.history == first.history
    assert again.metrics["loss"] == pytest.approx(first.metrics["loss"], rel=1e-4)


def test_a_checkpoint_of_another_run_is_ignored(small_data, tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "state.json").write_text(json.dumps({"key": "someone-else", "epochs_done": 2}))
    assert read_checkpoint(ckpt, run_key(ARTICLE, FOUR, 0, small_data)) is None
    assert "another run" in capsys.readouterr().out
    (ckpt / "state.json").write_text("{trunc")
    assert read_checkpoint(ckpt, "k") is None
    assert "unreadable" in capsys.readouterr().out


@pytest.mark.parametrize("augment", [False, True], ids=["final", "augmented"])
def test_the_gpu_path_trains_on_the_cpu(augment):
    """The full profile as a GPU runs it: mixed_float16, the fused BatchNorm in float16 and, where Keras' 'auto' turns
    it on for a GPU, XLA. Keras keeps XLA off for the augmented network (RandomRotation, RandomTranslation and
    RandomZoom do not support it), so that one trains without it on a GPU too.

    Two images, one step: float16 is emulated on a CPU, so this checks that the graph builds, compiles and gives
    finite float32 outputs, not its speed.
    """
    full = PROFILES["full"]
    with run_settings(policy="mixed_float16"):
        config = ARTICLE.with_(augment=AugmentConfig()) if augment else ARTICLE
        model = training.build_model(config, full.image_size, seed=0)
        with pytest.warns(UserWarning, match="doesn't support") if augment else contextlib.nullcontext():
            model.jit_compile = True  # what 'auto' asks for on a GPU
        assert model.jit_compile is (not augment)
        assert model.get_layer("conv1_bn").compute_dtype == "float16"
        x = np.random.default_rng(0).random((2, full.image_size, full.image_size, 3)).astype("float32")
        y = {"age": np.full((2, 1), 0.3, "float32"), "gender": np.array([[0], [1]], "float32")}
        hist = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
        assert np.isfinite(hist.history["loss"][0])
        out = model.predict(x, verbose=0)
        assert out["age"].dtype == np.float32 and out["gender"].dtype == np.float32  # heads stay float32
        assert np.all(np.isfinite(out["age"])) and np.all((out["gender"] >= 0) & (out["gender"] <= 1))


@pytest.mark.parametrize("state", ["[1]", '"text"', json.dumps({"key": "K", "epochs_done": "2"})])
def test_a_checkpoint_state_that_is_not_ours_is_ignored(tmp_path, capsys, state):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "state.json").write_text(state)
    assert read_checkpoint(ckpt, "K") is None
    assert "starts from epoch 1" in capsys.readouterr().out


def test_two_runners_never_share_one_checkpoint_folder(small_data, tmp_path):
    from filelock import FileLock

    ckpt = tmp_path / "ckpt"
    with FileLock(f"{ckpt}.lock"):  # another process is training this run
        with pytest.raises(RuntimeError, match="another process is training this run"):
            train_run(ARTICLE, small_data, FOUR, seed=5, verbose=0, checkpoint_dir=ckpt)
