"""Lists of sublayers that tf.train.Checkpoint saves.

Keras 3 checkpoints a layer held in a Python list only through the optimizer's
references to its trainable variables, so non-trainable state (batch-norm moving
statistics) would be lost and a model-only checkpoint would hold nothing.
"""

from collections.abc import Sequence

import keras


def tracked(owner: keras.layers.Layer, prefix: str,
            layers: Sequence[keras.layers.Layer]) -> tuple[keras.layers.Layer, ...]:
  """Sets layers[i] as attribute `{prefix}{i}` of `owner`; returns them as a tuple."""
  for index, layer in enumerate(layers):
    setattr(owner, f"{prefix}{index}", layer)
  return tuple(layers)
