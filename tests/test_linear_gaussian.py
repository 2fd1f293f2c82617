"""Estimators on a linear-Gaussian latent model, where log p(x), p(z|x) and I(x;z) are exact.

p(z) = N(0, I_D), p(x|z) = N(W z + b, s^2 I_P). Then p(x) = N(b, W W^T + s^2 I), the
posterior is N(A^-1 W^T (x - b) / s^2, A^-1) with A = I + W^T W / s^2, and the mutual
information of the model is I(x; z) = 1/2 log det A.
"""

import math

import numpy as np
import pytest
from scipy import stats
import tensorflow as tf
import tensorflow_probability as tfp

from skip_vae_tf import metrics

tfd = tfp.distributions
D, P, NOISE = 2, 5, 0.7


@pytest.fixture(scope="module")
def model():
  rng = np.random.default_rng(0)
  weights, bias = rng.normal(size=(P, D)), rng.normal(size=P)
  precision = np.eye(D) + weights.T @ weights / NOISE ** 2
  covariance = np.linalg.inv(precision)
  z = rng.normal(size=(400, D))
  x = z @ weights.T + bias + NOISE * rng.normal(size=(400, P))
  post_mean = (x - bias) @ weights @ covariance.T / NOISE ** 2
  log_px = stats.multivariate_normal(bias, weights @ weights.T + NOISE ** 2 * np.eye(P)).logpdf(x)
  return dict(weights=weights, bias=bias, cov=covariance, x=x, post_mean=post_mean,
              log_px=log_px, mi=0.5 * np.linalg.slogdet(precision)[1])


def _log_likelihood(model):
  def fn(x, z):
    loc = tf.matmul(z, model["weights"].T) + model["bias"]
    return tfd.Independent(tfd.Normal(loc, NOISE), 1).log_prob(x)
  return fn


def _diagonal_posterior(mean, variance):
  return tfd.Independent(tfd.Normal(tf.constant(mean), tf.sqrt(tf.constant(variance))), 1)


def _iw(model, posterior, k, chunk=50, seed=1):
  prior = tfd.Independent(tfd.Normal(tf.zeros(D, tf.float64), 1.0), 1)
  return metrics.importance_weighted_log_likelihood(
      tf.constant(model["x"]), posterior, prior, _log_likelihood(model), k, chunk,
      tf.constant([seed, 0])).numpy()


def _full_posterior(model):
  return tfd.MultivariateNormalTriL(tf.constant(model["post_mean"]),
                                    tf.constant(np.linalg.cholesky(model["cov"])))


def test_iw_estimate_is_exact_with_the_exact_posterior(model):
  np.testing.assert_allclose(_iw(model, _full_posterior(model), 1), model["log_px"], rtol=1e-9)
  np.testing.assert_allclose(_iw(model, _full_posterior(model), 7, chunk=3), model["log_px"],
                             rtol=1e-9)


def test_elbo_is_below_log_px_and_iw_approaches_it_as_k_grows(model):
  # A mean-field posterior that is too narrow: the bound is loose at K = 1.
  posterior = _diagonal_posterior(model["post_mean"], 0.5 * np.diag(model["cov"])[None].repeat(
      len(model["x"]), 0))
  gaps = [np.mean(model["log_px"] - _iw(model, posterior, k)) for k in (1, 10, 100, 1000)]
  assert gaps[0] > 0.05
  assert all(g >= -1e-3 for g in gaps)
  assert gaps[0] > gaps[1] > gaps[2] > gaps[3]
  assert gaps[3] < 0.02


def test_iw_estimate_does_not_depend_on_the_chunk_size(model):
  posterior = _diagonal_posterior(model["post_mean"], np.diag(model["cov"])[None].repeat(
      len(model["x"]), 0))
  np.testing.assert_allclose(_iw(model, posterior, 20, chunk=20),
                             _iw(model, posterior, 20, chunk=7), rtol=1e-12)


def test_mi_of_the_exact_posterior_matches_the_closed_form():
  rng = np.random.default_rng(1)
  weights = rng.normal(size=(P, D))
  precision = np.eye(D) + weights.T @ weights / NOISE ** 2
  covariance = np.linalg.inv(precision)
  n = 4000
  z_true = rng.normal(size=(n, D))
  x = z_true @ weights.T + NOISE * rng.normal(size=(n, P))
  post_mean = x @ weights @ covariance.T / NOISE ** 2
  # Rotate to the posterior's eigenbasis so that it is diagonal (MI is rotation invariant).
  eigenvalues, basis = np.linalg.eigh(covariance)
  mean = post_mean @ basis
  log_var = np.log(eigenvalues)[None].repeat(n, 0)
  z = mean + np.sqrt(eigenvalues) * rng.normal(size=(n, D))
  estimate = metrics.mutual_information(mean, log_var, z, tile_size=1024)
  assert estimate == pytest.approx(0.5 * np.linalg.slogdet(precision)[1], abs=0.08)
  assert estimate <= math.log(n)
