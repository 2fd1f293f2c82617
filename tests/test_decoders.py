"""The skip switch: what the decoder sees of z, parameter counts, and the MLP pair."""

import numpy as np
import pytest
import tensorflow as tf

from skip_vae_tf.models import decoders

SHAPE = (8, 8, 1)


def _pixelcnn(skip, layers=3, channels=4, maps=2):
  decoder = decoders.PixelCNNDecoder(SHAPE, channels, (3,) * layers, maps, skip)
  decoder(tf.zeros([1, *SHAPE]), tf.zeros([1, 5]))
  return decoder


def _params(layer):
  return sum(int(np.prod(v.shape)) for v in layer.trainable_variables)


@pytest.mark.parametrize("layers", [1, 2, 5])
def test_pixelcnn_parameter_difference_is_the_extra_latent_inputs(layers):
  channels, maps = 4, 2
  plain, skip = _pixelcnn(False, layers, channels, maps), _pixelcnn(True, layers, channels, maps)
  # Each later gated layer takes the maps into both stacks (1x1, 2p outputs each, no bias);
  # the output 1x1 conv takes them as extra input channels (1 output).
  extra = (layers - 1) * 2 * (maps * 2 * channels) + maps * 1
  assert _params(skip) - _params(plain) == extra


def _latent_gradients(decoder, x, z):
  """Gradient of the summed log-likelihood w.r.t. each variable that reads the z maps."""
  with tf.GradientTape() as tape:
    log_prob = tf.reduce_sum(decoder(x, z).log_prob(x))
  readers = [v for v in decoder.trainable_variables
             if "z_to" in v.path or v.path.endswith("output/kernel")]
  return dict(zip([v.path for v in readers], tape.gradient(log_prob, readers)))


def test_with_skip_z_reaches_every_layer_and_the_output():
  decoder = _pixelcnn(True, layers=3)
  x = tf.cast(tf.random.uniform([2, *SHAPE], seed=1) < 0.5, tf.float32)
  grads = _latent_gradients(decoder, x, tf.random.normal([2, 5], seed=2))
  for i in range(3):
    for stack in ("z_to_v", "z_to_h"):
      gradient = grads[f"{decoder.name}/gated{i}/{stack}/kernel"].numpy()
      assert np.any(gradient != 0), (i, stack)
  # The output conv's kernel rows for the z maps (after the 4 feature channels) get gradient.
  output_kernel = grads[f"{decoder.name}/output/kernel"].numpy()
  assert output_kernel.shape[2] == 4 + 2 and np.any(output_kernel[..., 4:, :] != 0)


def test_without_skip_only_the_first_layer_reads_z():
  decoder = _pixelcnn(False, layers=3)
  conditioned = [layer.conditioned for layer in decoder.gated_layers]
  assert conditioned == [True, False, False]
  assert decoder.output_conv.kernel.shape[2] == 4


def test_with_skip_the_last_layer_passes_z_to_the_logits_directly():
  """Zeroing every path but the output conv's z input still leaves d logits / d z != 0."""
  decoder = _pixelcnn(True, layers=2)
  z = tf.random.normal([1, 5], seed=3)
  x = tf.zeros([1, *SHAPE])
  with tf.GradientTape() as tape:
    tape.watch(z)
    logits = decoder.logits_from_maps(x, decoder.latent_maps(z))
  assert np.any(tape.gradient(logits, z).numpy() != 0)


@pytest.mark.parametrize("skip", [False, True])
def test_mlp_decoder_parameters_and_shapes(skip):
  hidden = (16, 12)
  decoder = decoders.MLPDecoder(SHAPE, hidden, skip)
  dist = decoder(tf.zeros([3, *SHAPE]), tf.zeros([3, 5]))
  assert dist.batch_shape == [3] and dist.event_shape == list(SHAPE)
  pixels = int(np.prod(SHAPE))
  base = (5 * 16 + 16) + (16 * 12 + 12) + (12 * pixels + pixels)
  extra = 5 * 12 + 5 * pixels
  assert _params(decoder) == base + (extra if skip else 0)


def _probabilities_given(decoder, images, z):
  """p(x_i = 1 | x_<i, z) of every pixel of `images`, teacher-forced in one pass."""
  return decoder(tf.constant(images), z).distribution.probs_parameter().numpy()


@pytest.mark.parametrize("skip", [False, True])
def test_pixelcnn_sampling_follows_its_own_conditionals(skip):
  decoder = _pixelcnn(skip)
  z, seed = tf.random.stateless_normal([3, 5], [1, 2]), tf.constant([4, 5])
  images = decoder.sample(z, seed).numpy()
  uniforms = decoders.pixel_uniforms(seed, 3, 64).numpy().reshape(images.shape)
  np.testing.assert_array_equal(images, uniforms < _probabilities_given(decoder, images, z))


def test_pixelcnn_decodes_a_batch_in_chunks_with_the_same_result(monkeypatch):
  """Chunks of at most DECODE_CHUNK images (5 images in chunks of 2: one padded) draw what
  one pass over the whole batch draws."""
  decoder = _pixelcnn(True)
  z, seed = tf.random.stateless_normal([5, 5], [1, 2]), tf.constant([4, 5])
  whole = decoder.sample(z, seed).numpy()
  monkeypatch.setattr(decoders, "DECODE_CHUNK", 2)
  np.testing.assert_array_equal(decoder.sample(z, seed).numpy(), whole)
  probabilities, images = decoder.greedy(z)
  assert probabilities.shape == images.shape == (5, *SHAPE)


@pytest.mark.parametrize("skip", [False, True])
def test_pixelcnn_greedy_decode_takes_the_likelier_value_of_each_pixel(skip):
  decoder = _pixelcnn(skip)
  z = 3.0 * tf.random.stateless_normal([3, 5], [6, 7])
  probabilities, images = (t.numpy() for t in decoder.greedy(z))
  np.testing.assert_allclose(probabilities, _probabilities_given(decoder, images, z), atol=1e-6)
  np.testing.assert_array_equal(images, probabilities > 0.5)
  assert 0 < images.mean() < 1  # Not a constant image: the test can tell pixels apart.


def test_mlp_greedy_decode_thresholds_the_pixel_probabilities():
  decoder = decoders.MLPDecoder(SHAPE, (16,), skip=True)
  z = tf.random.stateless_normal([4, 5], [8, 9])
  probabilities, images = (t.numpy() for t in decoder.greedy(z))
  np.testing.assert_allclose(probabilities, _probabilities_given(decoder, images, z), atol=1e-6)
  np.testing.assert_array_equal(images, probabilities > 0.5)


def test_a_registered_toy_decoder_is_one_entry_away_from_a_trained_model():
  from skip_vae_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from skip_vae_tf import tasks  # pylint: disable=g-import-not-at-top
  from skip_vae_tf.models import image_networks  # pylint: disable=g-import-not-at-top
  image_networks.register_decoder("toy_mlp", lambda m, shape: decoders.MLPDecoder(
      shape, (8,), m.skip, name="decoder"))
  try:
    config = config_lib.apply_smoke(config_lib.default_config("omniglot"))
    config.model.decoder = "toy_mlp"
    config_lib.validate(config)
    model = tasks.build_model(tasks.ImageTask(), config)
    assert isinstance(model.decoder, decoders.MLPDecoder)
    config.model.decoder = "no_such_decoder"
    with pytest.raises(config_lib.ConfigError, match="toy_mlp"):
      config_lib.validate(config)
  finally:
    del image_networks.DECODERS["toy_mlp"]
