"""The official Skip-VAE image networks (models/official.py) against the official code's own
arithmetic: parameter counts, the decoder's receptive field, inputs in {0, 1}."""

import numpy as np
import pytest
import tensorflow as tf

from skip_vae_tf import config as config_lib
from skip_vae_tf import tasks
from skip_vae_tf.models import official

# yoonkim/skip-vae's CNNVAE at its defaults (latent 20, 3 residual blocks of 64, 8 gated
# layers of 32, kernel 3, 1 latent map), counted over model.parameters().
OFFICIAL_PARAMETERS = {False: 572_761, True: 576_570}
# Created there but never used in a forward pass (so never trained): the first gated layer's
# residual 1x1 conv (mask 'A' has no residual: 2*32 + 32), and with skip off the seven later
# per-layer z projections and the output's (8 x (20*784 + 784)). Not created here.
UNUSED_FIRST_RESIDUAL = 2 * 32 + 32
UNUSED_WITHOUT_SKIP = 8 * (20 * 784 + 784)


def _official_model_config(skip: bool):
  config = config_lib.image_config()
  config.model.encoder, config.model.decoder = "resnet_official", "pixelcnn_official"
  config.model.skip = skip
  return config.model


@pytest.mark.parametrize("skip", [False, True])
def test_parameter_counts_are_the_official_ones(skip):
  model = tasks.ImageTask().build_model(_official_model_config(skip))
  count = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
  unused = UNUSED_FIRST_RESIDUAL + (0 if skip else UNUSED_WITHOUT_SKIP)
  assert count == OFFICIAL_PARAMETERS[skip] - unused
  assert count == {False: 440_953, True: 576_474}[skip]


def _shift(a, dr, dc):
  """out[r, c] = a[r - dr, c + dc] inside the image, else False (zero padding)."""
  height, width = a.shape[:2]
  out = np.zeros_like(a)
  rs, re, cs, ce = max(dr, 0), min(height, height + dr), max(-dc, 0), min(width, width - dc)
  out[rs:re, cs:ce] = a[rs - dr:re - dr, cs + dc:ce + dc]
  return out


def _official_receptive_field(height, width, kernel_sizes, row, col):
  """The input pixels the official decoder's logit at (row, col) depends on, derived from
  `GatedMaskedConv2d.forward` and `StackedGatedMaskedConv2d.forward`:
  v_out = v_pad2(v_conv(v_pad1(v)))[:, :, :-1]: the (k//2 + 1, k) kernel over rows
  r - k//2 .. r of the top-padded input, then shifted one row down: rows r-1-k//2 .. r-1,
  columns c-k//2 .. c+k//2; the next layer's v is gate(v_out) (the shift compounds);
  h_out = h_conv(h_pad1(h)): columns c-k//2 .. c of row r, shifted one column right in the
  first layer (mask 'A'); h' = h_conv_res(gate(h_out + vh_conv(v_out))), plus h_res(h)
  after the first layer. Boolean (H, W) mask of input pixels."""
  pixels = height * width
  v = np.eye(pixels, dtype=bool).reshape(height, width, pixels)
  h = v.copy()
  for index, kernel in enumerate(kernel_sizes):
    half = kernel // 2
    v_out = np.zeros_like(v)
    for dr in range(1, half + 2):
      for dc in range(-half, half + 1):
        v_out |= _shift(v, dr, dc)
    h_out = np.zeros_like(h)
    for dc in (range(1, half + 2) if index == 0 else range(0, half + 1)):
      h_out |= _shift(h, 0, -dc)
    h = h_out | v_out | (h if index > 0 else False)
    v = v_out
  return h[row, col].reshape(height, width)


def test_the_derivation_gives_the_figures_measured_on_the_official_code():
  field = _official_receptive_field(28, 28, (3,) * 8, 14, 14)
  assert field.sum() == 219 and field[0].any()
  assert np.flatnonzero(field[13]).tolist() == list(range(6, 16))


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("pixel", [(14, 14), (0, 5), (5, 0), (27, 27), (3, 26)])
def test_receptive_field_equals_the_official_one(skip, pixel):
  kernel_sizes = (3,) * 8
  decoder = official.OfficialPixelCNNDecoder((28, 28, 1), 4, kernel_sizes, 1, 5, skip)
  x = tf.constant((np.random.default_rng(0).random((1, 28, 28, 1)) < 0.5).astype(np.float32))
  z = tf.random.stateless_normal([1, 5], [1, 2])
  with tf.GradientTape() as tape:
    tape.watch(x)
    logit = decoder.logits_from_maps(x, decoder.latent_maps(z))[0, pixel[0], pixel[1], 0]
  reached = tape.gradient(logit, x).numpy()[0, :, :, 0] != 0.0
  np.testing.assert_array_equal(reached, _official_receptive_field(28, 28, kernel_sizes, *pixel))


def _first_call_input(layer, run):
  """The first positional input `layer.call` receives while `run()` runs."""
  seen, call = [], layer.call
  layer.call = lambda first, *rest, **kwargs: (seen.append(first), call(first, *rest, **kwargs))[1]
  try:
    run()
  finally:
    del layer.call
  return seen[0].numpy()


def test_networks_read_pixels_as_zero_and_one():
  model = tasks.ImageTask().build_model(_official_model_config(True))
  x = (np.random.default_rng(1).random((2, 28, 28, 1)) < 0.3).astype(np.float32)
  encoder_input = _first_call_input(model.encoder.blocks[0], lambda: model.encoder(x))
  np.testing.assert_array_equal(encoder_input, x)
  z = tf.zeros([2, 20])
  decoder_input = _first_call_input(model.decoder.gated_layers[0],
                                    lambda: model.decoder.logits_from_maps(
                                        x, model.decoder.latent_maps(z)))
  np.testing.assert_array_equal(decoder_input[..., :1], x)
