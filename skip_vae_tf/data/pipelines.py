"""tf.data input pipelines over image arrays.

Training order and binarization are functions of (seed, epoch, batch index) only, so a
resumed run sees exactly the batches an uninterrupted run would have seen.
"""

import numpy as np
import tensorflow as tf

from skip_vae_tf import errors


def holdout_split(num_examples: int, holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Seeded split of range(num_examples) into (kept, held_out) index arrays."""
  if not 0 < holdout < num_examples:
    raise errors.DataSizeError(
        f"data.validation_size={holdout}: cannot hold out {holdout} of the {num_examples} "
        "examples the validation split is drawn from")
  order = np.random.default_rng(seed).permutation(num_examples)
  return np.sort(order[holdout:]), np.sort(order[:holdout])


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  """The seeded example order of one epoch: a permutation of range(num_examples)."""
  return np.random.default_rng([seed, epoch]).permutation(num_examples)


class TrainingBatches:
  """Epochs of shuffled training batches, (batch_size, H, W, 1) float32 in {0, 1}.

  The last partial batch of an epoch is dropped (every step sees `batch_size` examples).
  With `dynamic_binarization` each batch is a fresh Bernoulli draw from the intensities
  in `images`, seeded by (seed, epoch, batch index).
  """

  def __init__(self, images: np.ndarray, batch_size: int, seed: int,
               dynamic_binarization: bool):
    self.images = tf.Variable(images, trainable=False, name="training_images")
    self.num_examples = len(images)
    self.batch_size = batch_size
    self.seed = seed
    self.dynamic_binarization = dynamic_binarization
    self.steps_per_epoch = steps_per_epoch(self.num_examples, batch_size)

  def epoch(self, epoch: int, skip_batches: int = 0) -> tf.data.Dataset:
    """The batches of `epoch`, starting after `skip_batches` of them (to resume mid-epoch)."""
    order = epoch_permutation(self.num_examples, self.seed, epoch)
    seed_base = tf.constant(self.seed * 100003 + epoch, tf.int64)

    def make_batch(index, positions):
      batch = tf.gather(self.images, positions)
      if self.dynamic_binarization:
        uniform = tf.random.stateless_uniform(tf.shape(batch), tf.stack([seed_base, index]))
        batch = tf.cast(uniform < batch, tf.float32)
      return batch

    dataset = tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size,
                                                              drop_remainder=True)
    dataset = dataset.enumerate().skip(skip_batches)
    return dataset.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE)


def without_autotune(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """`dataset` with tf.data's autotuning off, for evaluation passes over in-memory batches.

  With it on, the end-of-data call after long work per batch (IW-NLL) can wait seconds for
  the autotuner; nothing here has a parallelism or buffer left to tune.
  """
  options = tf.data.Options()
  options.autotune.enabled = False
  return dataset.with_options(options)


def evaluation_batches(images: np.ndarray, batch_size: int) -> tf.data.Dataset:
  """All of `images` in order, in batches of `batch_size`; the last batch may be smaller."""
  return without_autotune(tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
                          .prefetch(1))


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Training steps in one epoch (the last partial batch is dropped)."""
  if num_examples < batch_size:
    raise ValueError(f"{num_examples} training examples cannot fill one batch of {batch_size}")
  return num_examples // batch_size
