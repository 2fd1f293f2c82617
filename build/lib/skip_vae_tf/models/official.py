"""The official Skip-VAE image networks (yoonkim/skip-vae, `models_img_skip.py`), layer by layer.

Selected with `model.encoder = "resnet_official"` and `model.decoder = "pixelcnn_official"`;
the paper-reproduction configs use them. Written from the official code's layer
arithmetic (docs/fidelity.md lists every point and the test that checks it):

Encoder: per entry of `channels`, a residual block (3x3 conv with bias, batch norm, ReLU,
3x3 conv, batch norm, plus the input, through a 1x1 conv when the width changes, then
ReLU) followed by a separate 2x2 stride-2 convolution: 28 -> 14 -> 7 -> 3; the 3x3xC
features feed two linear heads (mean, log-variance). Pixels enter as {0, 1}.

Decoder: a gated PixelCNN whose every layer l has its own projection of z to a 28x28 map,
concatenated to both stacks' inputs at layer 0 and, with `skip`, at every layer; with
`skip` a ninth projection is concatenated to the last layer's horizontal output before the
1x1 output convolution (no ReLU before it). In each gated layer the vertical stack's
pre-activation is shifted down one row *before* it is gated and passed on, so the vertical
stack moves one row further up at every layer (its receptive field differs from the
textbook gated PixelCNN's, `pixelcnn.GatedPixelCNNLayer`; both are causal). The first
layer shifts its horizontal pre-activation one column right and has no residual; later
layers add a 1x1 convolution of their (z-concatenated) horizontal input.

Initialisation follows PyTorch's defaults, as the official code leaves them: convolution
weights and all biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)); linear weights N(0, 2/fan_in)
(its `he_init`); batch norm scale 1, offset 0, momentum 0.1, epsilon 1e-5.

With `skip` off the official decoder still creates the eight projections it does not use
(seven per-layer ones and the output one; 131,712 parameters at the defaults, which never
receive a gradient); this one does not create them.
"""

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from skip_vae_tf.models import decoders
from skip_vae_tf.models import encoders
from skip_vae_tf.models import layer_lists
from skip_vae_tf.models import layers
from skip_vae_tf.models import pixelcnn


def _uniform_fan_in(fan_in: int) -> keras.initializers.Initializer:
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for conv weights and biases."""
  bound = 1.0 / np.sqrt(fan_in)
  return keras.initializers.RandomUniform(-bound, bound)


def conv(filters: int, kernel, in_channels: int, strides: int = 1, padding: str = "valid",
         name: str | None = None) -> layers.Conv2D:
  """A Conv2D initialised as PyTorch's nn.Conv2d."""
  kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
  init = _uniform_fan_in(in_channels * kernel[0] * kernel[1])
  return layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                             kernel_initializer=init, bias_initializer=init, name=name)


def dense(units: int, in_features: int, name: str | None = None, dtype=None) -> layers.Dense:
  """A Dense initialised as the official code's nn.Linear after `he_init`; `dtype`, its
  dtype policy (None: the global one)."""
  return layers.Dense(
      units, kernel_initializer=keras.initializers.VarianceScaling(
          2.0, "fan_in", "untruncated_normal"),
      bias_initializer=_uniform_fan_in(in_features), name=name, dtype=dtype)


def batch_norm(name: str) -> keras.layers.BatchNormalization:
  """PyTorch's BatchNorm2d defaults (momentum 0.1 there is 0.9 here)."""
  return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


class ResidualBlock(keras.layers.Layer):
  """conv3x3 - BN - ReLU - conv3x3 - BN, plus x (1x1 conv when widths differ), ReLU."""

  def __init__(self, in_channels: int, channels: int, **kwargs):
    super().__init__(**kwargs)
    self.conv1 = conv(channels, 3, in_channels, padding="same", name="conv1")
    self.bn1 = batch_norm("bn1")
    self.conv2 = conv(channels, 3, channels, padding="same", name="conv2")
    self.bn2 = batch_norm("bn2")
    self.projection = (conv(channels, 1, in_channels, name="projection")
                       if in_channels != channels else None)

  def call(self, x, training=False):
    y = tf.nn.relu(self.bn1(self.conv1(x), training=training))
    y = self.bn2(self.conv2(y), training=training)
    shortcut = x if self.projection is None else self.projection(x)
    return tf.nn.relu(shortcut + y)


class OfficialResNetEncoder(keras.layers.Layer):
  """x (B, 28, 28, 1) in {0, 1} -> q(z|x): residual blocks, each followed by a 2x2
  stride-2 convolution, then linear mean and log-variance heads, computed in float32
  whatever the precision (under mixed bfloat16 they take the blocks' features cast up)."""

  def __init__(self, latent_dim: int, channels: Sequence[int] = (64, 64, 64),
               image_shape: Sequence[int] = (28, 28, 1), **kwargs):
    super().__init__(**kwargs)
    widths = [image_shape[-1], *channels]
    self.blocks = layer_lists.tracked(self, "block", [
        ResidualBlock(widths[i], widths[i + 1], name=f"block{i}") for i in range(len(channels))])
    self.downsamples = layer_lists.tracked(self, "down", [
        conv(c, 2, c, strides=2, name=f"down{i}") for i, c in enumerate(channels)])
    height, width = image_shape[0], image_shape[1]
    for _ in channels:
      height, width = height // 2, width // 2
    features = height * width * channels[-1]
    self.flatten = keras.layers.Flatten()
    self.mean = dense(latent_dim, features, name="mean", dtype="float32")
    self.log_variance = dense(latent_dim, features, name="log_variance", dtype="float32")

  def call(self, x, training=False):
    h = x
    for block, downsample in zip(self.blocks, self.downsamples):
      h = downsample(block(h, training=training))
    h = tf.cast(self.flatten(h), tf.float32)
    return encoders.diagonal_gaussian(self.mean(h), self.log_variance(h))


