"""Latent-usage estimators on a set of posterior parameters (pure TF functions).

- `minibatch_mutual_information`: I_q(x; z) estimated as in He et al. (2019),
  `calc_mi`: with N examples of a minibatch, one z_i ~ q(z|x_i) each,
    I = mean_i log q(z_i|x_i) - mean_i log q_agg(z_i),
    q_agg(z) = (1/N) sum_j q(z|x_j),
  where E[log q(z|x)] uses the closed form -D/2 log(2 pi e) - 1/2 sum log var.
  The sampled version of the first term would bound I by log N; with the closed form
  the bound holds up to Monte Carlo error. `mean_minibatch_mutual_information` averages it over
  consecutive chunks of a set (the last chunk may be smaller), in nats.
- `active_units`: dimensions d with Cov_x(E_q[z_d|x]) >= threshold over the whole set.
"""

import math

import tensorflow as tf


def gaussian_log_density(z: tf.Tensor, mean: tf.Tensor, log_variance: tf.Tensor) -> tf.Tensor:
  """log N(z_i; mean_j, diag exp(log_variance_j)) for all pairs: (N, D)x(M, D) -> (N, M)."""
  diff = z[:, None, :] - mean[None, :, :]
  return -0.5 * tf.reduce_sum(
      math.log(2.0 * math.pi) + log_variance[None] + diff ** 2 / tf.exp(log_variance[None]),
      axis=-1)


def minibatch_mutual_information(mean: tf.Tensor, log_variance: tf.Tensor,
                                 z: tf.Tensor) -> tf.Tensor:
  """He et al. (2019) estimate of I_q(x; z) over one minibatch; scalar, nats.

  Args:
    mean, log_variance: (N, D) posterior parameters of the N examples.
    z: (N, D), z_i ~ q(z|x_i).
  """
  num = tf.cast(tf.shape(mean)[0], mean.dtype)
  dim = tf.cast(tf.shape(mean)[1], mean.dtype)
  negative_entropy = tf.reduce_mean(
      -0.5 * dim * math.log(2.0 * math.pi) - 0.5 * tf.reduce_sum(1.0 + log_variance, axis=-1))
  log_aggregate = (tf.reduce_logsumexp(gaussian_log_density(z, mean, log_variance), axis=1)
                   - tf.math.log(num))
  return negative_entropy - tf.reduce_mean(log_aggregate)


def mean_minibatch_mutual_information(mean: tf.Tensor, log_variance: tf.Tensor, z: tf.Tensor,
                                      batch_size: int) -> float:
  """Mean of `minibatch_mutual_information` over consecutive chunks of `batch_size` rows."""
  total = int(mean.shape[0])
  estimates = [
      float(minibatch_mutual_information(mean[i:i + batch_size], log_variance[i:i + batch_size],
                                         z[i:i + batch_size]))
      for i in range(0, total, batch_size)]
  return sum(estimates) / len(estimates)


def posterior_mean_variance(mean: tf.Tensor) -> tf.Tensor:
  """(N, D) posterior means -> (D,) their variance over the N examples (divisor N)."""
  mean = tf.cast(mean, tf.float64)
  centred = mean - tf.reduce_mean(mean, axis=0, keepdims=True)
  return tf.reduce_mean(centred ** 2, axis=0)


def active_units(mean: tf.Tensor, threshold: float = 0.01) -> int:
  """Number of dimensions with Cov_x(E_q[z_d|x]) >= threshold; (N, D) means in."""
  return int(tf.reduce_sum(tf.cast(posterior_mean_variance(mean) >= threshold, tf.int32)))
