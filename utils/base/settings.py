"""Process-wide settings a run changes (Keras' dtype policy and random seeds),
set inside a context that puts them back."""

from __future__ import annotations

import functools
import inspect
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np


@dataclass(frozen=True)
class GlobalState:
    """What ``run_settings`` changes: the dtype policy, Keras' seed, the NumPy and Python generators,
    TensorFlow's seed."""

    policy: str
    keras_seed: int | None
    numpy: Any
    python: Any
    tf_seed: int | None


def _tf_seed() -> int | None:
    try:
        from tensorflow.python.eager import context  # the global seed tf.random.set_seed left, if any
    except ImportError:  # another backend without TensorFlow
        return None
    return context.global_seed()


def current() -> GlobalState:
    """A snapshot of the global settings a run may change (compare two to find a leak)."""
    from keras.src.utils.rng_utils import get_random_seed

    return GlobalState(
        keras.config.dtype_policy().name, get_random_seed(), np.random.get_state(), random.getstate(), _tf_seed()
    )


def same(a: GlobalState, b: GlobalState) -> bool:
    """True when two snapshots agree (NumPy's generator compared by its full state)."""
    na, nb = a.numpy, b.numpy
    same_np = na[0] == nb[0] and np.array_equal(na[1], nb[1]) and tuple(na[2:]) == tuple(nb[2:])
    return (a.policy, a.keras_seed, a.python, a.tf_seed) == (b.policy, b.keras_seed, b.python, b.tf_seed) and same_np


def restore(state: GlobalState) -> None:
    """Put a snapshot back."""
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    keras.config.set_dtype_policy(state.policy)
    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, state.keras_seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    np.random.set_state(state.numpy)
    random.setstate(state.python)
    try:
        import tensorflow as tf

        tf.random.set_seed(state.tf_seed)
    except ImportError:
        pass


@contextmanager
def run_settings(seed: int | None = None, policy: str | None = None) -> Iterator[GlobalState]:
    """Seed everything (``keras.utils.set_random_seed``) and set the dtype policy for the block;
    restore both after it."""
    before = current()
    try:
        if seed is not None:
            keras.utils.set_random_seed(seed)
        if policy is not None:
            keras.config.set_dtype_policy(policy)
        yield before
    finally:
        restore(before)


def seeded(fn: Callable) -> Callable:
    """Decorator: run ``fn`` under ``run_settings(seed)``, with ``seed`` taken from its own ``seed`` argument."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        with run_settings(bound.arguments["seed"]):
            return fn(*args, **kwargs)

    return wrapper
