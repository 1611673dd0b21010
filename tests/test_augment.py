"""The augmentation block: independent random draws per transform, and the stored runs' shared-seed block kept as it
was."""

import json

import numpy as np
import pytest

from utils.nets.augment import AugmentConfig, augmentation
from utils.nets.models import ARTICLE, ModelConfig

X = np.zeros((512, 16, 16, 3), "float32")


def _angle_and_zoom(config: AugmentConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    block = augmentation(config, seed=seed)
    rot = next(layer for layer in block.layers if type(layer).__name__ == "RandomRotation")
    zoom = next(layer for layer in block.layers if type(layer).__name__ == "RandomZoom")
    return (
        np.asarray(rot.get_random_transformation(X, training=True)["angle"]).ravel(),
        np.asarray(zoom.get_random_transformation(X, training=True)["height_zoom"]).ravel(),
    )


def test_each_transform_draws_its_own_numbers():
    angle, zoom = _angle_and_zoom(AugmentConfig(), seed=0)
    assert abs(np.corrcoef(angle, zoom)[0, 1]) < 0.2  # 512 draws: independent streams


def test_the_stored_runs_shared_seed_block_is_kept_as_it_was():
    """Every layer given the run's seed: rotation and zoom moved together (the flaw of the stored augmented runs)."""
    angle, zoom = _angle_and_zoom(AugmentConfig(seeding="shared"), seed=0)
    assert np.corrcoef(angle, zoom)[0, 1] > 0.99


def test_shared_seeding_keeps_the_stored_records_identity():
    shared = ARTICLE.with_(augment=AugmentConfig(seeding="shared"))
    assert "seeding" not in shared.to_dict()["augment"]  # as written before the field existed
    old_record_config = json.loads(json.dumps(shared.to_dict()))
    assert ModelConfig.from_dict(old_record_config) == shared  # a record without the field was trained shared
    fixed = ARTICLE.with_(augment=AugmentConfig())
    assert fixed.to_dict()["augment"]["seeding"] == "per_layer" and fixed.digest() != shared.digest()
    assert ModelConfig.from_dict(fixed.to_dict()) == fixed


def test_unknown_seeding_is_refused():
    with pytest.raises(ValueError, match="seeding"):
        AugmentConfig(seeding="random")
