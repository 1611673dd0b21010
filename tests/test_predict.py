"""Using a model: serving models decode as the course scores, the gender unit learns, Grad-CAM maps, and the predict
API and command line answer every photo or say why not (message and exit code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from utils.base import labels
from utils.base.paths import REPO_ROOT
from utils.data.synthetic import draw_face
from utils.nets import heads, serving
from utils.nets.augment import AugmentConfig
from utils.nets.models import ARTICLE, build_model
from utils.train import transfer
from utils.use import faces, loading, predict, saliency
from utils.use import photos as photo_reading
from utils.use.photos import MAX_PHOTO_BYTES

data = pytest.importorskip("skimage.data")
TINY = dict(conv_filters=(8, 8), dense_units=16)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()  # public domain (NASA), 512x512 RGB, one frontal face at about x 177, y 66, 95 px wide


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """An untrained tiny OR-CNN at 64 px with a gender unit, in serving form:
    the shape of the course's default model."""
    config = ARTICLE.with_(tasks="age", age_head="or", augment=AugmentConfig(), **TINY)
    model = serving.serving_model(build_model(config, 64, seed=0), config, 64)
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    transfer.with_gender_head(model, rng.normal(size=(16, 1)), np.zeros(1)).save(path)
    return path


@pytest.fixture(scope="module")
def predictor(model_path) -> predict.Predictor:
    return predict.Predictor([model_path])


@pytest.mark.parametrize("head", heads.AGE_HEADS)
def test_serving_models_decode_as_the_course_scores(head):
    config = ARTICLE.with_(tasks="age" if heads.HEADS[head].ordinal else "age_gender", age_head=head, **TINY)
    trained = build_model(config, 32, seed=0)
    x = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3)).astype("uint8")
    raw = trained.predict(x.astype("float32") / 255, verbose=0)
    out = serving.serving_model(trained, config, 32).predict(x, verbose=0)
    np.testing.assert_allclose(out["age"].reshape(-1), config.heads[0].decode(raw["age"]), atol=1e-3)
    if not heads.HEADS[head].ordinal:
        np.testing.assert_allclose(out["female"].reshape(-1), raw["gender"].reshape(-1), atol=1e-6)
    else:
        np.testing.assert_allclose(out["age_above"], heads.HEADS[head].above(raw["age"]), atol=1e-5)


def test_a_serving_model_loads_without_the_course_package(model_path):
    code = (
        "import keras, numpy as np, sys; m = keras.saving.load_model(sys.argv[1]); "
        "out = m.predict(np.zeros((1, 64, 64, 3), 'uint8'), verbose=0); print(sorted(out))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(model_path)], capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['age', 'age_above', 'female']"


def test_copying_weights_refuses_another_configuration():
    config = ARTICLE.with_(**TINY)
    other = build_model(ARTICLE.with_(conv_filters=(8, 4), dense_units=16), 32, seed=0)
    with pytest.raises(ValueError, match="conv2"):
        serving.serving_model(other, config, 32)


def test_folding_the_standardisation_into_the_unit_keeps_its_answers():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(300, 5)).astype("float32")
    mean, std = x.mean(axis=0), x.std(axis=0)
    inputs = keras.Input((5,))
    head = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="gender")(inputs))
    kernel, bias = transfer.fold(head, mean, std)
    raw = 1 / (1 + np.exp(-(x @ kernel + bias)))
    np.testing.assert_allclose(raw, head.predict((x - mean) / std, verbose=0), atol=1e-5)


def test_the_gender_unit_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2400, 8)).astype("float32")
    y = (x[:, 0] - x[:, 3] > 0).astype("float32")
    head, history = transfer.fit_linear_head(x[:2000], y[:2000], x[2000:], y[2000:], epochs=15, batch_size=64)
    acc = transfer.scores(head.predict(x[2000:], verbose=0), y[2000:])["accuracy"]
    assert acc > 0.93, acc
    assert history["val_loss"][-1] < history["val_loss"][0]


