"""Inference networks: x (B, 28, 28, 1) in {0, 1} -> diagonal Gaussian q(z|x) over (B, D)."""

from collections.abc import Sequence

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from skip_vae_tf.models import layer_lists
from skip_vae_tf.models import layers

tfd = tfp.distributions


def diagonal_gaussian(mean: tf.Tensor, log_variance: tf.Tensor) -> tfd.Distribution:
  """Independent Normal over the last axis: batch shape (B,), event shape (D,); float32
  whatever the networks' precision (`skip_vae_tf.precision`)."""
  mean, log_variance = tf.cast(mean, tf.float32), tf.cast(log_variance, tf.float32)
  return tfd.Independent(tfd.Normal(mean, tf.exp(0.5 * log_variance)),
                         reinterpreted_batch_ndims=1)


class GaussianHead(keras.layers.Layer):
  """Features (B, F) -> q(z|x) = N(mean, diag(exp(log_variance))) with event shape (D,).

  `initializer` initialises the weights and biases of both linear maps (default: Keras'
  glorot-uniform weights and zero biases).
  """

  def __init__(self, latent_dim: int, initializer=None, **kwargs):
    super().__init__(**kwargs)
    init = ({} if initializer is None
            else {"kernel_initializer": initializer, "bias_initializer": initializer})
    self.mean = layers.Dense(latent_dim, name="mean", **init)
    self.log_variance = layers.Dense(latent_dim, name="log_variance", **init)

  def call(self, features):
    return diagonal_gaussian(self.mean(features), self.log_variance(features))


class ResidualBlock(keras.layers.Layer):
  """3x3 conv (stride s) - BN - ReLU - 3x3 conv - BN, plus a 1x1 (stride s) BN shortcut."""

  def __init__(self, channels: int, stride: int, **kwargs):
    super().__init__(**kwargs)
    self.conv1 = layers.Conv2D(channels, 3, strides=stride, padding="same", use_bias=False)
    self.bn1 = keras.layers.BatchNormalization()
    self.conv2 = layers.Conv2D(channels, 3, padding="same", use_bias=False)
    self.bn2 = keras.layers.BatchNormalization()
    self.shortcut_conv = layers.Conv2D(channels, 1, strides=stride, use_bias=False)
    self.shortcut_bn = keras.layers.BatchNormalization()

  def call(self, x, training=False):
    y = tf.nn.relu(self.bn1(self.conv1(x), training=training))
    y = self.bn2(self.conv2(y), training=training)
    return tf.nn.relu(y + self.shortcut_bn(self.shortcut_conv(x), training=training))


class ResNetEncoder(keras.layers.Layer):
  """The official code's image encoder: one stride-2 residual block per entry of `channels`.

  28x28 -> 14 -> 7 -> 4 for three blocks, then a linear Gaussian head.
  """

  def __init__(self, latent_dim: int, channels: Sequence[int] = (64, 64, 64), **kwargs):
    super().__init__(**kwargs)
    self.blocks = layer_lists.tracked(
        self, "block", [ResidualBlock(c, stride=2, name=f"block{i}")
                        for i, c in enumerate(channels)])
    self.flatten = keras.layers.Flatten()
    self.head = GaussianHead(latent_dim, name="head")

  def call(self, x, training=False):
    h = 2.0 * x - 1.0
    for block in self.blocks:
      h = block(h, training=training)
    return self.head(self.flatten(h))


class MLPEncoder(keras.layers.Layer):
  """Flattened image -> ReLU hidden layers of `hidden` units -> Gaussian head."""

  def __init__(self, latent_dim: int, hidden: Sequence[int] = (1024,), **kwargs):
    super().__init__(**kwargs)
    self.flatten = keras.layers.Flatten()
    self.hidden = layer_lists.tracked(
        self, "hidden", [layers.Dense(units, activation="relu", name=f"hidden{i}")
                         for i, units in enumerate(hidden)])
    self.head = GaussianHead(latent_dim, name="head")

  def call(self, x, training=False):
    h = self.flatten(2.0 * x - 1.0)
    for layer in self.hidden:
      h = layer(h)
    return self.head(h)
