"""Batches for training and evaluation: the rows a run uses, its targets, and the tf.data (or PyDataset) pipeline
from uint8 arrays.

On the TensorFlow backend batches come from tf.data; on another backend (JAX, on a lent GPU machine without
TensorFlow) from a ``keras.utils.PyDataset`` that yields the same batches. TensorFlow is imported only on its backend.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from ..base.profiles import Profile
from ..data import UTKFace
from ..nets.models import ModelConfig
from .machine import (
    tf,
)


def select_rows(data: UTKFace, split: str, config: ModelConfig) -> np.ndarray:
    """Rows of one split usable by ``config`` (each head may restrict them, e.g. an ordinal head's age range)."""
    rows = data.indices(split)
    for head in config.heads:
        rows = head.rows(data.table, rows)
    return rows


def training_rows(data: UTKFace, config: ModelConfig, profile: Profile) -> np.ndarray:
    """The training rows a profile trains on: all of them, or its fixed sample of ``train_faces`` (seed 0 for every
    run, so that runs of different seeds differ by their seed alone)."""
    rows = select_rows(data, "train", config)
    if profile.train_faces and profile.train_faces < len(rows):
        rows = np.sort(np.random.default_rng(0).choice(rows, size=profile.train_faces, replace=False))
    return rows


def targets(data: UTKFace, rows: np.ndarray, config: ModelConfig) -> dict[str, np.ndarray]:
    """Per-output targets, as each head wants them (normalised age, age rank, gender 0/1)."""
    return {head.output: head.targets(data.table, rows) for head in config.heads}


PIPELINE_THREADS = min(4, os.cpu_count() or 1)
"""Batches gathered in parallel and kept ready ahead of the model (fixed: see ``make_pipeline``)."""


class ArrayBatches(keras.utils.PyDataset):
    """The same batches as ``make_pipeline`` for a backend without tf.data: (float images in [0, 1], targets), read
    from the uint8 array one batch at a time, reshuffled after every epoch when ``shuffle``."""

    def __init__(
        self,
        images: np.ndarray,
        y: dict[str, np.ndarray],
        rows: np.ndarray,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        self.images, self.y, self.rows, self.batch_size = images, y, np.asarray(rows), batch_size
        self.shuffle, self.rng = shuffle, np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.rows)) if shuffle else np.arange(len(self.rows))

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def __getitem__(self, i: int):
        pos = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        idx = self.rows[pos]
        order = np.argsort(idx)  # read the memory-mapped cache in order, then restore the batch order
        batch = np.empty((len(idx), *self.images.shape[1:]), np.uint8)
        batch[order] = self.images[idx[order]]
        return batch.astype(np.float32) / 255.0, {k: v[pos] for k, v in self.y.items()}

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(len(self.rows))


class ImagesOnly:
    """The images of a pipeline's batches, without their targets (what BatchNorm re-measuring feeds the model)."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        if isinstance(self.batches, keras.utils.PyDataset):
            for i in range(len(self.batches)):
                yield self.batches[i][0]
        else:
            for x, _ in self.batches:
                yield x


def make_pipeline(
    images: np.ndarray,
    y: dict[str, np.ndarray],
    rows: np.ndarray,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    autotune: bool = False,
):
    """Batches of (float images in [0, 1], targets), gathered from the uint8 array batch by batch (no full copy):
    a tf.data pipeline on TensorFlow, an ``ArrayBatches`` PyDataset on another backend.

    tf.data's autotuner is off by default: inside ``model.fit`` its background thread made the main thread wait
    about 15 s in most epochs on the 2-core CPU (40 s epochs instead of 23 s); fixed parallelism costs nothing.
    """
    if tf is None:
        return ArrayBatches(images, y, rows, batch_size, shuffle, seed)
    size = images.shape[1:]
    ys = {k: tf.constant(v) for k, v in y.items()}
    positions = tf.data.Dataset.range(len(rows))
    if shuffle:
        positions = positions.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)

    def fetch(pos):
        idx = np.asarray(rows)[pos]
        order = np.argsort(idx)  # read the memory-mapped cache in order, then restore the batch order
        batch = np.empty((len(idx), *size), np.uint8)
        batch[order] = images[idx[order]]
        return batch

    def load(pos):
        x = tf.numpy_function(fetch, [pos], tf.uint8)
        x.set_shape((None, *size))
        x = tf.cast(x, tf.float32) / 255.0
        return x, {k: tf.gather(v, pos) for k, v in ys.items()}

    if autotune:
        return positions.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.autotune.enabled = False
    ds = positions.batch(batch_size).map(load, num_parallel_calls=PIPELINE_THREADS).prefetch(PIPELINE_THREADS)
    return ds.with_options(options)