class OfficialGatedLayer(keras.layers.Layer):
  """One gated layer of the official decoder: (v, h) -> (v', h'), inputs already
  concatenated with this layer's latent map where it receives one.

  Args:
    in_channels: channels of v and h (the previous width, plus the latent maps if any).
    channels: p, the output width of both stacks.
    kernel_size: k; the vertical kernel is (k//2 + 1, k), the horizontal (1, k//2 + 1).
    first: mask 'A': the horizontal pre-activation is shifted one column right and there
      is no residual connection.
  """

  def __init__(self, in_channels: int, channels: int, kernel_size: int, first: bool,
               **kwargs):
    super().__init__(**kwargs)
    self.half, self.first = kernel_size // 2, first
    self.vertical = conv(2 * channels, (self.half + 1, kernel_size), in_channels,
                         name="vertical")
    self.vertical_to_horizontal = conv(2 * channels, 1, 2 * channels, name="v_to_h")
    self.horizontal = conv(2 * channels, (1, self.half + 1), in_channels, name="horizontal")
    self.horizontal_out = conv(channels, 1, channels, name="h_out")
    self.residual = None if first else conv(channels, 1, in_channels, name="residual")

  def call(self, vertical, horizontal):
    half = self.half
    v_pre = pixelcnn.down_shift(self.vertical(
        tf.pad(vertical, [[0, 0], [half, 0], [half, half], [0, 0]])))
    h_pre = self.horizontal(tf.pad(horizontal, [[0, 0], [0, 0], [half, 0], [0, 0]]))
    if self.first:
      h_pre = pixelcnn.right_shift(h_pre)
    h_out = self.horizontal_out(pixelcnn.gate(h_pre + self.vertical_to_horizontal(v_pre)))
    if self.residual is not None:
      h_out += self.residual(horizontal)
    return pixelcnn.gate(v_pre), h_out


class OfficialPixelCNNDecoder(decoders.AutoregressiveImageDecoder):
  """The official gated PixelCNN decoder p(x|z) (see the module docstring).

  Args as `decoders.PixelCNNDecoder` (one gated layer of `channels` per kernel size,
  `latent_feature_maps` maps per projection of z), and `latent_dim`, the width of z.
  """

  def __init__(self, image_shape: Sequence[int], channels: int, kernel_sizes: Sequence[int],
               latent_feature_maps: int, latent_dim: int, skip: bool, **kwargs):
    super().__init__(**kwargs)
    self.image_shape = tuple(image_shape)
    self.skip = skip
    self.latent_feature_maps = latent_feature_maps
    height, width, image_channels = self.image_shape
    # One projection per layer that receives z, plus the output's with skip.
    self.num_projections = len(kernel_sizes) + 1 if skip else 1
    self.latent_projections = layer_lists.tracked(self, "z_projection", [
        dense(height * width * latent_feature_maps, latent_dim, name=f"z_projection{i}")
        for i in range(self.num_projections)])
    widths = [image_channels, *([channels] * len(kernel_sizes))]
    self.gated_layers = layer_lists.tracked(self, "gated", [
        OfficialGatedLayer(widths[i] + (latent_feature_maps if i == 0 or skip else 0),
                           channels, k, first=(i == 0), name=f"gated{i}")
        for i, k in enumerate(kernel_sizes)])
    out_in = channels + (latent_feature_maps if skip else 0)
    self.output_conv = conv(image_channels, 1, out_in, name="output")

  def latent_maps(self, z: tf.Tensor) -> tf.Tensor:
    """z (B, D) -> (B, H, W, P * C_z): the P projections' maps side by side."""
    height, width, _ = self.image_shape
    return tf.concat([tf.reshape(projection(z), [-1, height, width, self.latent_feature_maps])
                      for projection in self.latent_projections], axis=-1)

  def logits_from_maps(self, x: tf.Tensor, maps: tf.Tensor) -> tf.Tensor:
    """x (B, H, W, 1) in {0, 1}, maps from `latent_maps` -> float32 logits (B, H, W, 1)."""
    per_projection = tf.split(maps, self.num_projections, axis=-1)
    vertical = horizontal = tf.cast(x, maps.dtype)
    for i, layer in enumerate(self.gated_layers):
      if i == 0 or self.skip:
        vertical = tf.concat([vertical, per_projection[i]], axis=-1)
        horizontal = tf.concat([horizontal, per_projection[i]], axis=-1)
      vertical, horizontal = layer(vertical, horizontal)
    if self.skip:
      horizontal = tf.concat([horizontal, per_projection[-1]], axis=-1)
    return tf.cast(self.output_conv(horizontal), tf.float32)
