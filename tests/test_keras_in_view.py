"""The Keras code the notebooks show is the code the engine runs.

The notebooks teach their networks in plain Keras, in cells a student edits or copies; these tests execute each such
cell *as committed* and check that it builds what the engine (``models.build_model``, ``augment.augmentation``,
``heads``) builds, so the two cannot drift apart:

- 02, ``article_network``: same layer types in the same order, output shapes, parameter count, losses, loss weights
  and optimizer as ``models.build_model(ARTICLE)``; the engine trains it (``train_run(..., build=article_network)``);
- 02, ``face_batches`` / ``fit_and_test``: the engine's batches (images, targets, rows), and for one seed the engine's
  training curve and test scores;
- 03, ``search_network``: for every variant of the conv_stack, bn_order and age_relu tables, the same layers, shapes
  and parameter count as the engine's variant, and a ReLU on the age output exactly when the variant has one;
- 04, ``face_augmentation``: the same layers with the same settings and per-layer seeds as the engine's block, and,
  for the same seed, the same transformed images with ``training=True`` (Keras' seeded layers draw the same numbers);
- 05, ``age_network`` / ``gender_network``: the engine's ``tasks="age"`` / ``"gender"`` networks (layers, shapes,
  parameters, loss and metrics per output); the engine trains the age one;
- 06, ``CoralLayer`` / ``coral_loss`` / ``coral_age``: self-contained (keras and numpy only); with the engine's CORAL
  weights the same logits, the engine's loss, and the engine's decoded ages.

Cells whose first line is ``# plain Keras: ...`` may be longer than the course's short cells
(tests/test_notebooks.py); ``test_every_plain_keras_cell_is_held_equal_to_the_engine`` says each one is tested here.
"""

from __future__ import annotations

import ast

import keras
import nbformat
import numpy as np
import pytest

from utils.base import profiles
from utils.base.paths import REPO_ROOT
from utils.nets import augment, models, ordinal
from utils.train import experiments

NB = REPO_ROOT / "notebooks"
PLAIN = "# plain Keras:"
"""The first line of a notebook cell of plain Keras that a test here holds equal to the engine."""
PLAIN_CELLS = {
    "02_multi_output_model.ipynb": "def face_batches",
    "03_architecture_search.ipynb": "def search_network",
    "04_augmentation.ipynb": "def face_augmentation",
    "05_separate_networks.ipynb": "def age_network",
    "06_ordinal_regression.ipynb": "class CoralLayer",
}
"""Each notebook's plain-Keras cell, by a line it holds (notebook 02's network cell, ``def article_network``, is
tested below too; it is the cell a student edits first, so it carries no marker line)."""