def test_age_distribution_and_interval():
    above = np.r_[np.ones(29), [0.8, 0.5, 0.2], np.zeros(83)]  # P(age > 1 + k): K - 1 = 115 values
    dist = labels.age_distribution(above)
    assert dist.shape == (116,) and dist.sum() == pytest.approx(1.0) and (dist >= 0).all()
    # P(age = 30, 31, 32, 33) = 0.2, 0.3, 0.3, 0.2: the 80 % interval is 30-33 and holds all of the model's probability
    assert labels.age_interval(above) == pytest.approx((30.0, 33.0, 1.0))
    assert labels.age_interval(above, 0.5) == pytest.approx((31.0, 32.0, 0.6))
    bumpy = above.copy()
    bumpy[40] = 0.6  # OR-CNN's probabilities need not fall: they are made non-increasing first
    assert (labels.age_distribution(bumpy) >= 0).all()


def test_the_interval_follows_labels_interval_when_it_changes(predictor, astronaut, monkeypatch):
    monkeypatch.setattr(labels, "INTERVAL", 0.5)
    (face,) = predictor.predict(astronaut)
    assert face.interval == 0.5 and "50% interval" in face.describe()
    assert (face.age_low, face.age_high) == pytest.approx(labels.age_interval(face.age_above, 0.5)[:2])


def test_prefer_takes_an_output_from_the_model_named(model_path, astronaut):
    config = ARTICLE.with_(tasks="age", age_head="or", **TINY)
    age_only = serving.serving_model(build_model(config, 64, seed=1), config, 64)
    both = keras.saving.load_model(model_path)
    crop = [np.asarray(Image.fromarray(astronaut).resize((64, 64)))]
    own = {"first": age_only.predict(np.stack(crop), verbose=0), "second": both.predict(np.stack(crop), verbose=0)}
    first_wins = predict.Predictor([age_only, both]).outputs(crop)
    np.testing.assert_array_equal(first_wins["age_above"], own["first"]["age_above"])
    np.testing.assert_array_equal(first_wins["female"], own["second"]["female"])  # only the second has it
    preferred = predict.Predictor([age_only, both], prefer={"age": 1, "age_above": 1}).outputs(crop)
    np.testing.assert_array_equal(preferred["age_above"], own["second"]["age_above"])
    small = serving.serving_model(build_model(ARTICLE.with_(**TINY), 32, seed=0), ARTICLE.with_(**TINY), 32)
    with pytest.raises(ValueError, match="different sizes"):
        predict.Predictor([both, small])


def test_a_photo_without_a_face_is_answered_whole_by_the_notebook_path(predictor, capsys):
    faces = predictor.predict_or_whole(np.full((120, 160, 3), 200, np.uint8))
    assert len(faces) == 1 and faces[0].box is None and "no face found" in capsys.readouterr().out


def test_grad_cam_refuses_a_target_the_model_cannot_answer():
    config = ARTICLE.with_(tasks="age", age_head="or", **TINY)
    model = serving.serving_model(build_model(config, 32, seed=0), config, 32)
    with pytest.raises(ValueError, match="no 'female' output"):
        saliency.grad_cam(model, np.zeros((32, 32, 3), np.uint8), "gender")


def test_grad_cam_gives_a_normalised_map_for_age_and_gender(model_path, astronaut):
    model = keras.saving.load_model(model_path)
    image = np.asarray(Image.fromarray(astronaut).resize((64, 64)))
    for target in ("age", "gender"):
        cam = saliency.grad_cam(model, image, target)
        assert cam.shape == (64, 64) and cam.min() >= 0 and cam.max() <= 1
    with pytest.raises(ValueError, match="target"):
        saliency.grad_cam(model, image, "race")


