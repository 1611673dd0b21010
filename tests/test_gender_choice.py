"""Notebook 09's gender choice: the unit or a separate gender network, chosen on validation only, then served."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from utils.nets.models import ARTICLE
from utils.read import model_notes
from utils.train import transfer
from utils.train.runs import Run
from utils.use import predict


def _unit(val: float = 0.80, test: float = 0.95) -> dict:
    return {"layer": "flatten", "features": 8, "val_accuracy": val, "test_accuracy": test, "data": {"test": 100}}


def _network(val_curve: list[float], best: int, test: float = 0.50) -> Run:
    return Run(
        ARTICLE.with_(tasks="gender"),
        0,
        data={"test": 100},
        metrics={"gender_accuracy": test},
        history={"val_accuracy": val_curve, "val_loss": [1.0] * len(val_curve)},
        epochs_run=len(val_curve),
        best_epoch=best,
        params=1234,
        variant=transfer.GENDER_NETWORK,
    )


def test_the_network_wins_on_validation_at_its_kept_epoch_whatever_the_test_says(tmp_path):
    net_file = tmp_path / "net.keras"
    net_file.write_bytes(b"x")
    # kept epoch 2: 0.85 > the unit's 0.80, although its last epoch (0.70) and its test figure (0.50) are worse
    choice = transfer.choose_gender(_unit(), tmp_path / "age.keras", [_network([0.6, 0.85, 0.70], 2)], net_file)
    assert choice.winner == transfer.NETWORK
    assert choice.paths == [tmp_path / "age.keras", net_file] and choice.prefer == {"female": 1}
    assert choice.candidates[transfer.NETWORK]["val_accuracy"] == 0.85
    note = model_notes.gender_choice_note(choice)
    assert "separate gender network (+5.0 points" in note and "0.500" in note and "0.950" in note
    assert "0.916 for its multi-output network" in note and "0.918 for its separate gender network" in note


def test_the_unit_wins_a_tie_and_stands_alone_without_a_network_model(tmp_path):
    net_file = tmp_path / "net.keras"
    net_file.write_bytes(b"x")
    tie = transfer.choose_gender(_unit(val=0.85), tmp_path / "age.keras", [_network([0.85], 1, test=0.99)], net_file)
    assert tie.winner == transfer.UNIT and tie.paths == [tmp_path / "age.keras"] and tie.prefer == {}
    alone = transfer.choose_gender(_unit(), tmp_path / "age.keras", [_network([0.9], 1)], tmp_path / "absent.keras")
    assert list(alone.candidates) == [transfer.UNIT] and alone.winner == transfer.UNIT
    assert "no stored separate gender network" in model_notes.gender_choice_note(alone)


def test_the_stored_seeds_stand_beside_the_candidates_with_an_interval_from_two_seeds(tmp_path):
    net_file = tmp_path / "net.keras"
    net_file.write_bytes(b"x")
    choice = transfer.choose_gender(_unit(), tmp_path / "age.keras", [_network([0.6, 0.85], 2)], net_file)
    seeds = [_network([0.80], 1, test=0.88), _network([0.90], 1, test=0.90)]
    val, test = model_notes.seeds_beside_choice(seeds, choice).splitlines()
    half = 12.706 * np.std([0.8, 0.9], ddof=1) * np.sqrt(1.5)  # t(1, 0.975) · s · √(1 + 1/2)
    interval = f"(95 % prediction interval for one more seed: {0.85 - half:.3f}–{0.85 + half:.3f})"
    assert val.startswith(f"validation: notebook 05's separate gender network 0.850 over 2 seeds {interval}")
    assert val.endswith("gender unit 0.800; separate gender network 0.850") and "0.890 over 2 seeds" in test
    assert "interval" not in model_notes.seeds_beside_choice(seeds[:1], choice).splitlines()[1]  # one seed: no interval
    val, test = model_notes.seeds_beside_choice([], choice).splitlines()  # nothing stored: said, not "nan over 0"
    assert val == "validation: no stored seed of notebook 05's separate gender network to set beside the choice."


def _serving(p_female: float, with_age: bool, name: str) -> keras.Model:
    x = keras.Input((8, 8, 3), dtype="uint8", name="image")
    f = keras.layers.Dense(1, name="pool")(keras.layers.Flatten()(keras.layers.Rescaling(0.0)(x)))
    out = {
        "female": keras.layers.Dense(
            1,
            activation="sigmoid",
            name="female",
            bias_initializer=keras.initializers.Constant(np.log(p_female / (1 - p_female))),
        )(f)
    }
    if with_age:
        out["age"] = keras.layers.Dense(1, name="age", bias_initializer=keras.initializers.Constant(30.0))(f)
    return keras.Model(x, out, name=name)


def test_the_predictor_serves_the_winner_and_a_record_without_val_accuracy_is_measured(tmp_path):
    age, net = _serving(0.2, True, "age_with_unit"), _serving(0.9, False, "gender_net")
    x = np.zeros((4, 8, 8, 3), np.uint8)
    served = predict.Predictor([age, net], prefer={"female": 1}).outputs_at_size(x)
    np.testing.assert_allclose(served["female"].reshape(-1), 0.9, atol=1e-5)
    np.testing.assert_allclose(served["age"].reshape(-1), 30.0, atol=1e-4)
    assert np.allclose(predict.Predictor([age, net]).outputs_at_size(x)["female"], 0.2, atol=1e-5)
    duo = predict.Predictor([age, net], prefer={"female": 1})
    assert duo.model_for("female") is net and duo.model_for("age") is age
    assert predict.Predictor([age, net]).model_for("female") is age

    path = tmp_path / "age.keras"
    age.save(path)

    class Faces:  # the loader's interface that the measurement reads: images, labels, split indices
        images = np.zeros((10, 8, 8, 3), np.uint8)
        table = pd.DataFrame({"gender": [0, 0, 0, 1, 0, 0, 1, 1, 0, 0]})

        def indices(self, split):
            return np.arange(5, 10) if split == "val" else np.arange(5)

    unit = {k: v for k, v in _unit().items() if k != "val_accuracy"}
    assert transfer.unit_val_accuracy(unit, path, Faces()) == 0.6  # P(female) 0.2 everywhere: 3 of 5 men right
