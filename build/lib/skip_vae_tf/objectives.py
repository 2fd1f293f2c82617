"""ELBO terms, the KL penalties and schedules of the collapse remedies (KL warm-up, cyclical
annealing, beta, free bits) and the learning-rate schedule: small pure functions.

All per-example quantities are in nats per example. The negative ELBO is
  -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z)),
estimated with one posterior sample for the reconstruction term and the analytic KL.
"""

import functools
from collections.abc import Callable

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


def kl_penalty(terms: dict[str, tf.Tensor], free_bits: float = 0.0,
               free_bits_mode: str = "dimension") -> tf.Tensor:
  """(B,) the KL term of the training loss, nats per example.

  Without free bits (0): the KL itself. With free bits lambda (Kingma et al. 2016): per
  latent dimension ('dimension') the batch mean of the result is sum_d max(lambda,
  mean_b KL_bd), or max(lambda, mean_b KL_b) for the whole code ('total'); the means are
  over this (replica's) minibatch. A dimension under its floor contributes the constant
  lambda and no gradient; one above it, its per-example KL.
  """
  if not free_bits:
    return terms["kl"]
  kl = terms["kl_per_dim"] if free_bits_mode == "dimension" else terms["kl"][:, None]
  floor = tf.cast(free_bits, kl.dtype)
  above = tf.stop_gradient(tf.cast(tf.reduce_mean(kl, axis=0) > floor, kl.dtype))
  return tf.reduce_sum(above * kl + (1.0 - above) * floor, axis=-1)


def weighted_loss(terms: dict[str, tf.Tensor], kl_weight: tf.Tensor, free_bits: float = 0.0,
                  free_bits_mode: str = "dimension") -> tf.Tensor:
  """(B,) training loss per example: reconstruction + kl_weight * KL term (nats per
  example; the KL term is `kl_penalty`'s, the KL itself without free bits), plus
  `encoder_refinement_kl` when a semi-amortized model trains its encoder towards the
  refined posterior instead of end to end."""
  kl = kl_penalty(terms, free_bits, free_bits_mode)
  loss = terms["reconstruction_nll"] + tf.cast(kl_weight, kl.dtype) * kl
  if "encoder_refinement_kl" in terms:
    loss += terms["encoder_refinement_kl"]
  return loss


def loss_for_config(train_config) -> Callable[[dict, tf.Tensor], tf.Tensor]:
  """`weighted_loss` with the config's free bits: (terms, kl_weight) -> (B,) loss."""
  return functools.partial(weighted_loss, free_bits=train_config.free_bits,
                           free_bits_mode=train_config.free_bits_mode)


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


def cyclical_kl_weight(step: int, total_steps: int, cycles: int, ratio: float) -> float:
  """Cyclical annealing (Fu et al. 2019): the run's `total_steps` split into `cycles`
  equal periods; within each, the weight of (0-based) step `step` rises linearly from 0
  to 1 over the first `ratio` of the period, then stays at 1."""
  period = total_steps / cycles
  position = (step % period) / period
  return min(1.0, position / ratio)


def kl_weight(step: int, steps_per_epoch: int, total_steps: int, train_config) -> float:
  """The KL weight of (0-based) training step `step`: train.beta times the schedule's
  weight (train.kl_schedule 'linear': `linear_kl_weight`; 'cyclical':
  `cyclical_kl_weight`)."""
  train = train_config
  if train.kl_schedule == "cyclical":
    weight = cyclical_kl_weight(step, total_steps, train.kl_cycles, train.kl_cycle_ratio)
  else:
    weight = linear_kl_weight(step, steps_per_epoch, train.kl_warmup_epochs,
                              train.kl_start_weight)
  return train.beta * weight


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
