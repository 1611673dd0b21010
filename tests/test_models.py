import keras
import numpy as np
import pytest

from utils.nets import heads
from utils.nets.augment import AugmentConfig
from utils.nets.models import ARTICLE, ModelConfig, build_model
from utils.train.experiments import EXPERIMENTS


def test_article_network_matches_the_article():
    model = build_model(ARTICLE, 128)
    assert model.count_params() == 1_158_274
    kinds = [
        "BatchNormalization" if isinstance(layer, keras.layers.BatchNormalization) else type(layer).__name__
        for layer in model.layers
    ]
    block = ["Conv2D", "BatchNormalization", "Activation", "MaxPooling2D"]
    assert kinds == ["InputLayer"] + block * 4 + [
        "Flatten",
        "Dropout",
        "Dense",
        "BatchNormalization",
        "Activation",
        "Dense",
        "Dense",
    ]
    assert model.get_layer("dropout").rate == 0.6
    assert model.get_layer("dense").units == 512
    assert model.loss["age"] == "mse" and model.loss["gender"] == "binary_crossentropy"
    assert model._compile_config.config["loss_weights"] == {"age": 2.0, "gender": 1.0}


def _outputs(tasks: str, head: str) -> dict[str, tuple[int, int]]:
    """The output shapes of a batch of 3 that a head's own description implies (K = 116 ranks for ages 1-116)."""
    width = {"regression": 1, "ce": 116, "or": 115, "coral": 115, "corn": 115}  # K ranks, K - 1 thresholds
    age = (3, width[head])
    return {o: age if o == "age" else (3, 1) for o in heads.TASKS[tasks]}


@pytest.mark.parametrize(
    "tasks, head, shape",
    [("age", k, _outputs("age", k)) for k in heads.AGE_HEADS]
    + [(t, "regression", _outputs(t, "regression")) for t in heads.TASKS if t != "age"],
)
def test_heads_have_the_right_outputs(tasks, head, shape):
    model = build_model(ARTICLE.with_(tasks=tasks, age_head=head), 32)
    out = model(np.zeros((3, 32, 32, 3), "float32"))
    assert {k: tuple(v.shape) for k, v in out.items()} == shape


def test_every_table_variant_builds():
    for exp in EXPERIMENTS.values():
        for v in exp.variants:
            model = build_model(v.config, 64, compile=True)
            assert model.count_params() > 0, (exp.name, v.label)


def test_variants_change_what_they_say():
    relu_bn = build_model(ARTICLE.with_(order="relu_bn"), 32)
    names = [layer.name for layer in relu_bn.layers]
    assert names.index("conv1_relu") < names.index("conv1_bn")
    assert build_model(ARTICLE.with_(age_relu=True), 32).get_layer("age").activation.__name__ == "relu"
    five = build_model(ARTICLE.with_(conv_filters=(128, 64, 64, 32, 32)), 64)
    assert sum(1 for layer in five.layers if layer.name.startswith("conv") and layer.name[-1].isdigit()) == 5
    assert type(build_model(ARTICLE.with_(optimizer="rmsprop"), 32).optimizer).__name__ == "RMSprop"


def test_config_round_trip_and_bad_values():
    cfg = ARTICLE.with_(augment=AugmentConfig(), tasks="age", age_head="coral")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.digest() != ARTICLE.digest()
    with pytest.raises(ValueError, match="dropout"):
        ARTICLE.with_(dropout=1.5)
    with pytest.raises(ValueError, match="ordinal"):
        ARTICLE.with_(age_head="coral")  # ordinal heads need tasks='age'


def test_augmentation_changes_images_only_in_training():
    model = build_model(ARTICLE.with_(augment=AugmentConfig()), 32)
    aug = model.get_layer("augmentation")
    x = np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32")
    y_train = np.asarray(aug(x, training=True))
    y_infer = np.asarray(aug(x, training=False))
    assert y_train.shape == x.shape and y_train.dtype == np.float32
    assert np.allclose(y_infer, x)
    assert not np.allclose(y_train, x)


