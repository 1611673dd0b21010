import keras
import numpy as np
import pytest

from utils.base.settings import run_settings
from utils.nets.layers import FusedBatchNormalization


@pytest.mark.parametrize("shape", [(16, 6, 6, 8), (64, 12)])
def test_fused_batchnorm_matches_keras(shape):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=shape) * 3 + 1).astype("float32")
    ours, ref = FusedBatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    ours.build(shape)
    ref.build(shape)
    gamma, beta = rng.normal(size=shape[-1]).astype("float32"), rng.normal(size=shape[-1]).astype("float32")
    for layer in (ours, ref):
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    np.testing.assert_allclose(ours(x, training=True), ref(x, training=True), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.moving_mean.numpy(), ref.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.numpy(), ref.moving_variance.numpy(), rtol=1e-4)
    np.testing.assert_allclose(
        ours.moving_variance.numpy(), 0.9 + 0.1 * x.reshape(-1, shape[-1]).var(axis=0), rtol=1e-4
    )
    np.testing.assert_allclose(ours(x, training=False), ref(x, training=False), rtol=1e-4, atol=1e-4)
    assert len(ours.weights) == len(ref.weights) == 4


def test_fused_batchnorm_under_mixed_precision_and_frozen():
    with run_settings(policy="mixed_bfloat16"):
        layer = FusedBatchNormalization()
        x = np.random.default_rng(1).normal(size=(8, 4, 4, 3)).astype("float32")
        y = layer(x, training=True)
        assert keras.backend.standardize_dtype(y.dtype) == "bfloat16" and layer.moving_mean.dtype == "float32"
        layer.trainable = False
        before = layer.moving_mean.numpy().copy()
        layer(x, training=True)  # a frozen layer runs in inference mode and leaves its averages alone
        np.testing.assert_array_equal(layer.moving_mean.numpy(), before)
