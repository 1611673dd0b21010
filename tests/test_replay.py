"""Early stopping replayed on a stored curve (utils.read.replay: stopped_at and replay): the solutions of 02, 04-06."""

import math

from utils.nets.models import ARTICLE
from utils.read.replay import replay, stopped_at
from utils.train.runs import Run

CURVE = [1.0, 0.8, 0.7, 0.75, 0.72, 0.71, 0.65, 0.66, 0.67, 0.68, 0.69]  # best at epoch 7, a dip at 3


def test_stopped_at_waits_patience_epochs_after_the_best_and_honours_the_floor_and_the_cap():
    assert stopped_at(CURVE, 2) == (5, 3)  # two epochs without a new best after epoch 3
    assert stopped_at(CURVE, 4) == (11, 7)  # epoch 7 beats 3 in time; four more epochs end it
    assert stopped_at(CURVE, 2, min_epochs=9) == (9, 7)  # the floor keeps it going past epoch 5
    assert stopped_at(CURVE, 10) == (11, 7)  # never patient enough: the curve's end
    assert stopped_at(CURVE, 10, cap=5) == (5, 3)  # the cap cuts the curve first


def test_replay_reads_the_kept_epoch_of_a_multi_output_and_a_single_output_run():
    profile = {"name": "laptop", "min_epochs": 0}
    multi = Run(
        ARTICLE,
        1,
        variant="v",
        profile=profile,
        history={"val_loss": CURVE, "age_mae_years": CURVE, "val_age_mae_years": [10 * x for x in CURVE]},
    )
    row = replay(multi, 2)
    assert row == {
        "variant": "v",
        "seed": 1,
        "patience": 2,
        "stopped at": 5,
        "kept epoch": 3,
        "val loss there": 0.7,
        "val age MAE there (y)": 7.0,
    }
    single = Run(
        ARTICLE.with_(tasks="age"),
        0,
        profile=profile,
        history={"val_loss": CURVE, "mae_years": CURVE, "val_mae_years": [20 * x for x in CURVE]},
    )
    assert replay(single, 4, cap=8)["val age MAE there (y)"] == 13.0  # kept epoch 7 of the first 8
    gender = Run(ARTICLE.with_(tasks="gender"), 0, profile=profile, history={"val_loss": CURVE})
    assert math.isnan(replay(gender, 4)["val age MAE there (y)"])


def test_replay_reads_a_profile_the_course_does_not_name_from_its_record():
    run = Run(ARTICLE, 0, profile={"name": "class-long", "min_epochs": 9}, history={"val_loss": CURVE})
    assert replay(run, 2)["stopped at"] == 9  # its own floor, though 'class-long' is not in PROFILES
    old = Run(ARTICLE, 0, profile={"name": "laptop"}, history={"val_loss": CURVE})  # a record from before min_epochs
    assert replay(old, 2)["stopped at"] == 9  # the laptop profile's floor
