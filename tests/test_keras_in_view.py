"""The Keras code the notebooks show is the code the engine runs.

Notebook 02 holds the article's network as plain Keras (a cell a student edits); this test executes that cell as
committed and checks it builds what ``models.build_model(ARTICLE)`` builds: same layer types in the same order,
same output shapes, same parameter count, same losses, loss weights and optimizer. Notebooks 04 and 06 show the
engine's own source (``lessons.show_source``), so they cannot drift; a test checks they still show it.
"""
from __future__ import annotations

import nbformat
import pytest

from utils import models
from utils.paths import REPO_ROOT

NB = REPO_ROOT / "notebooks"


def _cell(notebook: str, marker: str) -> str:
    nb = nbformat.read(NB / notebook, as_version=4)
    found = [c.source for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(found) == 1, f"{notebook}: expected one code cell with {marker!r}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def article_network():
    scope: dict = {}
    exec(_cell("02_multi_output_model.ipynb", "def article_network"), scope)  # noqa: S102 - the committed cell
    return scope["article_network"]


def _layers(model):
    # the engine's BatchNorm is the fused subclass of Keras' own; compare with plain Keras BatchNorm
    return [(type(layer).__name__, tuple(layer.output.shape)) for layer in model.layers]


@pytest.mark.parametrize("size", [32, 64])
def test_notebook_02_network_is_the_engines(article_network, size):
    mine = article_network(models.ARTICLE, size)
    engine = models.build_model(models.ARTICLE, size, fused_bn=False)
    assert _layers(mine) == _layers(engine)
    assert mine.count_params() == engine.count_params()
    assert sorted(mine.output_names) == sorted(engine.output_names) == ["age", "gender"]
    for key in ("age", "gender"):
        assert mine.get_layer(key).dtype_policy.compute_dtype == engine.get_layer(key).dtype_policy.compute_dtype == "float32"
    a, b = mine.get_compile_config(), engine.get_compile_config()
    assert a["loss"] == b["loss"] == {"age": "mse", "gender": "binary_crossentropy"}
    assert a["loss_weights"] == b["loss_weights"] == {"age": 2.0, "gender": 1.0}
    assert type(mine.optimizer) is type(engine.optimizer)
    assert float(mine.optimizer.learning_rate) == pytest.approx(float(engine.optimizer.learning_rate))
    assert "mae" in str(a["metrics"]["age"]) and "accuracy" in str(a["metrics"]["gender"])


def test_article_code_has_the_articles_parameter_count(article_network):
    assert article_network(models.ARTICLE, 128).count_params() == 1_158_274


def test_engine_trains_a_model_building_function(small_data, article_network):
    from utils.profiles import Profile
    from utils.training import train_run

    run = train_run(models.ARTICLE, small_data, Profile("tiny", "synthetic", 32, 1, 1, 32), verbose=0, build=article_network)
    assert run.epochs_run == 1 and run.batchnorm == "keras"
    assert {"loss", "age_mae_years", "gender_accuracy"} <= set(run.metrics)


@pytest.mark.parametrize("notebook, shown", [
    ("04_augmentation.ipynb", ["augment.augmentation"]),
    ("06_ordinal_regression.ipynb", ["heads.CoralLogits", "heads.OrdinalLoss", "heads.Coral.layer", "heads.Ordinal.layer"]),
])
def test_notebooks_show_the_engines_own_source(notebook, shown):
    code = "\n".join(c.source for c in nbformat.read(NB / notebook, as_version=4).cells if c.cell_type == "code")
    for name in shown:
        assert name in code and "show_source" in code, f"{notebook} no longer shows {name}"


def test_source_is_a_code_block_of_the_real_function():
    from utils import augment, lessons

    text = lessons.source(augment.augmentation)
    assert text.startswith("```python\ndef augmentation(") and "RandomFlip" in text and text.endswith("```")
