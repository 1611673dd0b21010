"""Heads and bodies own everything about themselves: walk the registries, and plug in a throw-away head and body.

Adding a head (an L1 age loss) or a body must be one class and one registry entry: its runs are filed under its own
name, its stored test loss is its own loss, the tables name that loss, and its serving model answers in years.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from utils.base.labels import AGE_SCALE
from utils.base.profiles import PROFILES
from utils.nets import bodies, heads, serving
from utils.nets.models import ARTICLE, build_model
from utils.read.tables import metric_label, years_note
from utils.train.store import ResultsStore, slug
from utils.train.training import train_run

TINY = dict(conv_filters=(8, 8), dense_units=16)
ONE_EPOCH = dataclasses.replace(PROFILES["smoke"], epochs=1, patience=1)


class L1(heads.Regression):
    """A regression head trained on the mean absolute error of ages / 116."""

    key, loss_label = "l1", "MAE"

    def loss(self):
        return "mae"

    def loss_note(self, value):
        return f" ({value * AGE_SCALE:.2f} y)"


class Tiny(bodies.Body):
    """One convolution, global pooling and a small dense layer."""

    key = "tiny"

    settings = {"width": "dense_units"}

    def __call__(self, x, fused_bn=True):
        x = keras.layers.Conv2D(4, 3, activation="relu", name="tiny_conv")(x)
        x = keras.layers.GlobalAveragePooling2D(name="tiny_pool")(x)
        return keras.layers.Dense(self.width, activation="relu", name="dense")(x)

    def slug(self):
        return f"tiny.d{self.width}"


@pytest.mark.parametrize("key", list(heads.HEADS))
def test_every_head_says_what_it_is(key):
    h = heads.HEADS[key]
    assert h.key == key and h.output in {o for outs in heads.TASKS.values() for o in outs}
    assert h.loss_label and isinstance(h.ordinal, bool)
    if h.output == "age":
        config = ARTICLE.with_(tasks="age", age_head=key)
        mine = h.configured(config)
        assert mine.slug().startswith(key) and f".{mine.slug()}-" in slug(config)
        assert [type(x) for x in config.heads] == [type(h)] and config.heads is config.heads  # built once
        assert metric_label("age_loss", config) == f"age loss ({h.loss_label}, normalised)"


@pytest.mark.parametrize("key", list(bodies.BODIES))
def test_every_body_names_its_inputs_and_slug(key):
    b = bodies.BODIES[key]
    config = ARTICLE.with_(body=key, weights=None)
    mine = b.configured(config)
    assert slug(config).startswith(mine.slug()) and config.body_net is config.body_net  # built once
    assert type(config.body_net) is type(b) and all(hasattr(mine, a) for a in b.settings)
    if isinstance(b, bodies.KerasApplication):
        assert type(b).prepare is not bodies.KerasApplication.prepare, f"{key} must say how its inputs are prepared"


def test_a_throw_away_head_files_scores_and_serves_as_itself(monkeypatch, small_data, tmp_path):
    """Trained, stored, read back and served: the record is filed and labelled under the head's own name and loss, and
    the trained network's saved serving model answers in years what the record says it predicted."""
    monkeypatch.setitem(heads.HEADS, "l1", L1())
    config = ARTICLE.with_(age_head="l1", **TINY)
    assert ".age_gender.l1-" in slug(config) and "regression" not in slug(config)
    assert years_note("age_loss", 0.05, config) == " (5.80 y)" and "RMSE" in years_note("age_loss", 0.01)
    served_at = tmp_path / "l1.keras"
    run = train_run(config, small_data, ONE_EPOCH, seed=0, verbose=0, precision="float32", save_to=served_at)
    store = ResultsStore(tmp_path / "results")
    where = (ONE_EPOCH, small_data.kind, small_data.fingerprint, small_data.split_id)
    store.write(store.path(config, 0, *where), run)
    (back,) = store.runs(*where, config=config)
    assert back.config == config and back.config.age_head == "l1"
    assert metric_label("loss", back.config) == "test loss (2·MAE + BCE)"
    assert metric_label("age_loss", back.config) == "age loss (MAE, normalised)"
    m = back.metrics
    assert m["age_loss"] == pytest.approx(m["age_mae"], rel=1e-4), "the stored age loss is the head's own (L1) loss"
    served = keras.saving.load_model(served_at, compile=False)
    out = served.predict(small_data.images[small_data.indices("test")], verbose=0)
    np.testing.assert_allclose(out["age"].reshape(-1), back.predictions["age_pred"], atol=0.01)  # stored to 0.01 y