def test_new_fields_keep_old_digests_and_slugs():
    from utils.train.store import slug

    assert ARTICLE.digest() == "d905e156"  # the name of the article network's committed runs
    assert slug(ARTICLE) == "c128-64-32-32.bn_relu.d512.do0.6.adam.age_gender.regression-d905e156"
    assert (
        ModelConfig.from_dict(
            {k: v for k, v in ARTICLE.to_dict().items() if k not in ("body", "weights", "freeze_epochs")}
        )
        == ARTICLE
    )
    resnet = ARTICLE.with_(body="resnet50", freeze_epochs=2)
    assert slug(resnet).startswith("resnet50.imagenet.freeze2.d512.do0.6.bn_relu.adam.age_gender.regression-")
    with pytest.raises(ValueError, match="unknown body"):
        ARTICLE.with_(body="vgg")
    with pytest.raises(ValueError, match="pretrained body"):
        ARTICLE.with_(freeze_epochs=2)  # the article's stack has nothing pretrained to freeze


def test_resnet50_body_builds_from_scratch_at_a_small_size():
    model = build_model(ARTICLE.with_(body="resnet50", weights=None, tasks="age", age_head="coral"), 32)
    assert model.get_layer("backbone").count_params() == 23_587_712  # ResNet50 without its top
    assert model(np.zeros((2, 32, 32, 3), "float32"))["age"].shape == (2, 115)


def test_resnet50_says_what_to_do_when_imagenet_weights_cannot_be_fetched(monkeypatch):
    def offline(**kw):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3] name resolution")

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    with pytest.raises(RuntimeError, match=r"ImageNet weights of ResNet50.*~/.keras/models.*weights=None"):
        build_model(ARTICLE.with_(body="resnet50"), 32)


@pytest.mark.parametrize("weights, kept", [("imagenet", True), (None, False)])
def test_a_pretrained_body_keeps_its_batchnorm_statistics_while_fine_tuned(monkeypatch, weights, kept):
    from utils.nets import bodies
    from utils.nets.models import compile_model, set_body_trainable

    def tiny(include_top, weights, input_shape):  # stands in for ResNet50: nothing downloaded
        inputs = keras.Input(input_shape)
        return keras.Model(inputs, keras.layers.BatchNormalization(name="bb_bn")(keras.layers.Conv2D(4, 3)(inputs)))

    monkeypatch.setattr(keras.applications, "ResNet50", tiny)
    monkeypatch.setattr(bodies.ResNet50, "prepare", lambda self, x: x)
    config = ARTICLE.with_(body="resnet50", weights=weights, freeze_epochs=1 if weights else 0, tasks="age")
    model = build_model(config, 16)
    if weights:
        set_body_trainable(model, config, True)  # the fine-tuning phase: every layer trains
        compile_model(model, config)
    bn, conv = (model.get_layer("backbone").layers[i] for i in (2, 1))
    before, kernel = np.array(bn.moving_mean), np.array(conv.kernel)
    model.train_on_batch(np.random.default_rng(0).random((8, 16, 16, 3), "float32") + 5, {"age": np.full(8, 0.3)})
    assert np.array_equal(np.array(bn.moving_mean), before) == kept  # ImageNet's statistics kept when pretrained
    assert not np.array_equal(np.array(conv.kernel), kernel)  # while the weights themselves are fine-tuned


def test_a_new_head_is_one_class():
    assert heads.AGE_HEADS == tuple(k for k, h in heads.HEADS.items() if h.output == "age")
    assert [h.output for h in heads.for_config(ARTICLE)] == ["age", "gender"]
    assert heads.age_head(ARTICLE.with_(tasks="gender")) is None
    with pytest.raises(ValueError, match="unknown age head"):
        ARTICLE.with_(tasks="age", age_head="softmax")