def test_the_astronaut_gets_one_face_with_age_interval_and_gender(predictor, astronaut):
    (face,) = predictor.predict(astronaut)
    assert abs(face.box.x - 177) < 20 and abs(face.box.w - 95) < 20
    assert 1 <= face.age <= 116 and 1 <= face.age_low <= face.age_high <= 116 and 0 <= face.female <= 1
    assert json.dumps(face.to_dict())


def test_a_synthetic_face_crop_is_answered_without_the_detector(predictor):
    face_image = np.asarray(draw_face(30, 1, 0, np.random.default_rng(0)))
    (face,) = predictor.predict(face_image, detect=False)
    assert face.box is None and face.age is not None and face.female is not None


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut) -> dict[str, Path]:
    """The astronaut in every form a user might give, and files that are not usable photos."""
    d = tmp_path_factory.mktemp("photos")
    img = Image.fromarray(astronaut)
    paths = {}

    def save(name, image, **kw):
        paths[name.split(".")[0]] = d / name
        image.save(d / name, **kw)

    save("plain.jpg", img)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored lying on its side: viewers rotate it upright
    save("exif.jpg", img.transpose(Image.Transpose.ROTATE_90), exif=exif)
    rgba = img.convert("RGBA")
    rgba.putalpha(200)
    save("alpha.png", rgba)
    save("grey.png", img.convert("L"))
    save("cmyk.jpg", img.convert("CMYK"))
    save("huge.jpg", img.resize((2400, 2400)), quality=60)  # over detect_faces' max_side: downscaled first
    pair = Image.new("RGB", (1024, 512))
    pair.paste(img, (0, 0))
    pair.paste(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (512, 0))
    save("two.jpg", pair)
    small = Image.new("RGB", (512, 512), (128, 128, 128))
    small.paste(img.resize((160, 160)), (176, 176))  # a face of about 30 px
    save("small.jpg", small)
    save("blank.png", Image.new("RGB", (400, 300), (200, 200, 200)))
    (d / "notes.jpg").write_text("this is not a photo\n")
    paths["text"] = d / "notes.jpg"
    return paths


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = predict.main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", ["plain", "exif", "alpha", "grey", "cmyk", "huge"])
def test_the_cli_answers_every_form_of_a_photo(capsys, model_path, photos, kind):
    code, out, err = run_cli(capsys, photos[kind], "--model", model_path)
    assert code == 0, err
    assert out.count("face 1 of 1") == 1 and "age" in out and "P(female)" in out, out


def test_the_cli_answers_several_faces_left_to_right(capsys, model_path, photos):
    code, out, err = run_cli(capsys, photos["two"], "--model", model_path, "--json")
    report = strict_json(out)
    found = report["photos"][0]["faces"]
    assert code == 0 and len(found) == 2 and found[0]["box"]["x"] < found[1]["box"]["x"]
    assert report["device"] == "CPU" or report["device"].startswith("GPU"), report["device"]
    assert "running on" not in err  # --json: the device is in the document, stderr stays empty


def test_the_cli_warns_about_small_faces(capsys, model_path, photos):
    code, out, _ = run_cli(capsys, photos["small"], "--model", model_path)
    assert code == 0 and "small face" in out, out


@pytest.mark.parametrize("kind, says", [("blank", "no face found"), ("text", "not an image")])
def test_the_cli_names_a_photo_it_cannot_answer_and_exits_1(capsys, model_path, photos, kind, says):
    code, out, err = run_cli(capsys, photos[kind], photos["plain"], "--model", model_path)
    assert code == 1
    assert says in err and str(photos[kind]) in err, err
    assert "face 1 of 1" in out  # the other photo is still answered


