"""Training rules of the 64 px decomposition: precise BatchNorm for validation, learning-rate schedules."""

import keras
import numpy as np
import pytest

from utils.base.profiles import PROFILES, RULE_DEFAULTS, Profile
from utils.nets.models import ARTICLE
from utils.train.callbacks import PreciseBatchNorm, remeasure_batchnorm, rule_callbacks
from utils.train.training import train_run


def test_rules_at_their_defaults_leave_every_profile_identity_unchanged():
    for p in PROFILES.values():
        key = p.training_key()
        assert set(key) >= {"name", "image_size", "epochs", "patience", "batch_size", "min_epochs"}
        assert all(k not in key for k in RULE_DEFAULTS if getattr(p, k) == RULE_DEFAULTS[k])
    assert PROFILES["laptop-precise-bn"].training_key()["val_bn"] == "precise"
    assert PROFILES["laptop-plateau"].training_key()["lr_schedule"] == "plateau"
    # each arm changes one thing from the laptop rule
    base = PROFILES["laptop"].to_dict()
    for arm in ("laptop-precise-bn", "laptop-long", "laptop-plateau"):
        changed = {k for k, v in PROFILES[arm].to_dict().items() if v != base[k]} - {"name", "description"}
        assert changed in ({"val_bn"}, {"lr_schedule"}, {"patience", "epochs"}), (arm, changed)


def test_remeasured_statistics_are_the_batches_own_and_leave_the_model_as_it_was():
    inputs = keras.Input((3,))
    bn = keras.layers.BatchNormalization()
    model = keras.Model(inputs, bn(inputs))
    rng = np.random.default_rng(0)
    batches = [
        rng.normal(loc=[1.0, -2.0, 5.0], scale=[1.0, 2.0, 0.5], size=(256, 3)).astype("float32") for _ in range(4)
    ]
    ((mean, var),) = remeasure_batchnorm(model, batches)
    assert np.allclose(mean, np.mean([b.mean(0) for b in batches], axis=0), atol=1e-4)
    assert np.allclose(var, np.mean([b.var(0) for b in batches], axis=0), rtol=1e-3)
    assert np.allclose(bn.moving_mean.numpy(), 0) and np.allclose(bn.moving_variance.numpy(), 1)  # untouched
    assert bn.momentum == 0.99
    with pytest.raises(ValueError, match="at least one batch"):
        remeasure_batchnorm(model, [])


def test_precise_batchnorm_sets_the_statistics_validation_uses():
    inputs = keras.Input((3,))
    bn = keras.layers.BatchNormalization()
    model = keras.Model(inputs, bn(inputs))
    batch = np.full((8, 3), 4.0, "float32") + np.arange(8, dtype="float32")[:, None]
    cb = PreciseBatchNorm([batch])
    cb.set_model(model)
    cb.on_test_begin()
    assert np.allclose(bn.moving_mean.numpy(), 7.5) and np.allclose(bn.moving_variance.numpy(), np.var(np.arange(8)))


@pytest.mark.parametrize("rule", [{"val_bn": "precise"}, {"lr_schedule": "plateau"}, {"lr_schedule": "cosine"}])
def test_each_rule_trains(small_data, rule):
    profile = Profile("tiny-rule", "synthetic", 32, epochs=2, patience=2, batch_size=32, **rule)
    record = train_run(ARTICLE, small_data, profile, seed=0, verbose=0)
    assert record.epochs_run == 2 and np.isfinite(record.metrics["loss"])
    assert {k: record.profile[k] for k in rule} == rule


def test_unknown_rules_are_refused(small_data):
    with pytest.raises(ValueError, match="lr_schedule"):
        rule_callbacks(Profile("x", "synthetic", 32, 1, 1, lr_schedule="warm"), small_data, ARTICLE)
    with pytest.raises(ValueError, match="val_bn"):
        rule_callbacks(Profile("x", "synthetic", 32, 1, 1, val_bn="exact"), small_data, ARTICLE)


def test_a_profile_can_train_on_a_fixed_sample_of_the_training_faces(small_data):
    from dataclasses import replace

    from utils.nets.models import ARTICLE
    from utils.train.pipeline import select_rows, training_rows
    from utils.train.training import train_run

    sample = replace(PROFILES["smoke"], name="sample", epochs=1, train_faces=30)
    rows = training_rows(small_data, ARTICLE, sample)
    assert (
        len(rows) == 30 and set(rows) <= set(select_rows(small_data, "train", ARTICLE)) and list(rows) == sorted(rows)
    )
    assert list(training_rows(small_data, ARTICLE, sample)) == list(rows)  # the same sample every time, any seed
    assert sample.training_key()["train_faces"] == 30 and "train_faces" not in PROFILES["laptop"].training_key()
    assert PROFILES["class"].train_faces and PROFILES["class"].data == "real"
    run = train_run(ARTICLE, small_data, sample, seed=3, verbose=0)
    assert run.data["train"] == 30 and run.data["test"] == len(small_data.indices("test"))
