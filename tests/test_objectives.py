"""ELBO terms against an independent numpy computation; the KL-weight schedule."""

import numpy as np
import pytest
import tensorflow as tf

from skip_vae_tf import config as config_lib
from skip_vae_tf import objectives
from skip_vae_tf import tasks
from skip_vae_tf.models import decoders


def _log_sigmoid(v):
  return -np.logaddexp(0.0, -v)


@pytest.mark.parametrize("decoder_name", ["pixelcnn", "mlp"])
def test_negative_elbo_matches_numpy(decoder_name):
  config = config_lib.apply_smoke(config_lib.image_config())
  config.model.decoder = decoder_name
  model = tasks.ImageTask().build_model(config.model)
  rng = np.random.default_rng(0)
  x = (rng.random((5, 28, 28, 1)) < 0.3).astype(np.float32)

  posterior = model.encoder(x)
  z = posterior.sample(seed=3)
  if decoder_name == "pixelcnn":
    logits = model.decoder.logits_from_maps(x, model.decoder.latent_maps(z))
  else:
    logits = model.decoder.logits(z)
  terms = objectives.elbo_terms(decoders.bernoulli_image(logits).log_prob(x), posterior,
                                model.prior())

  mean = posterior.distribution.loc.numpy().astype(np.float64)
  var = posterior.distribution.scale.numpy().astype(np.float64) ** 2
  logits = logits.numpy().astype(np.float64).reshape(5, -1)
  flat_x = x.reshape(5, -1)
  recon = -np.sum(flat_x * _log_sigmoid(logits) + (1 - flat_x) * _log_sigmoid(-logits), axis=1)
  kl_per_dim = 0.5 * (mean ** 2 + var - 1.0 - np.log(var))
  np.testing.assert_allclose(terms["reconstruction_nll"], recon, rtol=1e-5)
  np.testing.assert_allclose(terms["kl_per_dim"], kl_per_dim, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(terms["kl"], kl_per_dim.sum(1), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(terms["negative_elbo"], recon + kl_per_dim.sum(1), rtol=1e-5)
  weighted = objectives.weighted_loss(terms, tf.constant(0.25))
  np.testing.assert_allclose(weighted, recon + 0.25 * kl_per_dim.sum(1), rtol=1e-5)


def test_model_call_returns_terms_at_its_own_sample():
  config = config_lib.apply_smoke(config_lib.image_config())
  model = tasks.ImageTask().build_model(config.model)
  x = np.ones((3, 28, 28, 1), np.float32)
  terms = model(x)
  z, mean, log_var = (terms[k].numpy() for k in ("z", "posterior_mean", "posterior_log_variance"))
  logits = model.decoder.logits_from_maps(x, model.decoder.latent_maps(z)).numpy().reshape(3, -1)
  recon = -np.sum(_log_sigmoid(logits.astype(np.float64)), axis=1)
  np.testing.assert_allclose(terms["reconstruction_nll"], recon, rtol=1e-5)
  kl = 0.5 * np.sum(mean ** 2 + np.exp(log_var) - 1.0 - log_var, axis=1)
  np.testing.assert_allclose(terms["kl"], kl, rtol=1e-4, atol=1e-5)


def test_linear_kl_weight_schedule():
  assert objectives.linear_kl_weight(0, 100, 0.0, 0.1) == 1.0
  assert objectives.linear_kl_weight(0, 100, 2.0, 0.1) == pytest.approx(0.1)
  assert objectives.linear_kl_weight(100, 100, 2.0, 0.1) == pytest.approx(0.55)
  assert objectives.linear_kl_weight(200, 100, 2.0, 0.1) == 1.0
  assert objectives.linear_kl_weight(10_000, 100, 2.0, 0.1) == 1.0