def strict_json(text: str) -> dict:
    """JSON as any strict parser reads it: NaN and Infinity are not JSON."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_the_cli_names_each_file_that_is_no_photo_and_answers_the_rest(capsys, model_path, photos, tmp_path):
    """A symlink loop, a FIFO, a folder, a link to /dev/zero and a file over the size cap: one line each, never read,
    never waited on; the photo after them is still answered, and the exit code is 1 (README: unreadable photo)."""
    bad = [
        tmp_path / "loop.jpg",
        tmp_path / "pipe.jpg",
        tmp_path / "album.jpg",
        tmp_path / "zero.jpg",
        tmp_path / "big.jpg",
    ]
    bad[0].symlink_to(bad[0])
    os.mkfifo(bad[1])
    bad[2].mkdir()
    bad[3].symlink_to("/dev/zero")
    with open(bad[4], "wb") as f:
        f.write(b"\xff\xd8\xff\xe0")
        f.truncate(MAX_PHOTO_BYTES + 1)  # sparse: nothing is written, nothing may be read
    code, out, err = run_cli(capsys, *bad, photos["plain"], "--model", model_path)
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == len(bad) and "Traceback" not in err, err
    for path, line, says in zip(bad, lines, ["symlink loop", "FIFO", "folder", "not a regular file", "64 MiB"]):
        assert str(path) in line and says in line and "give" in line, line
    assert out.count("face 1 of 1") == 1 and str(photos["plain"]) in out, out


def test_a_big_photo_is_reduced_while_decoding_and_its_boxes_are_in_the_original(predictor, photos, monkeypatch):
    seen = []
    monkeypatch.setattr(photo_reading, "DECODE_SIDE", 600)
    monkeypatch.setattr(predict, "detect_faces", lambda image: seen.append(image.shape) or faces.detect_faces(image))
    (face,) = predictor.predict(photos["huge"])  # 2400 x 2400 JPEG: decoded at 1/4, 600 x 600
    assert seen == [(600, 600, 3)]
    k = 2400 / 512
    assert abs(face.box.x - 177 * k) < 20 * k and abs(face.box.w - 95 * k) < 20 * k, face.box
    assert 1 <= face.age <= 116 and 0 <= face.female <= 1


def test_a_photo_is_converted_once_however_many_faces_it_has(predictor, photos, monkeypatch):
    """Each face is cropped from the photo as read, not from a new conversion of the whole photo."""
    converted = []
    for name in ("_from_array", "_from_pil"):
        original = getattr(photo_reading, name)
        monkeypatch.setattr(photo_reading, name, lambda a, n, original=original: converted.append(n) or original(a, n))
    found = predictor.predict(photos["two"])
    assert len(found) == 2 and len(converted) == 1, converted


def _toy_serving_model(path: Path, shape=(64, 64, 3), age: float = 30.0, female: float = 0.3) -> Path:
    """A uint8-in model whose outputs are constants (its biases): NaN, or a "probability" outside [0, 1], on demand."""
    image = keras.Input(shape, dtype="uint8", name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(image))
    out = {
        name: keras.layers.Dense(
            1, name=name, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(value)
        )(x)
        for name, value in (("age", age), ("female", female))
    }
    keras.Model(image, out).save(path)
    return path


@pytest.mark.parametrize("shape", [(64, 64, 1), (None, None, 3), (64, 32, 3)])
def test_a_model_of_another_input_shape_is_refused_with_exit_2(capsys, photos, tmp_path, shape):
    path = _toy_serving_model(tmp_path / "odd.keras", shape)
    code, out, err = run_cli(capsys, photos["plain"], "--model", path)
    assert code == 2 and out == "" and "Traceback" not in err, err
    (line,) = err.strip().splitlines()
    assert str(path) in line and "shape" in line and "(None, S, S, 3)" in line, line


@pytest.mark.parametrize(
    "record, says",
    [
        ('{"config": {"age_range": [1, 116]', "not valid JSON"),
        ("[1]", "not an object"),
        ("{}", "age_range"),
        ('{"config": {"age_range": "1-116"}}', "age_range"),
        ('{"config": {"age_range": [50, 10]}}', "age_range"),
        ('{"config": {"age_range": [1.5, 116]}}', "age_range"),
        ('{"config": {"age_range": [0, 50]}}', "another model"),
    ],
)
def test_a_bad_run_record_beside_the_model_is_refused_with_exit_2(capsys, model_path, photos, tmp_path, record, says):
    path = tmp_path / "kept.keras"
    path.write_bytes(model_path.read_bytes())
    path.with_suffix(".json").write_text(record)
    code, out, err = run_cli(capsys, photos["plain"], "--model", path)
    assert code == 2 and out == "" and "Traceback" not in err, err
    (line,) = err.strip().splitlines()
    assert "kept.json" in line and says in line, line
    path.with_suffix(".json").write_text('{"config": {"age_range": [1, 116]}}')  # a good record: answered
    assert run_cli(capsys, photos["plain"], "--model", path)[0] == 0


@pytest.mark.parametrize(
    "age, female, says",
    [
        (float("nan"), 0.3, "'age' output is NaN"),
        (30.0, float("nan"), "'female' output is NaN"),
        (30.0, 1.5, "not a probability"),
        (30.0, -0.2, "not a probability"),
    ],
)
def test_a_face_the_model_answers_with_nan_or_no_probability_is_an_error(capsys, photos, tmp_path, age, female, says):
    path = _toy_serving_model(tmp_path / "broken.keras", age=age, female=female)
    code, out, err = run_cli(capsys, photos["plain"], "--model", path, "--json")
    assert code == 1, err
    (face,) = strict_json(out)["photos"][0]["faces"]
    assert face["age"] is None and face["female"] is None and says in face["error"], face
    assert face["box"] is not None
    code, out, err = run_cli(capsys, photos["plain"], "--model", path)
    assert code == 1 and "nan" not in out.lower() and "so male" not in out, out
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert str(photos["plain"]) in line and says in line, err
    (answered,) = predict.Predictor([path]).predict(photos["plain"])
    assert answered.age is None and says in answered.error and "not answered" in answered.describe()


def test_the_cli_refuses_a_missing_model_with_exit_2(capsys, photos, tmp_path):
    with pytest.raises(SystemExit) as stop:
        predict.main([str(photos["plain"]), "--model", str(tmp_path / "nothing.keras")])
    assert stop.value.code == 2 and "no such file" in capsys.readouterr().err


def test_a_training_model_is_refused_with_what_to_do(capsys, photos, tmp_path):
    path = tmp_path / "training.keras"
    build_model(ARTICLE.with_(**TINY), 32, seed=0).save(path)
    code, _, err = run_cli(capsys, photos["plain"], "--model", path)
    assert code == 2 and "not a serving model" in err and "utils.nets.serving convert" in err


def test_the_command_line_runs_as_a_program_without_tensorflow_noise(model_path, photos):
    """As a program, TensorFlow's start-up logging (oneDNN, CUDA probing, absl's note) stays off stderr, which says the
    device once."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "utils.use.predict",
            str(photos["plain"]),
            str(photos["plain"]),
            "--model",
            str(model_path),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("face 1 of 1") == 2
    for noise in ("oneDNN", "cuda", "cuInit", "absl", "I0000", "E0000"):
        assert noise not in done.stderr, done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("running on ") and ("CPU" in line or "GPU" in line), line