def test_a_throw_away_body_builds_trains_files_and_serves(monkeypatch, small_data, tmp_path):
    monkeypatch.setitem(bodies.BODIES, "tiny", Tiny())
    config = ARTICLE.with_(body="tiny", dense_units=8)
    assert slug(config).startswith("tiny.d8.")
    model = build_model(config, small_data.size, seed=0)
    assert model.get_layer("tiny_conv") is not None and model.count_params() < 1_000
    run = train_run(config, small_data, ONE_EPOCH, seed=0, verbose=0, precision="float32")
    assert np.isfinite(run.metrics["loss"]) and len(run.predictions["age_pred"]) == len(small_data.indices("test"))
    out = serving.serving_model(model, config, small_data.size).predict(small_data.images[:2], verbose=0)
    assert out["age"].shape[0] == 2 and out["female"].shape[0] == 2
    store = ResultsStore(tmp_path / "results")
    where = (ONE_EPOCH, small_data.kind, small_data.fingerprint, small_data.split_id)
    path = store.write(store.path(config, 0, *where), run)
    (back,) = store.runs(*where, config=config)
    assert path.name.startswith("tiny.d8.") and back.config.body == "tiny" and back.config.body_net.width == 8
    assert metric_label("loss", back.config) == "test loss (2·MSE + BCE)"


class MobileNetSmall(bodies.KerasApplication):
    """The teacher's try in the issue: MobileNetV3-Small, which rescales its inputs itself."""

    key, application = "mobilenet_small", "MobileNetV3Small"

    def prepare(self, x):
        return bodies.rgb_0_255(x)


def test_a_new_keras_application_says_how_its_inputs_are_prepared(monkeypatch):
    class Unsaid(bodies.KerasApplication):
        key, application = "unsaid", "MobileNetV3Small"

    monkeypatch.setitem(bodies.BODIES, "mobilenet_small", MobileNetSmall())
    monkeypatch.setitem(bodies.BODIES, "unsaid", Unsaid())
    config = ARTICLE.with_(body="mobilenet_small", weights=None, dense_units=8)
    assert slug(config).startswith("mobilenet_small.scratch.d8.")
    model = build_model(config, 32, seed=0, compile=False)
    assert model.get_layer("to_0_255").scale == 255.0 and model.get_layer("backbone") is not None
    with pytest.raises(NotImplementedError, match="'unsaid' must say how its inputs are prepared"):
        build_model(config.with_(body="unsaid"), 32, seed=0, compile=False)


def test_an_exercise_head_is_added_for_a_while_and_the_registry_put_back():
    from utils import exercises

    before = dict(heads.HEADS)
    with exercises.add_head(exercises.LogAge()) as added:
        assert added.key == "log_age" and heads.HEADS["log_age"].loss_label == "MSE on log(age)"
        assert ARTICLE.with_(age_head="log_age").age_head == "log_age"  # a configuration can name it
    assert heads.HEADS == before
    with pytest.raises(ValueError, match="unknown age head 'log_age'"):
        ARTICLE.with_(age_head="log_age")
    stand_in = L1()
    stand_in.key = "regression"  # a head under a registered head's key: removing it brings the registered one back
    added = exercises.add_head(stand_in)  # a handle, without a block
    assert heads.HEADS["regression"] is stand_in
    added.remove()
    added.remove()  # a second call does nothing
    assert heads.HEADS == before and heads.HEADS["regression"] is before["regression"]