def test_multiply_adds_count_convolutions_and_dense_layers_also_inside_nested_models():
    from utils.nets.models import multiply_adds

    inner_in = keras.Input((8, 8, 2))
    inner = keras.Model(inner_in, keras.layers.Conv2D(4, 3, padding="same")(inner_in))
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Flatten()(keras.layers.BatchNormalization()(inner(inputs)))
    model = keras.Model(inputs, keras.layers.Dense(5)(x))
    assert multiply_adds(model) == 8 * 8 * 3 * 3 * 2 * 4 + 8 * 8 * 4 * 5
    grouped_in = keras.Input((8, 8, 4))
    grouped = keras.Model(grouped_in, keras.layers.Conv2D(4, 3, padding="same", groups=2)(grouped_in))
    assert multiply_adds(grouped) == 8 * 8 * 3 * 3 * 2 * 4  # each output channel sees its group's 2 input channels
    assert multiply_adds(build_model(ARTICLE, 64, compile=False)) < multiply_adds(
        build_model(ARTICLE, 128, compile=False)
    )


@pytest.mark.parametrize("phase2_losses, kept_phase", [([0.7, 0.8], 1), ([0.7, 0.4], 2)])
def test_fine_tuning_keeps_the_frozen_phase_when_it_never_beats_it(monkeypatch, phase2_losses, kept_phase):
    from dataclasses import replace

    from utils.base.profiles import PROFILES
    from utils.train import training

    def tiny(include_top, weights, input_shape):  # stands in for ResNet50: nothing downloaded
        inputs = keras.Input(input_shape)
        return keras.Model(inputs, keras.layers.BatchNormalization(name="bb_bn")(keras.layers.Conv2D(4, 3)(inputs)))

    monkeypatch.setattr(keras.applications, "ResNet50", tiny)
    config = ARTICLE.with_(body="resnet50", weights=None, freeze_epochs=1, tasks="age")
    model = build_model(config, 16)
    calls = []

    def scripted_fit(model, data, config, profile, seed, verbose, callbacks):  # each phase leaves its own weights
        calls.append(profile.epochs)
        for v in model.weights:
            v.assign(np.full(v.shape, float(len(calls)), v.dtype))
        losses = [0.5] if len(calls) == 1 else phase2_losses
        return {"val_loss": losses}, [1.0] * len(losses)

    monkeypatch.setattr(training, "fit", scripted_fit)
    history, seconds = training.fit_in_phases(model, None, config, replace(PROFILES["smoke"], epochs=3))
    assert calls == [1, 2] and history["val_loss"] == [0.5, *phase2_losses] and len(seconds) == 3
    assert all(np.all(np.asarray(v) == kept_phase) for v in model.weights)
    assert int(np.nanargmin(history["val_loss"])) + 1 == (1 if kept_phase == 1 else 3)  # the epoch the record keeps


def test_the_serving_form_of_a_pretrained_body_downloads_nothing(monkeypatch):
    from utils.nets.serving import serving_model

    offline = []

    def tiny(include_top, weights, input_shape):  # ResNet50 as on a machine without the ImageNet file
        if offline and weights is not None:
            raise ValueError("no ImageNet weights here")
        inputs = keras.Input(input_shape)
        return keras.Model(inputs, keras.layers.BatchNormalization(name="bb_bn")(keras.layers.Conv2D(4, 3)(inputs)))

    monkeypatch.setattr(keras.applications, "ResNet50", tiny)
    config = ARTICLE.with_(body="resnet50", freeze_epochs=1, tasks="age")
    trained = build_model(config, 16)
    offline.append(True)
    served = serving_model(trained, config, 16)
    kernels = [np.array(m.get_layer("backbone").layers[1].kernel) for m in (served, trained)]
    assert np.array_equal(*kernels)  # the trained weights, copied over a body built without any
