"""Latent-usage estimators against independent numpy re-derivations of the reference
formulas (the official Skip-VAE code's aggregate-KL MI and `means.var(0)`; He et al.'s
`calc_mi` and `calc_au`), on identical arrays, in float64."""

import math

import numpy as np
from scipy import special
import tensorflow as tf

from skip_vae_tf import evaluators
from skip_vae_tf import metrics


def _log_normal(x, mean, log_var):
  """log N(x; mean, diag exp(log_var)) of one point, by a loop over dimensions."""
  return sum(-0.5 * (math.log(2 * math.pi) + log_var[k]
                     + (x[k] - mean[k]) ** 2 / math.exp(log_var[k])) for k in range(len(x)))


def _numpy_log_aggregate(mean, log_var, z):
  n = len(mean)
  return [special.logsumexp([_log_normal(z[i], mean[j], log_var[j]) for j in range(n)])
          - math.log(n) for i in range(n)]


def _numpy_mi(mean, log_var, z):
  """He et al.'s calc_mi_q: mean_i E_q[log q(z|x_i)] (closed form) - mean_i log q_agg(z_i)."""
  d = mean.shape[1]
  neg_entropy = np.mean([-0.5 * d * math.log(2 * math.pi * math.e) - 0.5 * row.sum()
                         for row in log_var])
  return neg_entropy - np.mean(_numpy_log_aggregate(mean, log_var, z))


def _numpy_official_mi(mean, log_var, z):
  """The official Skip-VAE code: mean analytic KL(q(z|x_i)||N(0, I)) minus the aggregate KL
  mean_i [log q_agg(z_i) - log N(z_i; 0, I)]."""
  kl = np.mean([0.5 * np.sum(m ** 2 + np.exp(v) - v - 1.0) for m, v in zip(mean, log_var)])
  zeros = np.zeros(mean.shape[1])
  log_p = [_log_normal(zi, zeros, zeros) for zi in z]
  return kl - np.mean(np.array(_numpy_log_aggregate(mean, log_var, z)) - log_p)


def test_minibatch_mi_matches_brute_force():
  rng = np.random.default_rng(0)
  mean = rng.normal(size=(7, 3))
  log_var = rng.normal(scale=0.5, size=(7, 3)) - 1.0
  z = mean + np.exp(0.5 * log_var) * rng.normal(size=(7, 3))
  estimate = metrics.minibatch_mutual_information(*(tf.constant(a) for a in (mean, log_var, z)))
  np.testing.assert_allclose(float(estimate), _numpy_mi(mean, log_var, z), rtol=1e-6)


def test_minibatch_mi_is_near_zero_when_the_encoder_ignores_x():
  rng = np.random.default_rng(1)
  n = 500
  mean = np.zeros((n, 4)) + 0.3
  log_var = np.zeros((n, 4)) - 0.5
  z = mean + np.exp(0.5 * log_var) * rng.normal(size=(n, 4))
  estimate = float(metrics.minibatch_mutual_information(mean, log_var, z))
  # Here log q_agg(z_i) = log q(z_i|x_i): the estimate is E[log q] minus its MC average.
  assert abs(estimate) < 0.2


def test_minibatch_mi_approaches_log_n_for_well_separated_posteriors():
  """Then q_agg(z_i) = q(z_i|x_i) / N, so I = log N up to the MC error of E[log q(z|x)]."""
  rng = np.random.default_rng(2)
  n, d = 256, 2
  mean = rng.normal(scale=100.0, size=(n, d))
  log_var = np.full((n, d), -4.0)
  z = mean + np.exp(0.5 * log_var) * rng.normal(size=(n, d))
  estimate = float(metrics.minibatch_mutual_information(mean, log_var, z))
  # log q(z_i|x_i) - E[log q] = -(chi2_d - d)/2, whose mean over n has std sqrt(d / (2 n)).
  assert abs(estimate - math.log(n)) < 4 * math.sqrt(d / (2 * n))


def test_mean_minibatch_mi_weights_each_chunk_by_its_size_as_calc_mi():
  rng = np.random.default_rng(3)
  mean, log_var = rng.normal(size=(10, 2)), rng.normal(size=(10, 2)) - 1
  z = mean + rng.normal(size=(10, 2))
  chunks = [_numpy_mi(mean[i:i + 4], log_var[i:i + 4], z[i:i + 4]) for i in (0, 4, 8)]
  expected = (4 * chunks[0] + 4 * chunks[1] + 2 * chunks[2]) / 10
  estimate = metrics.mean_minibatch_mutual_information(tf.constant(mean), tf.constant(log_var),
                                                       tf.constant(z), batch_size=4)
  np.testing.assert_allclose(estimate, expected, rtol=1e-9)
  assert abs(expected - np.mean(chunks)) > 1e-3  # The plain mean would differ.


