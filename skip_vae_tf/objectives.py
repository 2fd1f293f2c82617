"""ELBO terms, the KL-weight schedule and the learning-rate schedule: small pure functions.

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
  """(B,) training loss per example: reconstruction + kl_weight * KL (nats per example),
  plus `encoder_refinement_kl` when a semi-amortized model trains its encoder towards the
  refined posterior instead of end to end."""
  loss = terms["reconstruction_nll"] + tf.cast(kl_weight, terms["kl"].dtype) * terms["kl"]
  if "encoder_refinement_kl" in terms:
    loss += terms["encoder_refinement_kl"]
  return loss


def linear_kl_weight(step: int, steps_per_epoch: int, warmup_epochs: float,
                     start_weight: float) -> float:
  """The KL weight of (0-based) training step `step`, as the official code anneals it:
  `start_weight` plus 1 / (warmup_epochs x steps_per_epoch) per step, the first increment
  made before the first step, capped at 1. From 0.1 over 10 epochs it is 0.6 after epoch
  5 and reaches 1 after 9 epochs. No warm-up (0 epochs): always 1."""
  warmup_steps = warmup_epochs * steps_per_epoch
  if warmup_steps <= 0:
    return 1.0
  return min(1.0, start_weight + (step + 1) / warmup_steps)


def learning_rate_after_validation(learning_rate: float, improved: bool, epoch: int,
                                   decaying: bool, train_config) -> tuple[float, bool]:
  """(new learning rate, decaying) after the validation that ends `epoch` (1-based).

  train.lr_schedule 'plateau': multiply by train.lr_decay_factor when validation did not
  improve on its best, not below train.min_learning_rate. 'official' (the official text
  script): once a validation fails to improve at epoch >= train.lr_decay_start_epoch,
  multiply by lr_decay_factor after every validation from then on (`decaying` stays
  True); training stops once the rate is below train.lr_stop_below (`lr_exhausted`).
  """
  if train_config.lr_schedule == "official":
    decaying = decaying or (not improved and epoch >= train_config.lr_decay_start_epoch)
    return (learning_rate * train_config.lr_decay_factor if decaying else learning_rate,
            decaying)
  if improved:
    return learning_rate, decaying
  return max(learning_rate * train_config.lr_decay_factor,
             train_config.min_learning_rate), decaying


def lr_exhausted(learning_rate: float, train_config) -> bool:
  """Whether the learning rate fell below train.lr_stop_below (0 = never): training ends."""
  return learning_rate < train_config.lr_stop_below