def _cell(notebook: str, marker: str) -> str:
    nb = nbformat.read(NB / notebook, as_version=4)
    found = [c.source for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(found) == 1, f"{notebook}: expected one code cell with {marker!r}, found {len(found)}"
    return found[0]


def _run(notebook: str) -> dict:
    scope: dict = {}
    exec(_cell(notebook, PLAIN_CELLS[notebook]), scope)  # noqa: S102 - the committed cell
    return scope


@pytest.fixture(scope="module")
def article_network():
    scope: dict = {}
    exec(_cell("02_multi_output_model.ipynb", "def article_network"), scope)  # noqa: S102 - the committed cell
    return scope["article_network"]


def _layers(model):
    # the engine's BatchNorm is the fused subclass of Keras' own; compare with plain Keras BatchNorm
    return [(type(layer).__name__, tuple(layer.output.shape)) for layer in model.layers]


def test_every_plain_keras_cell_is_held_equal_to_the_engine():
    for path in sorted(NB.glob("*.ipynb")):
        cells = [
            c.source
            for c in nbformat.read(path, as_version=4).cells
            if c.cell_type == "code" and c.source.startswith(PLAIN)
        ]
        expected = [PLAIN_CELLS[path.name]] if path.name in PLAIN_CELLS else []
        assert [m for m in expected if any(m in c for c in cells)] == expected and len(cells) == len(expected), (
            f"{path.name}: a '{PLAIN}' cell needs a test here (PLAIN_CELLS) that holds it equal to the engine"
        )


# ------------------------------------------------------------------ 02: the article's network


@pytest.mark.parametrize("size", [32, 64])
def test_notebook_02_network_is_the_engines(article_network, size):
    mine = article_network(models.ARTICLE, size)
    engine = models.build_model(models.ARTICLE, size, fused_bn=False)
    assert _layers(mine) == _layers(engine)
    assert mine.count_params() == engine.count_params()
    assert sorted(mine.output_names) == sorted(engine.output_names) == ["age", "gender"]
    for key in ("age", "gender"):
        assert (
            mine.get_layer(key).dtype_policy.compute_dtype
            == engine.get_layer(key).dtype_policy.compute_dtype
            == "float32"
        )
    a, b = mine.get_compile_config(), engine.get_compile_config()
    assert a["loss"] == b["loss"] == {"age": "mse", "gender": "binary_crossentropy"}
    assert a["loss_weights"] == b["loss_weights"] == {"age": 2.0, "gender": 1.0}
    assert type(mine.optimizer) is type(engine.optimizer)
    assert float(mine.optimizer.learning_rate) == pytest.approx(float(engine.optimizer.learning_rate))
    assert "mae" in str(a["metrics"]["age"]) and "accuracy" in str(a["metrics"]["gender"])


def test_article_code_has_the_articles_parameter_count(article_network):
    assert article_network(models.ARTICLE, 128).count_params() == 1_158_274


def test_engine_trains_a_model_building_function(small_data, article_network):
    from utils.base.profiles import Profile
    from utils.train.training import train_run

    run = train_run(
        models.ARTICLE, small_data, Profile("tiny", "synthetic", 32, 1, 1, 32), verbose=0, build=article_network
    )
    assert run.epochs_run == 1 and run.batchnorm == "keras"
    assert {"loss", "age_mae_years", "gender_accuracy"} <= set(run.metrics)


@pytest.fixture(scope="module")
def plain_training():
    return _run("02_multi_output_model.ipynb")


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_notebook_02_batches_are_the_engines(small_data, plain_training, split):
    from utils.train.pipeline import make_pipeline, select_rows, targets

    rows = select_rows(small_data, split, models.ARTICLE)
    engine = list(make_pipeline(small_data.images, targets(small_data, rows, models.ARTICLE), rows, 16))
    mine = list(plain_training["face_batches"](small_data, split, 16))
    assert len(mine) == len(engine)
    for (x, y), (ex, ey) in zip(mine, engine):
        assert x.dtype == ex.dtype == "float32"
        np.testing.assert_array_equal(np.asarray(x), np.asarray(ex))
        assert sorted(y) == sorted(ey) == ["age", "gender"]
        for key in y:
            np.testing.assert_array_equal(np.asarray(y[key]), np.asarray(ey[key]))


def test_notebook_02_shuffled_batches_hold_each_training_face_once(small_data, plain_training):
    from utils.train.pipeline import training_rows

    rows = training_rows(small_data, models.ARTICLE, profiles.PROFILES["laptop"])  # all of them: no sample
    seen = np.concatenate([np.asarray(x) for x, _ in plain_training["face_batches"](small_data, "train", 16, True, 3)])
    assert len(seen) == len(rows)

    def fingerprint(images):  # each image's pixel sum, sorted: the same set of faces in any order
        return np.sort(images.reshape(len(images), -1).sum(axis=1))

    np.testing.assert_allclose(fingerprint(seen), fingerprint(small_data.images[rows] / 255.0), rtol=1e-5)


def test_notebook_02_plain_training_is_the_engines(small_data, plain_training, article_network):
    """One seed, the same network, batches and stopping rule: the cell's fit and the engine's give the same curve and
    test scores (the engine without its extras: no epoch floor, Keras' BatchNorm, float32)."""
    from utils.base.profiles import Profile
    from utils.base.settings import run_settings
    from utils.train.training import train_run

    profile = Profile("tiny", "synthetic", 32, epochs=3, patience=1, batch_size=16)
    engine = train_run(
        models.ARTICLE, small_data, profile, seed=5, verbose=0, precision="float32", build=article_network
    )
    with run_settings(5, "float32"):
        model = article_network(models.ARTICLE, small_data.size)
        history, scores = plain_training["fit_and_test"](
            model, small_data, profile.patience, profile.epochs, profile.batch_size, seed=5, verbose=0
        )
    assert len(history.epoch) == engine.epochs_run
    for key in ("loss", "val_loss", "val_age_mae", "val_gender_accuracy"):
        np.testing.assert_allclose(history.history[key], engine.history[key], rtol=1e-4, err_msg=key)
    assert scores["loss"] == pytest.approx(engine.metrics["loss"], rel=1e-4)
    assert scores["age_mae"] * 116 == pytest.approx(engine.metrics["age_mae_years"], rel=1e-4)
    assert scores["gender_accuracy"] == pytest.approx(engine.metrics["gender_accuracy"], abs=1e-6)


def test_source_is_a_code_block_of_the_real_function():
    from utils.read import view

    text = view.source(augment.augmentation)
    assert text.startswith("```python\ndef augmentation(") and "RandomFlip" in text and text.endswith("```")


# ------------------------------------------------------------------ 03: the variants of the architecture search

SEARCH = [(name, v) for name in ("conv_stack", "bn_order", "age_relu") for v in experiments.get(name).variants]


@pytest.fixture(scope="module")
def search_network():
    return _run("03_architecture_search.ipynb")["search_network"]


@pytest.mark.parametrize("variant", [v for _, v in SEARCH], ids=[f"{name}: {v.label}" for name, v in SEARCH])
def test_notebook_03_variants_are_the_engines(search_network, variant):
    c = variant.config
    assert c == models.ARTICLE.with_(conv_filters=c.conv_filters, order=c.order, age_relu=c.age_relu), (
        "the cell's arguments are all that these variants change"
    )
    mine = search_network(64, filters=c.conv_filters, order=c.order, age_relu=c.age_relu)
    engine = models.build_model(c, 64, fused_bn=False)
    assert _layers(mine) == _layers(engine)
    assert mine.count_params() == engine.count_params()
    for model in (mine, engine):
        assert (model.get_layer("age").activation.__name__ == "relu") is c.age_relu
    a, b = mine.get_compile_config(), engine.get_compile_config()
    assert (
        a["loss"] == b["loss"]
        and a["loss_weights"] == b["loss_weights"]
        and type(mine.optimizer) is type(engine.optimizer)
    )


def test_notebook_03_defaults_are_the_articles_network(search_network):
    assert _layers(search_network(64)) == _layers(models.build_model(models.ARTICLE, 64, fused_bn=False))
    with pytest.raises(ValueError, match="order"):
        search_network(32, order="bn-relu")


# ------------------------------------------------------------------ 04: the augmentation block


@pytest.fixture(scope="module")
def face_augmentation():
    return _run("04_augmentation.ipynb")["face_augmentation"]


def _settings(layer) -> dict:
    return {k: v for k, v in layer.get_config().items() if k != "name"}  # factor, fill_mode, value_range, seed, ...


@pytest.mark.parametrize("seed", [0, 7])
def test_notebook_04_block_is_the_engines(face_augmentation, seed):
    mine = face_augmentation(seed)
    engine = augment.augmentation(augment.AugmentConfig(), seed=seed)
    assert [type(layer) for layer in mine.layers] == [type(layer) for layer in engine.layers]
    assert [_settings(layer) for layer in mine.layers] == [_settings(layer) for layer in engine.layers]
    assert len({layer.seed for layer in mine.layers}) == len(mine.layers) == 6, "each layer its own seed"
    images = np.random.default_rng(seed).random((8, 32, 32, 3)).astype("float32")
    for _ in range(2):  # the same draws, call after call (each layer's random stream advances alike)
        np.testing.assert_array_equal(
            np.asarray(mine(images, training=True)), np.asarray(engine(images, training=True))
        )
    np.testing.assert_array_equal(np.asarray(mine(images, training=False)), images)


# ------------------------------------------------------------------ 05: the separate networks


@pytest.fixture(scope="module")
def separate():
    return _run("05_separate_networks.ipynb")


@pytest.mark.parametrize("task", ["age", "gender"])
def test_notebook_05_networks_are_the_engines(separate, task):
    stored = experiments.get(f"separate_{task}").variants[0].config
    assert stored.with_(augment=None) == models.ARTICLE.with_(tasks=task), (
        "the stored runs' networks, less the augmentation"
    )
    mine = separate[f"{task}_network"](64)
    engine = models.build_model(models.ARTICLE.with_(tasks=task), 64, fused_bn=False)
    assert _layers(mine) == _layers(engine)
    assert mine.count_params() == engine.count_params()
    assert mine.output_names == engine.output_names == [task]
    assert (
        mine.get_layer(task).dtype_policy.compute_dtype
        == engine.get_layer(task).dtype_policy.compute_dtype
        == "float32"
    )
    a, b = mine.get_compile_config(), engine.get_compile_config()
    assert a["loss"] == b["loss"] == {task: {"age": "mse", "gender": "binary_crossentropy"}[task]}
    assert b["loss_weights"] == {task: 1.0} and a["loss_weights"] in (None, {task: 1.0})  # one output: weight 1
    metric = {"age": "mae", "gender": "accuracy"}[task]
    assert metric in str(a["metrics"][task]) and metric in str(b["metrics"][task])
    assert type(mine.optimizer) is type(engine.optimizer)


def test_engine_trains_the_separate_age_network(small_data, separate):
    from utils.base.profiles import Profile
    from utils.train.training import train_run

    run = train_run(
        models.ARTICLE.with_(tasks="age"),
        small_data,
        Profile("tiny", "synthetic", 32, 1, 1, 32),
        verbose=0,
        build=lambda config, size: separate["age_network"](size),
    )
    assert run.epochs_run == 1 and "age_mae_years" in run.metrics and "gender_accuracy" not in run.metrics


# ------------------------------------------------------------------ 06: CORAL, self-contained


@pytest.fixture(scope="module")
def coral():
    return _run("06_ordinal_regression.ipynb")


def test_notebook_06_coral_cell_needs_only_keras_and_numpy():
    tree = ast.parse(_cell("06_ordinal_regression.ipynb", PLAIN_CELLS["06_ordinal_regression.ipynb"]))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"keras", "numpy"}


