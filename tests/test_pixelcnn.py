"""Causality, receptive field and sampling of the gated PixelCNN decoders (textbook and
official)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from skip_vae_tf import precision as precision_lib
from skip_vae_tf.models import decoders
from skip_vae_tf.models import layers
from skip_vae_tf.models import official
from skip_vae_tf.models import pixelcnn

SHAPE = (8, 8, 1)
DECODERS = {
    "textbook": lambda kernel_sizes, maps, skip: decoders.PixelCNNDecoder(
        SHAPE, 4, kernel_sizes, maps, skip),
    "official": lambda kernel_sizes, maps, skip: official.OfficialPixelCNNDecoder(
        SHAPE, 4, kernel_sizes, maps, 5, skip),
}


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_gate_is_tanh_times_sigmoid_rounded_once_to_the_input_dtype(dtype):
  rng = np.random.default_rng(0)
  x = tf.cast(rng.normal(scale=3.0, size=(2, 3, 3, 8)), dtype)
  value, logits = np.split(tf.cast(x, tf.float64).numpy(), 2, axis=-1)
  expected = np.tanh(value) / (1.0 + np.exp(-logits))
  out = pixelcnn.gate(x)
  assert out.dtype == dtype and out.shape == (2, 3, 3, 4)
  # float32: to float32 rounding; bfloat16: one rounding of the float32 result (the
  # bfloat16 unit roundoff, 2**-8 relative), not three roundings of bfloat16 kernels.
  tolerance = 1e-6 if dtype == tf.float32 else 2.0 ** -8
  np.testing.assert_allclose(tf.cast(out, tf.float64).numpy(), expected, rtol=tolerance,
                             atol=1e-7)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_the_fused_gate_of_forward_only_passes_equals_the_gate(dtype):
  x = tf.cast(np.random.default_rng(1).normal(scale=3.0, size=(2, 3, 3, 8)), dtype)
  with layers.forward_only():
    traced = tf.function(pixelcnn.gate).get_concrete_function(x)  # Traced inside.
  assert [op.type for op in traced.graph.get_operations()
          if "_XlaMustCompile" in op.node_def.attr] == ["PartitionedCall"]  # One XLA kernel.
  fused = traced(x)
  tolerance = 1e-6 if dtype == tf.float32 else 2.0 ** -7  # One bfloat16 rounding each.
  np.testing.assert_allclose(tf.cast(fused, tf.float64).numpy(),
                             tf.cast(pixelcnn.gate(x), tf.float64).numpy(),
                             rtol=tolerance, atol=1e-6)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_forward_only_kernels_give_the_official_decoders_logits(precision):
  """Fused gates and bias adds (evaluation's IW-NLL passes) change rounding only."""
  keras.utils.set_random_seed(0)  # The initial weights.
  with precision_lib.policy_scope(precision):
    decoder = official.OfficialPixelCNNDecoder((28, 28, 1), 8, (3, 3, 3), 1, 5, True)
  rng = np.random.default_rng(2)
  x = tf.constant((rng.random((4, 28, 28, 1)) < 0.3).astype(np.float32))
  z = tf.constant(rng.normal(size=(4, 5)).astype(np.float32))
  logits = tf.function(lambda x, z: decoder.logits_from_maps(x, decoder.latent_maps(z)))
  plain = logits(x, z).numpy()
  with layers.forward_only():
    fused = tf.function(lambda x, z: decoder.logits_from_maps(x, decoder.latent_maps(z)))(
        x, z).numpy()
  # bfloat16: a few roundings of 2**-8 relative on logits of order 1.
  tolerance = 1e-5 if precision == "float32" else 0.05
  np.testing.assert_allclose(fused, plain, atol=tolerance)
  assert np.abs(plain).max() > 0.1  # Not a comparison of zeros.


def _logit_jacobian(decoder, x, z):
  """d logit_i / d x_j for one image: (H*W, H*W), rows = outputs in raster order."""
  x = tf.constant(x)
  with tf.GradientTape() as tape:
    tape.watch(x)
    logits = tf.reshape(decoder.logits_from_maps(x, decoder.latent_maps(z)), [-1])
  return tape.jacobian(logits, x).numpy().reshape(logits.shape[0], -1)


@pytest.mark.parametrize("kind", DECODERS)
@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("kernel_sizes", [(3,), (3, 3), (5, 3, 3, 3)])
def test_output_never_depends_on_current_or_later_pixels(kind, skip, kernel_sizes):
  decoder = DECODERS[kind](kernel_sizes, 2, skip)
  rng = np.random.default_rng(0)
  x = (rng.random((1, *SHAPE)) < 0.5).astype(np.float32)
  jacobian = _logit_jacobian(decoder, x, tf.random.normal([1, 5]))
  at_or_after = np.triu(np.ones_like(jacobian, dtype=bool))
  assert np.all(jacobian[at_or_after] == 0.0)
  assert np.any(jacobian[~at_or_after] != 0.0)


def test_no_blind_spot():
  """Two 3x3 layers see the pixel above-right and two to the left, unlike masked convs."""
  # Seeded: with 4 channels an unlucky draw of the weights can zero one path exactly.
  keras.utils.set_random_seed(0)
  decoder = decoders.PixelCNNDecoder(SHAPE, channels=4, kernel_sizes=(3, 3),
                                     latent_feature_maps=1, skip=False)
  x = np.zeros((1, *SHAPE), np.float32)
  jacobian = _logit_jacobian(decoder, x, tf.zeros([1, 2]))
  width = SHAPE[1]
  output = 4 * width + 4
  for row, col in [(3, 5), (3, 6), (4, 2), (4, 3), (2, 4)]:
    assert jacobian[output, row * width + col] != 0.0, (row, col)


@pytest.mark.parametrize("kind", DECODERS)
@pytest.mark.parametrize("skip", [False, True])
def test_sampling_draws_every_pixel_from_its_conditional(kind, skip):
  """Each sampled pixel equals [u_i < sigmoid(logit_i(x))] with logits of the full image."""
  decoder = DECODERS[kind]((3, 3, 3), 2, skip)
  z = tf.random.normal([3, 5], seed=4)
  seed = tf.constant([1, 2])
  images = tf.function(decoder.sample)(z, seed)
  probs = tf.sigmoid(decoder.logits_from_maps(images, decoder.latent_maps(z)))
  uniforms = decoders.pixel_uniforms(seed, 3, 64).numpy()
  expected = (uniforms < probs.numpy().reshape(3, -1)).astype(np.float32)
  np.testing.assert_array_equal(images.numpy().reshape(3, -1), expected)
  assert 0 < images.numpy().mean() < 1


def test_textbook_receptive_field_at_the_centre():
  """8 layers of kernel 3 at 28x28 (docs/fidelity.md compares it with the official one's
  219 pixels reaching row 0)."""
  decoder = decoders.PixelCNNDecoder((28, 28, 1), 4, (3,) * 8, 1, False)
  x = tf.constant((np.random.default_rng(0).random((1, 28, 28, 1)) < 0.5).astype(np.float32))
  with tf.GradientTape() as tape:
    tape.watch(x)
    logit = decoder.logits_from_maps(x, decoder.latent_maps(tf.zeros([1, 5])))[0, 14, 14, 0]
  reached = tape.gradient(logit, x).numpy()[0, :, :, 0] != 0.0
  rows, cols = np.flatnonzero(reached.any(1)), np.flatnonzero(reached.any(0))
  assert reached.sum() == 162
  assert (rows.min(), rows.max(), cols.min(), cols.max()) == (5, 14, 5, 22)
