"""Semi-amortized inference (SA-VAE; Kim, Wiseman, Miller, Sontag, Rush, ICML 2018).

The encoder's posterior parameters (mean, log-variance) are refined by K steps of SGD with
momentum on the negative ELBO of the batch, the decoder held fixed, as the official
`OptimN2N` does (harvardnlp/sa-vae `optim_n2n.py`, used by the Skip-VAE code):

  g_k   = d/d(mean, log_var) mean_b [-log p(x_b|z_b) + beta KL(q_b || p)],  z_b ~ q_b (fresh)
  g_k  <- g_k * min(1, max_norm / (|g_k| + 1e-6))   for the mean and log-variance separately
  p_k   = momentum p_{k-1} - g_k                       (p_0 = -g_0)
  x_k+1 = x_k + lr p_k                                 (lr per parameter: mean, log-variance)

The loss is the batch mean, so a step moves example b by lr/B times its own gradient (at the
official batch of 50 and lr 1: 0.02), and the norms are taken over the whole (B, D) gradient
of the replica's batch, as in the official code. End to end (`end_to_end`), the final
parameters stay a differentiable function of the initial ones and of the decoder: the
encoder and the decoder get the exact gradient through all K steps (second-order terms by
automatic differentiation, where the official code uses finite-difference Hessian-vector
products). Otherwise the refined parameters are constants for the decoder's loss and the
encoder is trained towards them with KL(q_0 || q_K) (the official `train_kl` default).
"""

import dataclasses
from collections.abc import Callable

import tensorflow as tf

# (mean, log_variance, step) -> ((B,) reconstruction NLL, (B,) KL): the per-example terms
# at one posterior sample drawn fresh for step `step`.
TermsFn = Callable[[tf.Tensor, tf.Tensor, int], tuple[tf.Tensor, tf.Tensor]]


def clip_by_norm(gradient: tf.Tensor, max_norm: float) -> tf.Tensor:
  """The official clip: scale by max_norm / (|g| + 1e-6) when that is below 1 (0 = no clip)."""
  if not max_norm:
    return gradient
  scale = max_norm / (tf.norm(gradient) + 1e-6)
  return gradient * tf.minimum(scale, 1.0)


@dataclasses.dataclass(frozen=True)
class Refinement:
  """K refinement steps (see the module docstring). `steps` 0 refines nothing."""
  steps: int = 20
  learning_rates: tuple[float, float] = (1.0, 1.0)
  momentum: float = 0.5
  max_grad_norm: float = 5.0
  end_to_end: bool = True

  def refine(self, terms_fn: TermsFn, mean: tf.Tensor, log_variance: tf.Tensor,
             kl_weight: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tuple]:
    """Refined (mean, log_variance), each (B, D), and the per-example (reconstruction NLL,
    KL) at the initial parameters (the first step's, at its sample; None when steps is 0).

    Without `end_to_end` the refined parameters carry no gradient.
    """
    if not self.end_to_end:
      mean, log_variance = tf.stop_gradient(mean), tf.stop_gradient(log_variance)
    velocity, initial_terms = None, None
    for step in range(self.steps):
      with tf.GradientTape() as tape:
        tape.watch([mean, log_variance])
        nll, kl = terms_fn(mean, log_variance, step)
        loss = tf.reduce_mean(nll + tf.cast(kl_weight, kl.dtype) * kl)
      gradients = [clip_by_norm(g, self.max_grad_norm)
                   for g in tape.gradient(loss, [mean, log_variance])]
      if step == 0:
        initial_terms = (nll, kl)
        velocity = [-g for g in gradients]
      else:
        velocity = [self.momentum * v - g for v, g in zip(velocity, gradients)]
      mean, log_variance = (x + lr * v for x, lr, v in
                            zip((mean, log_variance), self.learning_rates, velocity))
    if not self.end_to_end:
      mean, log_variance = tf.stop_gradient(mean), tf.stop_gradient(log_variance)
    return mean, log_variance, initial_terms
