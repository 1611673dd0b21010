import numpy as np
import pytest

from utils.nets import heads
from utils.nets import ordinal as O

H = heads.HEADS


def sig(z):
    return 1 / (1 + np.exp(-z))


def test_label_extension_round_trip():
    ranks = np.array([0, 1, 4, 5])
    levels = O.extend_labels(ranks, 6)
    assert levels.tolist()[2] == [1, 1, 1, 1, 0]
    assert levels.shape == (4, 5)
    assert O.levels_to_rank(levels).tolist() == ranks.tolist()


def test_coral_and_or_loss_match_a_hand_computation():
    z = np.array([[2.0, 0.5, -1.0]], "float32")  # K = 4 ranks, 3 tasks
    y = np.array([[2]])  # levels [1, 1, 0]
    by_hand = -(np.log(sig(2.0)) + np.log(sig(0.5)) + np.log(1 - sig(-1.0)))
    for kind in ("coral", "or"):
        got = float(H[kind].loss()(y, z))
        assert got == pytest.approx(by_hand, rel=1e-5)
    weighted = float(O.ThresholdLoss(importance=[1.0, 0.0, 2.0])(y, z))
    assert weighted == pytest.approx(-(np.log(sig(2.0)) + 2 * np.log(1 - sig(-1.0))), rel=1e-5)


def test_ce_loss_matches_a_hand_computation():
    z = np.array([[1.0, 2.0, 0.5, -1.0]], "float32")
    p = np.exp(z[0]) / np.exp(z[0]).sum()
    assert float(H["ce"].loss()(np.array([[1]]), z)) == pytest.approx(-np.log(p[1]), rel=1e-5)


def test_corn_loss_matches_a_hand_computation():
    z = np.array([[1.0, -0.5, 0.3], [0.2, 0.4, -2.0]], "float32")
    y = np.array([[1], [3]])
    # example 0 (rank 1): task 0 label 1, task 1 label 0, task 2 unused (rank < 2)
    # example 1 (rank 3): all tasks, labels 1, 1, 1
    terms = [np.log(sig(1.0)), np.log(1 - sig(-0.5)), np.log(sig(0.2)), np.log(sig(0.4)), np.log(sig(-2.0))]
    by_hand = -sum(terms) / 5
    assert float(H["corn"].loss()(y, z)) == pytest.approx(by_hand, rel=1e-5)


def test_coral_predictions_are_rank_consistent_on_random_inputs():
    import keras

    layer = O.CoralLogits(20)
    x = np.random.default_rng(0).normal(size=(500, 16)).astype("float32")
    logits = np.asarray(layer(x))
    assert O.rank_consistency(H["coral"].above(logits)) == 1.0
    assert O.rank_consistency(H["corn"].above(np.random.default_rng(1).normal(size=(200, 19)))) == 1.0
    assert O.rank_consistency(H["ce"].above(np.random.default_rng(2).normal(size=(200, 20)))) == 1.0
    assert O.rank_consistency(H["or"].above(np.random.default_rng(3).normal(size=(200, 19)))) < 1.0
    assert keras.saving.get_registered_object("utkface>CoralLogits") is O.CoralLogits


def test_predict_ranks_per_head():
    assert H["ce"].ranks(np.array([[0.1, 3.0, 0.2]])).tolist() == [1]
    assert H["coral"].ranks(np.array([[5.0, 1.0, -3.0]])).tolist() == [2]
    assert H["corn"].ranks(np.array([[5.0, -1.0, 9.0]])).tolist() == [1]  # cumulative product stops at task 1


@pytest.mark.parametrize(
    "kind, y_pred, y_true, expected",
    [
        ("regression", [[0.5], [0.25]], [[0.5], [0.0]], 0.125 * 116),
        ("coral", [[5.0, 5.0, -5.0], [-5.0, -5.0, -5.0]], [[2], [3]], 1.5),
        ("ce", [[0.0, 9.0, 0.0, 0.0], [9.0, 0.0, 0.0, 0.0]], [[1], [2]], 1.0),
    ],
)
def test_mae_years_metric_and_reset(kind, y_pred, y_true, expected):
    m = heads.AgeMAEYears(kind)
    m.update_state(np.array(y_true, "float32"), np.array(y_pred, "float32"))
    assert float(m.result()) == pytest.approx(expected, rel=1e-5)
    m.reset_state()
    assert float(m.result()) == 0.0
    m.update_state(np.array(y_true, "float32"), np.array(y_pred, "float32"))
    assert float(m.result()) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("key", [k for k, h in heads.HEADS.items() if h.ordinal])
def test_each_ordinal_head_counts_the_same_ranks_in_numpy_and_in_keras(key):
    """What a head's metric counts while training (``rank_tensor``) is what it decodes after (``ranks``), and a
    stored metric configuration names its head again."""
    from keras import ops

    head = H[key]
    k = 20 + head.units_per_rank
    z = np.random.default_rng(len(key)).normal(0.0, 2.0, (300, k)).astype("float32")
    assert head.ranks(z).tolist() == ops.convert_to_numpy(head.rank_tensor(z)).astype(int).tolist()
    p = head.above(z)
    assert p.shape == (300, 19) and np.all((p >= 0) & (p <= 1))
    metric = heads.AgeMAEYears(key)
    assert type(metric).from_config(metric.get_config()).head == key


def test_the_age_metric_reads_configurations_saved_before_heads_measured_their_own_errors():
    """A checkpoint saved by the earlier code names the head ``kind`` and carries ``age_scale``."""
    old = heads.AgeMAEYears.from_config({"name": "mae_years", "kind": "coral", "age_scale": 116.0})
    assert old.head == "coral"
