"""ELBO terms and the KL-weight schedule: small pure functions.

All per-example quantities are in nats per example. The negative ELBO is
  -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z)),
estimated with one posterior sample for the reconstruction term and the analytic KL.
"""

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def elbo_terms(log_likelihood: tf.Tensor, posterior: tfd.Distribution,
               prior: tfd.Distribution) -> dict[str, tf.Tensor]:
  """Per-example ELBO terms.

  Args:
    log_likelihood: (B,) log p(x|z) at one sample z ~ q(z|x), nats per example.
    posterior: q(z|x), an Independent Normal with batch (B,) and event (D,).
    prior: p(z), event (D,), broadcastable to the posterior's batch.

  Returns:
    reconstruction_nll: (B,) -log p(x|z), nats per example.
    kl: (B,) KL(q(z|x) || p(z)), analytic, nats per example.
    kl_per_dim: (B, D) the KL of each latent dimension (sums to `kl`).
    negative_elbo: (B,) reconstruction_nll + kl.
  """
  reconstruction_nll = -log_likelihood
  kl = tfd.kl_divergence(posterior, prior)
  kl_per_dim = tfd.kl_divergence(posterior.distribution, prior.distribution)
  return {
      "reconstruction_nll": reconstruction_nll,
      "kl": kl,
      "kl_per_dim": kl_per_dim,
      "negative_elbo": reconstruction_nll + kl,
  }


def weighted_loss(terms: dict[str, tf.Tensor], kl_weight: tf.Tensor) -> tf.Tensor:
  """(B,) training loss per example: reconstruction + kl_weight * KL (nats per example)."""
  return terms["reconstruction_nll"] + tf.cast(kl_weight, terms["kl"].dtype) * terms["kl"]


def linear_kl_weight(step: int, steps_per_epoch: int, warmup_epochs: float,
                     start_weight: float) -> float:
  """KL weight rising linearly from `start_weight` at step 0 to 1 after `warmup_epochs`."""
  warmup_steps = warmup_epochs * steps_per_epoch
  if warmup_steps <= 0:
    return 1.0
  return min(1.0, start_weight + (1.0 - start_weight) * step / warmup_steps)
