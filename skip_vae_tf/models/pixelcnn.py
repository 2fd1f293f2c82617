"""Gated PixelCNN layers with vertical and horizontal stacks (van den Oord et al., 2016).

The two stacks remove the blind spot of masked convolutions. Causality comes from
padding and shifting rather than masks:
- the vertical stack at row r sees input rows <= r; it reaches the horizontal stack
  only after a one-row down shift, so the horizontal stack sees rows < r from it;
- the horizontal stack at (r, c) sees columns <= c of row r; the first layer shifts its
  input one column right so that it excludes the current pixel (mask 'A').
Hence output (r, c) depends only on pixels before (r, c) in raster order.

Latent feature maps (B, H, W, C_z) are not autoregressive data, so a layer that
receives them mixes them in unmasked: concatenating them to the layer's input and
convolving with a kernel whose z-part is 1x1 equals adding 1x1 convolutions of the
maps to both stacks' pre-activations, which is what `GatedPixelCNNLayer` does.
"""

import functools

import keras
import tensorflow as tf

from skip_vae_tf.models import layers


def fused_when_forward_only(function):
  """`function` of one tensor, run as one XLA kernel when traced inside
  `layers.forward_only()` (one pass over memory where TF's kernels make one pass per op),
  as TF's kernels otherwise."""
  fused = tf.function(function, jit_compile=True)

  @functools.wraps(function)
  def call(x: tf.Tensor) -> tf.Tensor:
    return fused(x) if layers.is_forward_only() else function(x)
  return call


# The shifts cut the padded tensor with tf.slice, whose gradient is a Pad: a Python slice
# (StridedSlice) has a generic gradient kernel that took 23% of a mixed bfloat16 step on
# CPU (benchmarks/profile_step.py).
def down_shift(x: tf.Tensor) -> tf.Tensor:
  """(B, H, W, C) -> same shape, rows moved down by one (row 0 becomes zeros)."""
  return tf.slice(tf.pad(x, [[0, 0], [1, 0], [0, 0], [0, 0]]), [0, 0, 0, 0], tf.shape(x))


def right_shift(x: tf.Tensor) -> tf.Tensor:
  """(B, H, W, C) -> same shape, columns moved right by one (column 0 becomes zeros)."""
  return tf.slice(tf.pad(x, [[0, 0], [0, 0], [1, 0], [0, 0]]), [0, 0, 0, 0], tf.shape(x))


@fused_when_forward_only
def gate(x: tf.Tensor) -> tf.Tensor:
  """(..., 2p) -> (..., p): tanh of the first half times sigmoid of the second.

  Computed in float32 and returned in x's dtype: TF's bfloat16 tanh and sigmoid kernels
  are slow on CPU (they took 35% of a mixed bfloat16 PixelCNN forward pass in a
  TF profiler trace); a float32 x adds no op.
  """
  value, gate_logits = tf.split(x, 2, axis=-1)
  return tf.cast(tf.tanh(tf.cast(value, tf.float32))
                 * tf.sigmoid(tf.cast(gate_logits, tf.float32)), x.dtype)


class GatedPixelCNNLayer(keras.layers.Layer):
  """One gated layer: (v, h[, z_maps]) -> (v', h'), all (B, H, W, channels).

  Args:
    channels: p, the width of both stacks' outputs.
    kernel_size: k (odd); the vertical kernel is (k//2 + 1, k), the horizontal (1, k//2 + 1).
    first: the first layer excludes the current pixel and has no residual connection.
    conditioned: whether the layer receives latent feature maps.
  """

  def __init__(self, channels: int, kernel_size: int, first: bool, conditioned: bool,
               **kwargs):
    super().__init__(**kwargs)
    self.channels = channels
    self.kernel_size = kernel_size
    self.first = first
    self.conditioned = conditioned
    half = kernel_size // 2
    self.vertical_conv = layers.Conv2D(2 * channels, (half + 1, kernel_size),
                                             name="vertical")
    self.horizontal_conv = layers.Conv2D(2 * channels, (1, half + 1), name="horizontal")
    self.vertical_to_horizontal = layers.Conv2D(2 * channels, 1, name="v_to_h")
    self.horizontal_out = layers.Conv2D(channels, 1, name="h_out")
    if conditioned:
      self.latent_to_vertical = layers.Conv2D(2 * channels, 1, use_bias=False,
                                                    name="z_to_v")
      self.latent_to_horizontal = layers.Conv2D(2 * channels, 1, use_bias=False,
                                                      name="z_to_h")

  def call(self, vertical, horizontal, latent_maps=None):
    half = self.kernel_size // 2
    v_pre = self.vertical_conv(tf.pad(vertical, [[0, 0], [half, 0], [half, half], [0, 0]]))
    h_in = right_shift(horizontal) if self.first else horizontal
    h_pre = self.horizontal_conv(tf.pad(h_in, [[0, 0], [0, 0], [half, 0], [0, 0]]))
    if self.conditioned:
      v_pre += self.latent_to_vertical(latent_maps)
      h_pre += self.latent_to_horizontal(latent_maps)
    h_pre += self.vertical_to_horizontal(down_shift(v_pre))
    h_out = self.horizontal_out(gate(h_pre))
    if not self.first:
      h_out += horizontal
    return gate(v_pre), h_out