def _compiled_loss(loss, ranks, logits) -> float:
    model = keras.Sequential([keras.Input(logits.shape[1:]), keras.layers.Identity()])
    model.compile(loss=loss)
    return float(model.evaluate(logits, ranks, batch_size=len(logits), verbose=0))


@pytest.mark.parametrize("age_range", [(1, 116), (21, 60)])
def test_notebook_06_coral_is_the_engines(coral, age_range):
    config = models.ARTICLE.with_(tasks="age", age_head="coral", age_range=age_range)
    k = config.heads[0].num_ranks
    engine = models.build_model(config, 32, compile=False).get_layer("age")
    assert isinstance(engine, ordinal.CoralLogits)
    mine = coral["CoralLayer"](k, name="age", dtype="float32")
    features = np.random.default_rng(k).normal(size=(64, engine.kernel.shape[0])).astype("float32")
    mine(features)  # builds it
    assert [tuple(w.shape) for w in mine.weights] == [tuple(w.shape) for w in engine.weights] == [(512, 1), (k - 1,)]
    np.testing.assert_allclose(np.asarray(mine.bias), np.asarray(engine.bias))  # the same starting biases
    mine.set_weights(engine.get_weights())
    logits = np.asarray(engine(features))
    np.testing.assert_allclose(np.asarray(mine(features)), logits, rtol=1e-6, atol=1e-6)
    assert type(mine).from_config(mine.get_config()).num_ranks == k

    rng = np.random.default_rng(0)
    ranks = rng.integers(0, k, size=(64, 1)).astype("int32")  # the engine's targets: age - youngest age, (n, 1)
    for z in (logits, rng.normal(0.0, 4.0, (64, k - 1)).astype("float32"), np.float32(60.0) * np.sign(logits)):
        per_face = np.asarray(coral["coral_loss"](ranks, z))
        np.testing.assert_allclose(per_face, np.asarray(config.heads[0].loss().call(ranks, z)), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            _compiled_loss(coral["coral_loss"], ranks, z),
            _compiled_loss(config.heads[0].loss(), ranks, z),
            rtol=1e-5,
        )  # as a model compiled with each loss reports it
        np.testing.assert_array_equal(coral["coral_age"](z, age_range[0]), config.heads[0].decode(z))


def test_notebook_06_shows_the_engines_own_source():
    """Beside its plain CORAL cell, notebook 06 prints what the four heads share in the engine: layers, loss,
    decoding."""
    code = "\n".join(
        c.source for c in nbformat.read(NB / "06_ordinal_regression.ipynb", as_version=4).cells if c.cell_type == "code"
    )
    for name in ("ordinal.Ordinal.layer", "ordinal.ThresholdLoss", "ordinal.CornLoss", "ordinal.Ordinal.above"):
        assert name in code and "show_source" in code, f"notebook 06 no longer shows {name}"