def test_the_cli_answers_a_synthetic_face_crop_without_the_detector(capsys, model_path, tmp_path):
    path = tmp_path / "30_1_0_synthetic.jpg"
    draw_face(30, 1, 0, np.random.default_rng(1)).save(path)
    code, out, err = run_cli(capsys, path, "--model", model_path, "--no-detect", "--json")
    (face,) = json.loads(out)["photos"][0]["faces"]
    assert code == 0 and face["box"] is None and 1 <= face["age"] <= 116, err


def test_the_course_model_answers_the_demo_photo():
    """The committed default model (real UTKFace, laptop profile): loads, finds the astronaut, answers in range."""
    try:
        paths, _ = loading.default_models()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    (face,) = predict.predict(photo_reading.demo_photo())
    assert paths and abs(face.box.x - 177) < 20
    assert 1 <= face.age_low <= face.age_high <= 116 and 0 <= face.female <= 1 and 1 <= face.age <= 116


def test_crops_are_resized_as_the_loader_resized_training_images(tmp_path):
    from utils.data.decode import decode_one

    rng = np.random.default_rng(0)
    closer = []
    for k in range(6):
        path = tmp_path / f"{k}.jpg"
        draw_face(int(rng.integers(5, 80)), k % 2, 0, rng).save(path, quality=90)  # a 200 px JPEG, as UTKFace ships
        loader, _ = decode_one(str(path), 64)
        ours = faces.like_training(np.asarray(Image.open(path).convert("RGB")), 64)
        plain = np.asarray(Image.open(path).convert("RGB").resize((64, 64), Image.Resampling.LANCZOS))
        d_ours, d_plain = (np.abs(loader.astype(int) - x).mean() for x in (ours, plain))
        assert d_ours < 1.5, d_ours  # grey levels
        closer.append(d_ours <= d_plain)
    assert sum(closer) >= 5


