"""Generative networks: (x, z) -> p(x|z), an Independent Bernoulli over (28, 28, 1) pixels.

`skip` is the only switch between a VAE decoder and a generative skip model's:
- off: z enters the first layer only;
- on: z also enters every later layer and the output layer.
Autoregressive decoders condition on x (causally); the MLP decoder ignores it.
"""

from collections.abc import Sequence

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from skip_vae_tf.models import layer_lists
from skip_vae_tf.models import layers
from skip_vae_tf.models import pixelcnn

tfd = tfp.distributions
IMAGE_EVENT_NDIMS = 3
# Images decoded at once by the autoregressive loop: memory grows with it (about 5 MB per
# image for the default PixelCNN), not with the number of images asked for.
DECODE_CHUNK = 64


def bernoulli_image(logits: tf.Tensor) -> tfd.Distribution:
  """Logits (B, H, W, C) -> Bernoulli pixels with batch shape (B,), event (H, W, C); float32
  whatever the networks' precision (`skip_vae_tf.precision`)."""
  return tfd.Independent(tfd.Bernoulli(logits=tf.cast(logits, tf.float32)),
                         reinterpreted_batch_ndims=IMAGE_EVENT_NDIMS)


class ImageDecoder(keras.layers.Layer):
  """What every image decoder shares: the likelihood of x (and `sample`, `greedy`)."""

  def log_likelihood(self, x, z, training=False, seed=None):
    """(B,) log p(x|z), nats per image."""
    del training, seed  # No dropout or batch statistics in the image decoders.
    return self(x, z).log_prob(x)

  def per_example_counts(self, x) -> dict[str, tf.Tensor]:
    """Counts beside the ELBO terms: none for images (every image has H x W pixels)."""
    del x
    return {}

  def summary_decodes(self, means: tf.Tensor, prior_z: tf.Tensor,
                      seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Ancestral samples from the posterior means (B, H, W, 1) and from the prior draws
    (K, H, W, 1), in one sampling loop (the PixelCNN's loop is slow to trace)."""
    images = self.sample(tf.concat([means, prior_z], axis=0), seed)
    return images[:tf.shape(means)[0]], images[tf.shape(means)[0]:]


class AutoregressiveImageDecoder(ImageDecoder):
  """What the gated PixelCNN decoders share: the likelihood, ancestral sampling and greedy
  decoding given `latent_maps(z)` (B, H, W, C) and `logits_from_maps(x, maps)`, where
  the logits of row r depend only on rows <= r of x and of the maps."""

  image_shape: tuple[int, int, int]

  def latent_maps(self, z: tf.Tensor) -> tf.Tensor:
    raise NotImplementedError

  def logits_from_maps(self, x: tf.Tensor, maps: tf.Tensor) -> tf.Tensor:
    """x (B, H, W, C), maps (B, H, W, C_z) -> float32 logits (B, H, W, C)."""
    raise NotImplementedError

  def call(self, x, z):
    return bernoulli_image(self.logits_from_maps(x, self.latent_maps(z)))

  def sample(self, z: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Ancestral sampling: pixel i is 1 when `pixel_uniforms(seed, B)[i] < p_i`.

    Args:
      z: (B, D) latents.
      seed: (2,) int32 or int64 stateless seed.
    Returns:
      (B, H, W, 1) float32 binary images.
    """
    height, width, _ = self.image_shape
    images, _ = self._pixel_by_pixel(z, pixel_uniforms(seed, tf.shape(z)[0], height * width))
    return images

  def greedy(self, z: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Greedy decoding: each pixel in raster order is 1 when p_i > 0.5, given the pixels
    decoded before it.

    Returns:
      (B, H, W, 1) probabilities p_i = p(x_i = 1 | x_<i, z) along the greedy image, and
      the (B, H, W, 1) float32 binary greedy image.
    """
    height, width, _ = self.image_shape
    images, probabilities = self._pixel_by_pixel(
        z, tf.fill([tf.shape(z)[0], height * width], 0.5))
    return probabilities, images

  def _pixel_by_pixel(self, z: tf.Tensor, thresholds: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`_pixel_by_pixel_chunk` over equal chunks of at most DECODE_CHUNK images, one after
    another, so that memory does not grow with the batch (fewer than one padding image per
    chunk). Same arguments and results."""
    batch = tf.shape(z)[0]
    chunks = tf.maximum((batch + DECODE_CHUNK - 1) // DECODE_CHUNK, 1)
    size = (batch + chunks - 1) // chunks
    padding = chunks * size - batch

    def chunked(t):
      return tf.reshape(tf.pad(t, [[0, padding], [0, 0]]), [chunks, size, tf.shape(t)[-1]])

    shape = [-1, *self.image_shape]
    images, probabilities = tf.map_fn(
        lambda args: self._pixel_by_pixel_chunk(*args), (chunked(z), chunked(thresholds)),
        fn_output_signature=(tf.TensorSpec([None, *self.image_shape], tf.float32),) * 2,
        parallel_iterations=1)
    return tf.reshape(images, shape)[:batch], tf.reshape(probabilities, shape)[:batch]

  def _pixel_by_pixel_chunk(self, z: tf.Tensor,
                            thresholds: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The autoregressive loop: pixel i is 1 when thresholds[:, i] < p_i, one pixel at a
    time in raster order.

    Row r depends only on rows <= r, so the network runs on the top r + 1 rows while row r
    is drawn: about half the work of running it on the whole image for every pixel. The
    rows are cut with a dynamic size, so the network is traced once, not once per row.

    Args:
      z: (B, D) latents.
      thresholds: (B, H * W) values in [0, 1].
    Returns:
      (B, H, W, 1) binary images and the (B, H, W, 1) probabilities p_i they were drawn with.
    """
    height, width, channels = self.image_shape
    maps = self.latent_maps(z)
    images = tf.zeros([tf.shape(z)[0], height, width, channels])
    probabilities = tf.zeros_like(images)

    def draw_pixel(index, x, probs):
      row, col = index // width, index % width
      logits = self.logits_from_maps(x[:, :row + 1], maps[:, :row + 1])[:, row, col, 0]
      p = tf.sigmoid(logits)
      pixel = tf.cast(thresholds[:, index] < p, x.dtype)
      position = tf.reshape(tf.one_hot(index, height * width, dtype=x.dtype),
                            [1, height, width, channels])
      return (index + 1, x + position * tf.reshape(pixel, [-1, 1, 1, 1]),
              probs + position * tf.reshape(p, [-1, 1, 1, 1]))

    _, images, probabilities = tf.while_loop(lambda index, *_: index < height * width,
                                             draw_pixel, (0, images, probabilities))
    return images, probabilities



class PixelCNNDecoder(AutoregressiveImageDecoder):
  """Gated PixelCNN conditioned on z through `latent_feature_maps` projected 28x28 maps.

  Args:
    image_shape: (H, W, 1).
    channels: width of the gated layers.
    kernel_sizes: one odd kernel size per gated layer.
    latent_feature_maps: C_z, number of maps z is projected to (Dense, no spatial sharing).
    skip: feed the maps to every gated layer and to the output 1x1 conv, not only the first.
  """

  def __init__(self, image_shape: Sequence[int], channels: int, kernel_sizes: Sequence[int],
               latent_feature_maps: int, skip: bool, **kwargs):
    super().__init__(**kwargs)
    self.image_shape = tuple(image_shape)
    self.skip = skip
    self.latent_feature_maps = latent_feature_maps
    height, width, _ = self.image_shape
    self.latent_projection = layers.Dense(height * width * latent_feature_maps,
                                                name="z_projection")
    self.gated_layers = layer_lists.tracked(self, "gated", [
        pixelcnn.GatedPixelCNNLayer(channels, k, first=(i == 0), conditioned=(i == 0 or skip),
                                    name=f"gated{i}")
        for i, k in enumerate(kernel_sizes)])
    self.output_conv = layers.Conv2D(self.image_shape[-1], 1, name="output")

  def latent_maps(self, z: tf.Tensor) -> tf.Tensor:
    """z (B, D) -> (B, H, W, C_z)."""
    height, width, _ = self.image_shape
    return tf.reshape(self.latent_projection(z),
                      [-1, height, width, self.latent_feature_maps])

  def logits_from_maps(self, x: tf.Tensor, maps: tf.Tensor) -> tf.Tensor:
    """x (B, H, W, 1) in {0, 1}, maps (B, H, W, C_z) -> float32 logits (B, H, W, 1)."""
    vertical = horizontal = 2.0 * tf.cast(x, maps.dtype) - 1.0
    for layer in self.gated_layers:
      vertical, horizontal = layer(vertical, horizontal,
                                   maps if layer.conditioned else None)
    features = tf.nn.relu(horizontal)
    if self.skip:
      features = tf.concat([features, maps], axis=-1)
    return tf.cast(self.output_conv(features), tf.float32)


def pixel_uniforms(seed: tf.Tensor, batch: tf.Tensor, num_pixels: int) -> tf.Tensor:
  """The (B, num_pixels) uniforms that `PixelCNNDecoder.sample` compares pixels with."""
  return tf.random.stateless_uniform([batch, num_pixels], seed)


class MLPDecoder(ImageDecoder):
  """z -> ReLU hidden layers -> pixel logits; with skip, z is projected into every layer.

  Layer 0 sees z alone; with `skip` each later hidden layer adds U_l z to its
  pre-activation and the output layer adds U_out z.
  """

  def __init__(self, image_shape: Sequence[int], hidden: Sequence[int], skip: bool, **kwargs):
    super().__init__(**kwargs)
    self.image_shape = tuple(image_shape)
    self.skip = skip
    self.hidden = layer_lists.tracked(
        self, "hidden", [layers.Dense(units, name=f"hidden{i}")
                         for i, units in enumerate(hidden)])
    num_pixels = 1
    for size in self.image_shape:
      num_pixels *= size
    self.output_layer = layers.Dense(num_pixels, name="output")
    latent_skips = []
    if skip:
      latent_skips = [layers.Dense(units, use_bias=False, name=f"z_to_hidden{i}")
                      for i, units in enumerate(hidden[1:], start=1)]
      latent_skips.append(layers.Dense(num_pixels, use_bias=False, name="z_to_output"))
    self.latent_skips = layer_lists.tracked(self, "latent_skip", latent_skips)

  def logits(self, z: tf.Tensor) -> tf.Tensor:
    """z (B, D) -> float32 logits (B, H, W, C)."""
    h = tf.nn.relu(self.hidden[0](z))
    dense_layers = [*self.hidden[1:], self.output_layer]
    for i, layer in enumerate(dense_layers):
      pre = layer(h)
      if self.skip:
        pre += self.latent_skips[i](z)
      h = tf.nn.relu(pre) if i < len(dense_layers) - 1 else pre
    return tf.cast(tf.reshape(h, [-1, *self.image_shape]), tf.float32)

  def call(self, x, z):
    del x  # Not autoregressive: pixels are independent given z.
    return bernoulli_image(self.logits(z))

  def sample(self, z: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """z (B, D), stateless seed (2,) -> (B, H, W, C) binary images."""
    probs = tf.sigmoid(self.logits(z))
    return tf.cast(tf.random.stateless_uniform(tf.shape(probs), seed) < probs, tf.float32)

  def greedy(self, z: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """z (B, D) -> (B, H, W, C) pixel probabilities and the image with pixels p > 0.5."""
    probs = tf.sigmoid(self.logits(z))
    return probs, tf.cast(probs > 0.5, tf.float32)