def test_active_units_match_numpy_variance_with_divisor_n_minus_1():
  rng = np.random.default_rng(4)
  scales = np.array([1.0, 0.2, 0.05, 0.0, 0.11])
  mean = rng.normal(size=(1000, 5)) * scales
  expected = int(np.sum(np.var(mean, axis=0, ddof=1) >= 0.01))
  assert metrics.active_units(tf.constant(mean, tf.float32), 0.01) == expected
  np.testing.assert_allclose(metrics.posterior_mean_variance(tf.constant(mean)),
                             np.var(mean, axis=0, ddof=1), rtol=1e-10)
  assert expected == 3


def _random_posteriors(n, d, seed, spread=1.0):
  rng = np.random.default_rng(seed)
  mean = rng.normal(scale=spread, size=(n, d))
  log_var = rng.normal(scale=0.3, size=(n, d)) - 1.0
  z = mean + np.exp(0.5 * log_var) * rng.normal(size=(n, d))
  return mean, log_var, z


def test_full_set_mi_is_the_official_estimator_for_any_tile_size():
  mean, log_var, z = _random_posteriors(37, 3, seed=5)
  expected = _numpy_official_mi(mean, log_var, z)
  for tile in (37, 8, 5, 1000):
    estimate = metrics.mutual_information(*(tf.constant(a) for a in (mean, log_var, z)), tile)
    np.testing.assert_allclose(estimate, expected, rtol=1e-9)
  # On the same samples the entropy form differs by mean_i [log p(z_i) - E_q log p(z)].
  zeros = np.zeros(3)
  shift = np.mean([_log_normal(zi, zeros, zeros) for zi in z]) - np.mean(
      [-0.5 * (3 * math.log(2 * math.pi) + np.sum(m ** 2 + np.exp(v)))
       for m, v in zip(mean, log_var)])
  np.testing.assert_allclose(_numpy_mi(mean, log_var, z) - expected, -shift, rtol=1e-9)


def test_full_set_mi_is_near_zero_when_the_encoder_ignores_x_and_at_most_log_n():
  rng = np.random.default_rng(6)
  n, d = 2000, 4
  mean, log_var = np.full((n, d), 0.5), np.full((n, d), -1.0)
  z = mean + np.exp(0.5 * log_var) * rng.normal(size=(n, d))
  assert abs(metrics.mutual_information(mean, log_var, z, 512)) < 4 * math.sqrt(d / (2 * n))
  mean, log_var, z = _random_posteriors(300, 2, seed=7, spread=50.0)
  assert metrics.mutual_information(mean, log_var, z) <= math.log(300) + 4 * math.sqrt(1 / 300)


def test_log_aggregate_posterior_matches_scipy():
  mean, log_var, z = _random_posteriors(9, 2, seed=8)
  points = np.random.default_rng(9).normal(size=(4, 2))
  expected = [special.logsumexp([
      np.sum(-0.5 * (np.log(2 * np.pi) + log_var[j] + (p - mean[j]) ** 2 / np.exp(log_var[j])))
      for j in range(9)]) - np.log(9) for p in points]
  np.testing.assert_allclose(metrics.log_aggregate_posterior(points, mean, log_var, 2),
                             expected, rtol=1e-10)


def test_active_unit_conventions_differ_only_at_the_threshold():
  # Two examples +-a: variance (divisor N - 1 = 1) 2 a^2, exact in binary for these a.
  mean = np.array([[0.0625, 0.125, 0.25], [-0.0625, -0.125, -0.25]])  # 2a^2: 1/128, 1/32, 1/8
  assert metrics.active_units(mean, 1 / 32) == 2
  assert metrics.active_units(mean, 1 / 32, strict=True) == 1


def test_mi_standard_errors_are_the_spread_of_the_terms_of_each_estimate():
  mean, log_var, z = _random_posteriors(40, 3, seed=8)
  kl = np.array([0.5 * np.sum(m ** 2 + np.exp(v) - v - 1.0) for m, v in zip(mean, log_var)])
  zeros = np.zeros(3)
  terms = kl - (np.array(_numpy_log_aggregate(mean, log_var, z))
                - [_log_normal(zi, zeros, zeros) for zi in z])
  outputs = {"posterior_mean": mean, "posterior_log_variance": log_var, "z": z}
  scalars = dict(evaluators.latent_metrics(outputs, minibatch_size=15))
  np.testing.assert_allclose(scalars["mi_aggregate"], terms.mean(), rtol=1e-9)
  np.testing.assert_allclose(scalars["mi_aggregate_stderr"],
                             terms.std(ddof=1) / math.sqrt(40), rtol=1e-9)
  chunks = [_numpy_mi(mean[i:i + 15], log_var[i:i + 15], z[i:i + 15]) for i in (0, 15, 30)]
  np.testing.assert_allclose(scalars["mi_minibatch_he2019"],
                             np.dot(chunks, [15, 15, 10]) / 40, rtol=1e-6)
  np.testing.assert_allclose(scalars["mi_minibatch_he2019_stderr"],
                             np.std(chunks, ddof=1) / math.sqrt(3), rtol=1e-6)
  one_chunk = dict(evaluators.latent_metrics(outputs, minibatch_size=500))
  assert "mi_minibatch_he2019_stderr" not in one_chunk
