"""Checkpointed seeds for stateless random draws.

Keras' `SeedGenerator` keeps its state in a variable that TF checkpoints do not save, so a
resumed run would redraw the noise of the steps it already took. `SeedState` is a layer
whose state is an ordinary non-trainable weight: checkpointed with the model, restored on
resume. Under a distribution strategy every replica advances its copy by the same step, as
Keras' batch-norm statistics are updated.
"""

import random

import keras
import tensorflow as tf


class SeedState(keras.layers.Layer):
  """A (2,) int64 seed state; `next()` returns a fresh stateless seed and advances it.

  The initial state is drawn from Python's `random` (which `keras.utils.set_random_seed`
  seeds), so runs with different seeds draw different noise.
  """

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    initial = random.getrandbits(31)
    self.state = self.add_weight(
        shape=(2,), dtype="int64", trainable=False, name="state",
        initializer=lambda shape, dtype: tf.constant([initial, 0], dtype))
    self.built = True

  def next(self) -> tf.Tensor:
    """(2,) int32 seed for one call's draws. Replicas of a distributed step fold in their
    id, so that their draws differ."""
    seed = tf.cast(self.state.value % (2 ** 31 - 1), tf.int32)
    self.state.assign_add(tf.constant([0, 1], tf.int64))
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
      seed = tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)
    return seed
