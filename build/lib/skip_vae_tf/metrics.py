"""Dataset-level estimators of likelihood and latent usage (pure TF functions).

Definitions, units and protocols are in docs/metrics.md. In short, with N examples,
posteriors q(z|x_i) = N(mean_i, diag exp(log_variance_i)) over D dims and one sample
z_i ~ q(z|x_i) each:

- Mutual information I_q(x; z) = E_x KL(q(z|x)||p(z)) - KL(q(z)||p(z)),
  q(z) = (1/N) sum_j q(z|x_j) the aggregate posterior. `mutual_information` (the Skip-VAE
  protocol, aggregate over the whole set, O(N^2) pairs in tiles) computes it as the official
  code does: mean_i KL(q(z|x_i)||p) (analytic) - mean_i [log q_agg(z_i) - log p(z_i)].
  `minibatch_mutual_information` (He et al. 2019, `calc_mi`, aggregate per minibatch) uses
  their entropy form, mean_i H_neg_i - mean_i log q_agg(z_i) with the closed-form negative
  entropy H_neg_i = -D/2 log(2 pi e) - 1/2 sum log var_i; over a set,
  `mean_minibatch_mutual_information` weights each minibatch by its size, as `calc_mi` does.
  The two forms are equal in expectation; on the same samples they differ by
  mean_i [log p(z_i) - E_q log p(z)]. Both are bounded by log(set size) up to the Monte
  Carlo error of the sampled term, and can be slightly negative near zero.
- Active units: dimensions with Cov_x(E_q[z_d|x]) >= 0.01 (He et al.) or > 0.02 (the
  official Skip-VAE code), the variance over the whole set with divisor N - 1 (as both).
- Importance-weighted log-likelihood: log p(x) ~ logsumexp_k [log p(x|z_k) + log p(z_k)
  - log q(z_k|x)] - log K, z_k ~ q(z|x), accumulated over chunks of samples.
"""

import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


# Said wherever MI estimates are printed: why they can look odd.
MI_NOTE = ("MI is a Monte Carlo estimate: bounded above by log N (N evaluated examples), it "
           "can come out slightly negative, or above the KL, when the true value is near 0; "
           "*_stderr is its standard error; definitions in docs/metrics.md.")


def gaussian_log_density(z: tf.Tensor, mean: tf.Tensor, log_variance: tf.Tensor) -> tf.Tensor:
  """log N(z_i; mean_j, diag exp(log_variance_j)) for all pairs: (N, D)x(M, D) -> (N, M).

  Expands the square into matrix products, so memory is O(N M), not O(N M D); computed
  in float64 so that the expansion loses no precision.
  """
  z, mean, log_variance = (tf.cast(t, tf.float64) for t in (z, mean, log_variance))
  precision = tf.exp(-log_variance)
  dim = tf.cast(tf.shape(z)[1], tf.float64)
  quadratic = (tf.matmul(z ** 2, precision, transpose_b=True)
               - 2.0 * tf.matmul(z, mean * precision, transpose_b=True)
               + tf.reduce_sum(mean ** 2 * precision, axis=1)[None, :])
  constant = dim * math.log(2.0 * math.pi) + tf.reduce_sum(log_variance, axis=1)[None, :]
  return -0.5 * (quadratic + constant)


def log_aggregate_posterior(z: tf.Tensor, mean: tf.Tensor, log_variance: tf.Tensor,
                            tile_size: int = 2048) -> tf.Tensor:
  """(N,) log q_agg(z_i) = log (1/M) sum_j q(z_i|x_j), tiled over i and j.

  Args:
    z: (N, D) points.
    mean, log_variance: (M, D) the M posteriors that make up the aggregate.
    tile_size: rows and columns per tile; memory is O(tile_size^2).
  """
  num_points, num_posteriors = int(z.shape[0]), int(mean.shape[0])
  rows = []
  for i in range(0, num_points, tile_size):
    running = tf.fill([min(tile_size, num_points - i)], tf.constant(-math.inf, tf.float64))
    for j in range(0, num_posteriors, tile_size):
      tile = gaussian_log_density(z[i:i + tile_size], mean[j:j + tile_size],
                                  log_variance[j:j + tile_size])
      running = tf.reduce_logsumexp(tf.concat([running[:, None], tile], axis=1), axis=1)
    rows.append(running)
  return tf.concat(rows, axis=0) - math.log(num_posteriors)


