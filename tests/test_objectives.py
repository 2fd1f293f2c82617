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


@pytest.mark.parametrize("decoder_name", ["pixelcnn_official", "pixelcnn", "mlp"])
def test_negative_elbo_matches_numpy(decoder_name):
  config = config_lib.apply_smoke(config_lib.image_config())
  config.model.decoder = decoder_name
  model = tasks.ImageTask().build_model(config.model)
  rng = np.random.default_rng(0)
  x = (rng.random((5, 28, 28, 1)) < 0.3).astype(np.float32)

  posterior = model.encoder(x)
  z = posterior.sample(seed=3)
  if decoder_name != "mlp":
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


def _official_betas(steps, batches_per_epoch, warmup_epochs, start=0.1):
  """train_text_skip.py: beta = min(1, beta + 1/(warmup * len(train_data))) before each
  batch, beta starting at 0.1."""
  beta, betas = start, []
  for _ in range(steps):
    beta = min(1.0, beta + 1.0 / (warmup_epochs * batches_per_epoch))
    betas.append(beta)
  return betas


def test_kl_weight_schedule_is_the_official_one():
  expected = _official_betas(1000, 100, 10)
  actual = [objectives.linear_kl_weight(s, 100, 10.0, 0.1) for s in range(1000)]
  np.testing.assert_allclose(actual, expected, rtol=1e-12)
  assert actual[499] == pytest.approx(0.6)  # After epoch 5 of 10.
  assert actual[898] < 1.0 and actual[899] == 1.0  # Reaches 1 after 9 epochs.
  assert objectives.linear_kl_weight(0, 100, 0.0, 0.1) == 1.0


def _official_text_lrs(improvements, lr=1.0, min_epochs=15):
  """train_text_skip.py's loop after each epoch's validation: decay becomes 1 for good once
  a validation fails to improve at epoch >= min_epochs; while it is 1 the rate halves
  every epoch and training breaks when it is below 0.03. Returns the rates in force after
  each epoch that ran."""
  decay, rates = 0, []
  for epoch, improved in enumerate(improvements, start=1):
    if not improved and epoch >= min_epochs:
      decay = 1
    if decay == 1:
      lr = lr * 0.5
    rates.append(lr)
    if decay == 1 and lr < 0.03:
      break
  return rates


@pytest.mark.parametrize("improvements", [
    [True] * 30,
    [True] * 10 + [False] * 20,
    [True] * 16 + [False] + [True] * 13,
    [False, True] * 15,
])
def test_official_learning_rate_schedule_and_stop(improvements):
  train = config_lib.text_config().train
  expected = _official_text_lrs(improvements)
  lr, decaying, rates = 1.0, False, []
  for epoch, improved in enumerate(improvements, start=1):
    lr, decaying = objectives.learning_rate_after_validation(lr, improved, epoch, decaying,
                                                             train)
    rates.append(lr)
    if objectives.lr_exhausted(lr, train):
      break
  assert rates == expected


def test_plateau_schedule_halves_after_each_non_improving_validation():
  train = config_lib.text_config().train
  train.lr_schedule, train.min_learning_rate = "plateau", 0.3
  lr = 1.0
  for improved in (True, False, True, False, False):
    lr, _ = objectives.learning_rate_after_validation(lr, improved, 1, False, train)
  assert lr == 0.3  # 1 -> 0.5 -> 0.3 (floor) -> 0.3.


def _kl_terms(kl_per_dim):
  kl_per_dim = tf.constant(kl_per_dim, tf.float32)
  return {"kl_per_dim": kl_per_dim, "kl": tf.reduce_sum(kl_per_dim, axis=1),
          "reconstruction_nll": tf.zeros([kl_per_dim.shape[0]])}


def test_free_bits_per_dimension_is_the_hinge_of_the_minibatch_mean_kl():
  # Minibatch means per dimension: 0.2 (under the floor 0.5), 1.5 (over), 0.5 (at it).
  kl_per_dim = np.array([[0.1, 1.0, 0.4], [0.3, 2.0, 0.6]])
  floor = 0.5
  variable = tf.Variable(kl_per_dim, dtype=tf.float32)
  with tf.GradientTape() as tape:
    terms = _kl_terms(variable)
    terms["kl_per_dim"] = variable
    terms["kl"] = tf.reduce_sum(variable, axis=1)
    loss = tf.reduce_mean(objectives.weighted_loss(terms, 1.0, free_bits=floor))
  # By hand: sum_d max(floor, mean_b KL_bd) = 0.5 + 1.5 + 0.5.
  np.testing.assert_allclose(loss.numpy(), 2.5, rtol=1e-6)
  # Only the dimension above its floor gets a gradient (1/B per example).
  np.testing.assert_allclose(tape.gradient(loss, variable).numpy(),
                             [[0.0, 0.5, 0.0], [0.0, 0.5, 0.0]])


def test_free_bits_total_hinges_the_whole_code_and_zero_is_the_plain_kl():
  kl_per_dim = np.array([[0.1, 0.2], [0.3, 0.4]])  # Total KL per example 0.3 and 0.7.
  terms = _kl_terms(kl_per_dim)
  floor_above = objectives.kl_penalty(terms, free_bits=1.0, free_bits_mode="total")
  np.testing.assert_allclose(floor_above.numpy(), [1.0, 1.0])  # mean 0.5 < 1: the floor.
  floor_below = objectives.kl_penalty(terms, free_bits=0.25, free_bits_mode="total")
  np.testing.assert_allclose(floor_below.numpy(), [0.3, 0.7], rtol=1e-6)
  np.testing.assert_allclose(objectives.kl_penalty(terms).numpy(), [0.3, 0.7], rtol=1e-6)
  weighted = objectives.weighted_loss(terms, 0.5, free_bits=1.0, free_bits_mode="total")
  np.testing.assert_allclose(weighted.numpy(), [0.5, 0.5])


def test_cyclical_schedule_follows_fu_et_al():
  # 100 steps, 4 cycles of 25 steps, rising over the first half (12.5 steps) of each.
  weights = [objectives.cyclical_kl_weight(t, 100, 4, 0.5) for t in range(100)]
  np.testing.assert_allclose(weights[:3], [0.0, 0.08, 0.16])
  assert weights[12] == pytest.approx(0.96) and weights[13] == 1.0 and weights[24] == 1.0
  assert weights[25] == 0.0 and weights[50] == 0.0 and weights[75] == 0.0
  assert max(weights) == 1.0 and min(weights) == 0.0


def test_kl_weight_is_beta_times_the_chosen_schedule():
  train = config_lib.image_config().train
  train.beta = 0.25
  assert objectives.kl_weight(5, 10, 100, train) == 0.25  # No warm-up: beta alone.
  train.kl_warmup_epochs, train.kl_start_weight = 1.0, 0.0
  assert objectives.kl_weight(4, 10, 100, train) == pytest.approx(0.25 * 0.5)
  train.kl_schedule = "cyclical"
  assert objectives.kl_weight(30, 10, 100, train) == pytest.approx(
      0.25 * objectives.cyclical_kl_weight(30, 100, 4, 0.5))