def test_a_half_written_demo_photo_is_written_again(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setattr("utils.base.paths.BUILD_DIR", tmp_path)
    (tmp_path / "astronaut.png").write_bytes(b"")  # what a killed write used to leave behind
    path = photo_reading.demo_photo_path()
    with Image.open(path) as im:
        assert im.size[0] > 100
    assert [p.name for p in tmp_path.iterdir()] == ["astronaut.png"]


def test_the_default_models_answer_gender_as_notebook_09_chose():
    """Without --model, P(female) comes from whichever gender model did better on validation (notebook 09's choice):
    the kept OR-CNN's unit (its record's val_accuracy) or the separate gender network (its kept epoch)."""
    try:
        paths, prefer = loading.default_models()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    unit = json.loads(transfer.unit_record(paths[0]).read_text())
    network = loading.kept_path(transfer.GENDER_NETWORK).with_suffix(".json")
    record = json.loads(network.read_text())
    history = record["history"].get("val_gender_accuracy", record["history"].get("val_accuracy"))
    network_wins = history[record["best_epoch"] - 1] > unit["val_accuracy"]
    assert (paths, prefer) == (
        ([paths[0], network.with_suffix(".keras")], {"female": 1}) if network_wins else ([paths[0]], {})
    )
    assert predict.Predictor(paths[:1]).prefer == {}  # models given: nothing preferred unless asked


def test_the_coverage_check_counts_faces_the_served_model_puts_on_the_other_side_of_the_record(small_data, tmp_path):
    from utils.read import model_notes
    from utils.use import checks

    config = ARTICLE.with_(tasks="age", age_head="or", **TINY)
    path = tmp_path / "tiny32.keras"
    model = serving.serving_model(build_model(config, 32, seed=0), config, 32)
    transfer.with_gender_head(model, np.random.default_rng(0).normal(size=(16, 1)), np.zeros(1)).save(path)
    served_by = predict.Predictor([path])
    rows = small_data.indices("test")
    served = served_by.outputs_at_size(small_data.images[rows])["female"].reshape(-1).astype(np.float64)
    stored = served.copy()
    stored[:2] = 1.0 - stored[:2]  # as if the record had scored two faces on the other side
    result = checks.interval_coverage(served_by, small_data, "test", stored_female=stored)
    gender = small_data.table.gender.to_numpy()[rows]
    assert result["gender_changed_side"] == 2
    assert result["stored_gender_accuracy"] == pytest.approx(np.mean((stored > 0.5) == gender))
    assert result["changed_farthest"] == pytest.approx(np.max(np.abs(stored[:2] - 0.5)))
    assert f"puts 2 of the {len(rows):,} faces on the other side of 0.5" in model_notes.coverage_note(
        result, "synthetic"
    )
    with pytest.raises(ValueError, match="stored_female has 3 values"):
        checks.interval_coverage(served_by, small_data, "test", stored_female=stored[:3])