def negative_entropy(log_variance: tf.Tensor) -> tf.Tensor:
  """(N, D) -> (N,) E_q[log q(z|x)] of a diagonal Gaussian, closed form, float64 nats."""
  log_variance = tf.cast(log_variance, tf.float64)
  dim = tf.cast(tf.shape(log_variance)[1], tf.float64)
  return -0.5 * dim * math.log(2.0 * math.pi * math.e) - 0.5 * tf.reduce_sum(log_variance, 1)


def kl_to_standard_normal(mean: tf.Tensor, log_variance: tf.Tensor) -> tf.Tensor:
  """(N, D) -> (N,) KL(N(mean, diag exp(log_variance)) || N(0, I)), closed form, float64."""
  mean, log_variance = tf.cast(mean, tf.float64), tf.cast(log_variance, tf.float64)
  return 0.5 * tf.reduce_sum(mean ** 2 + tf.exp(log_variance) - log_variance - 1.0, axis=1)


def log_standard_normal(z: tf.Tensor) -> tf.Tensor:
  """(N, D) -> (N,) log N(z; 0, I), float64 nats."""
  z = tf.cast(z, tf.float64)
  dim = tf.cast(tf.shape(z)[1], tf.float64)
  return -0.5 * (dim * math.log(2.0 * math.pi) + tf.reduce_sum(z ** 2, axis=1))


def mutual_information_terms(mean: tf.Tensor, log_variance: tf.Tensor, z: tf.Tensor,
                             tile_size: int = 2048) -> tf.Tensor:
  """(N,) float64 per-example terms KL(q(z|x_i)||p) - [log q_agg(z_i) - log p(z_i)] whose
  mean is `mutual_information`. Args as there."""
  log_q = log_aggregate_posterior(z, mean, log_variance, tile_size)
  return (tf.cast(kl_to_standard_normal(mean, log_variance), tf.float64)
          - (log_q - log_standard_normal(z)))


def mutual_information(mean: tf.Tensor, log_variance: tf.Tensor, z: tf.Tensor,
                       tile_size: int = 2048) -> float:
  """I_q(x; z) with q(z) the aggregate posterior of all N examples, the official Skip-VAE
  estimator: mean_i KL(q(z|x_i)||p) - mean_i [log q_agg(z_i) - log p(z_i)]; nats.

  Args:
    mean, log_variance: (N, D) posterior parameters.
    z: (N, D), z_i ~ q(z|x_i).
    tile_size: tile edge for the O(N^2) aggregate density.
  """
  return float(tf.reduce_mean(mutual_information_terms(mean, log_variance, z, tile_size)))


def standard_error(terms) -> float:
  """The standard error of the mean of `terms` (std with ddof=1 / sqrt(n)); for an MI
  estimate, its Monte Carlo spread over the examples (q_agg held fixed); nan when n < 2."""
  values = np.asarray(terms, np.float64)
  if values.size < 2:
    return math.nan
  return float(np.std(values, ddof=1) / math.sqrt(values.size))


def _minibatch_mutual_information(mean: tf.Tensor, log_variance: tf.Tensor,
                                  z: tf.Tensor) -> tf.Tensor:
  """He et al.'s entropy-form estimate over one minibatch, float64 scalar."""
  num = tf.cast(tf.shape(mean)[0], tf.float64)
  log_q = (tf.reduce_logsumexp(gaussian_log_density(z, mean, log_variance), axis=1)
           - tf.math.log(num))
  return tf.reduce_mean(negative_entropy(log_variance)) - tf.reduce_mean(log_q)


def minibatch_mutual_information(mean: tf.Tensor, log_variance: tf.Tensor,
                                 z: tf.Tensor) -> tf.Tensor:
  """He et al. (2019) estimate of I_q(x; z) over one minibatch; scalar float32, nats.

  Usable inside a compiled training step. Args as `mutual_information`.
  """
  return tf.cast(_minibatch_mutual_information(mean, log_variance, z), tf.float32)


