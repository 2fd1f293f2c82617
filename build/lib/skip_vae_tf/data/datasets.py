"""The interface every dataset offers the training loop, the evaluators and the summaries.

`images.ImageDataset` and `text.TextDataset` implement it; so can an in-memory dataset
handed to `training.train_and_evaluate(config, workdir, data=...)`.
"""

from typing import Protocol

import numpy as np
import tensorflow as tf


class TrainingBatches(Protocol):
  steps_per_epoch: int

  def epoch(self, epoch: int, skip_batches: int = 0) -> tf.data.Dataset:
    """The batches of `epoch` (a function of the seed and epoch only), after `skip_batches`."""


class Dataset(Protocol):
  name: str
  source: str  # The files and protocol used; recorded with every result.

  def num_examples(self, split: str) -> int:
    """Examples in 'train', 'validation' or 'test'."""

  def labels(self, split: str) -> np.ndarray | None:
    """(N,) int class ids of the split, or None."""

  def first_examples(self, split: str, count: int) -> np.ndarray:
    """The first `count` model inputs of the split (for summaries)."""

  def training_batches(self, batch_size: int, seed: int) -> TrainingBatches:
    """Epochs of full training batches."""

  def evaluation_batches(self, split: str, batch_size: int) -> tf.data.Dataset:
    """Every example of the split once; the last batch may be smaller."""

  def evaluation_order(self, split: str) -> np.ndarray | None:
    """The order `evaluation_batches` visits the examples in (None = stored order)."""