def minibatch_mutual_information_estimates(mean: tf.Tensor, log_variance: tf.Tensor,
                                           z: tf.Tensor, batch_size: int
                                           ) -> tuple[np.ndarray, np.ndarray]:
  """(estimates, sizes): He et al.'s minibatch estimate of each consecutive chunk of
  `batch_size` rows (float64 nats) and the chunk's row count."""
  total = int(mean.shape[0])
  starts = range(0, total, batch_size)
  estimates = [float(_minibatch_mutual_information(mean[i:i + batch_size],
                                                   log_variance[i:i + batch_size],
                                                   z[i:i + batch_size])) for i in starts]
  return np.array(estimates), np.array([min(batch_size, total - i) for i in starts])


def mean_minibatch_mutual_information(mean: tf.Tensor, log_variance: tf.Tensor, z: tf.Tensor,
                                      batch_size: int) -> float:
  """He et al.'s `calc_mi` over a set: the minibatch estimate of consecutive chunks of
  `batch_size` rows, averaged with weights equal to the chunk sizes (a partial last chunk
  counts for its rows); float64 nats."""
  estimates, sizes = minibatch_mutual_information_estimates(mean, log_variance, z, batch_size)
  return float(np.sum(estimates * sizes) / np.sum(sizes))


def posterior_mean_variance(mean: tf.Tensor) -> tf.Tensor:
  """(N, D) posterior means -> (D,) their variance over the N examples (divisor N - 1, as
  the official Skip-VAE code's `means.var(0)` and He et al.'s `calc_au`)."""
  mean = tf.cast(mean, tf.float64)
  centred = mean - tf.reduce_mean(mean, axis=0, keepdims=True)
  count = tf.cast(tf.shape(mean)[0], tf.float64)
  return tf.reduce_sum(centred ** 2, axis=0) / tf.maximum(count - 1.0, 1.0)


def active_units(mean: tf.Tensor, threshold: float = 0.01, strict: bool = False) -> int:
  """Number of dimensions with Cov_x(E_q[z_d|x]) >= threshold (> if `strict`); (N, D) in."""
  variance = posterior_mean_variance(mean)
  active = variance > threshold if strict else variance >= threshold
  return int(tf.reduce_sum(tf.cast(active, tf.int32)))


def importance_log_weights(
    x: tf.Tensor, z: tf.Tensor, posterior: tfd.Distribution, prior: tfd.Distribution,
    log_likelihood: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
  """log p(x|z) and the log importance weights of C posterior samples per example.

  Args:
    x: (B, ...) observations.
    z: (C, B, D) samples; z[c, b] belongs to example b.
    posterior: q(z|x) with batch shape (B,) and event (D,).
    prior: p(z) with event (D,).
    log_likelihood: (x_rep (C*B, ...), z (C*B, D)) -> (C*B,) log p(x|z); rows are ordered
      sample-major (row c*B + b holds sample c of example b).
  Returns:
    log p(x_b|z[c, b]) (C, B) and log w = log p(x|z) + log p(z) - log q(z|x) (C, B)
    float64, nats.
  """
  count, batch = tf.shape(z)[0], tf.shape(x)[0]
  flat_z = tf.reshape(z, [count * batch, -1])
  flat_x = tf.reshape(tf.repeat(x[None], count, axis=0), tf.concat([[-1], tf.shape(x)[1:]], 0))
  log_px_z = tf.reshape(log_likelihood(flat_x, flat_z), [count, batch])
  return log_px_z, tf.cast(log_px_z + prior.log_prob(z) - posterior.log_prob(z), tf.float64)


def importance_weighted_log_likelihood(
    x: tf.Tensor, posterior: tfd.Distribution, prior: tfd.Distribution,
    log_likelihood: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], num_samples: int,
    chunk_size: int, seed: tf.Tensor) -> tf.Tensor:
  """(B,) importance-weighted estimate of log p(x) with K = num_samples, nats per example.

  Args:
    x, posterior, prior, log_likelihood: as `importance_log_weights`.
    num_samples: K.
    chunk_size: samples per decoder call (decoder memory is O(chunk_size * B)); the
      estimate does not depend on it.
    seed: int32 (2,) stateless seed.
  """
  samples = posterior.sample(num_samples, seed=seed)  # (K, B, D): small beside the decoder.
  running = tf.fill([tf.shape(x)[0]], tf.constant(-math.inf, tf.float64))
  for start in range(0, num_samples, chunk_size):
    _, log_weights = importance_log_weights(x, samples[start:start + chunk_size], posterior,
                                            prior, log_likelihood)
    running = tf.reduce_logsumexp(tf.concat([running[None], log_weights], axis=0), axis=0)
  return running - math.log(num_samples)
