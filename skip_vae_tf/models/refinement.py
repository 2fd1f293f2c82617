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
encoder and the decoder get the gradient through all K steps (second-order terms exact by
automatic differentiation, or by finite differences as the official code). Otherwise the
refined parameters are constants for the decoder's loss and the encoder is trained towards
them with KL(q_0 || q_K) (the official `train_kl` default).

Differentiating through `refine` keeps every step's activations (memory O(K)): fine for
evaluation and small models. Training (`inference.SemiAmortized.terms_and_gradients`) walks
the steps backwards one at a time (memory O(1) in K, as the official code recomputes the
loss at each step), with one of two `second_order` methods for the step's vector-Jacobian
product:

  exact              reverse over reverse: the step's gradient recomputed under a tape and
                     differentiated (about 8 decoder passes per step, forward walk included).
  finite_difference  one-sided differences of the full gradient, as the official code:
                     [grad L(x_k + h u_k) - grad L(x_k)] / h for the mean, the log-variance
                     and the decoder's weights, where u_k is the cotangent pulled back through
                     the clip exactly (about 6 passes per step). The forward walk sums the
                     decoder's gradients (one buffer of the decoder's size); h is shared by
                     all steps. float32 only: bfloat16 rounding swamps the differences.

Every step's randomness (the posterior sample, dropout) comes from an explicit seed, so the
recomputation draws what the forward pass drew.
"""

import dataclasses
from collections.abc import Callable

import tensorflow as tf

# (mean, log_variance, seed) -> ((B,) reconstruction NLL, (B,) KL): the per-example terms
# at one posterior sample (and dropout mask) drawn from the (2,) int32 stateless `seed`.
TermsFn = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


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
  second_order: str = "exact"  # 'exact' or 'finite_difference' (module docstring).

  def refine(self, terms_fn: TermsFn, mean: tf.Tensor, log_variance: tf.Tensor,
             kl_weight: tf.Tensor, seeds: list[tf.Tensor], variables=()):
    """(refined mean, refined log_variance, the first step's per-example (NLL, KL) or None
    when steps is 0, the `Trajectory`); parameters (B, D).

    `seeds` holds one (2,) int32 stateless seed per step. Without `end_to_end` the refined
    parameters carry no gradient. With `variables`, the trajectory also sums the steps'
    batch-mean loss gradients with respect to them (finite differences need it).
    """
    if not self.end_to_end:
      mean, log_variance = tf.stop_gradient(mean), tf.stop_gradient(log_variance)
    velocity = [tf.zeros_like(mean), tf.zeros_like(log_variance)]  # p_-1 = 0: p_0 = -g_0.
    initial_terms, trajectory = None, Trajectory([], [], [tf.zeros_like(v) for v in variables])
    for seed in seeds[:self.steps]:
      trajectory.inputs.append([mean, log_variance])
      nll, kl, gradients = self.gradients(terms_fn, kl_weight, mean, log_variance, seed,
                                          variables)
      trajectory.gradients.append(gradients[:2])
      trajectory.variable_gradient_sum = [
          a + b for a, b in zip(trajectory.variable_gradient_sum, gradients[2:])]
      velocity = [self.momentum * v - g for v, g in zip(velocity, self.clip(gradients[:2]))]
      mean, log_variance = (mean + self.learning_rates[0] * velocity[0],
                            log_variance + self.learning_rates[1] * velocity[1])
      initial_terms = initial_terms or (nll, kl)
    if not self.end_to_end:
      mean, log_variance = tf.stop_gradient(mean), tf.stop_gradient(log_variance)
    return mean, log_variance, initial_terms, trajectory

  def gradients(self, terms_fn: TermsFn, kl_weight: tf.Tensor, mean, log_variance, seed,
                variables=()):
    """(NLL, KL, unclipped [d/d mean, d/d log_variance, *d/d variables] of the batch-mean
    loss NLL + kl_weight KL) at one step; a variable without a path gets zeros."""
    with tf.GradientTape() as tape:
      tape.watch([mean, log_variance])
      nll, kl = terms_fn(mean, log_variance, seed)
      loss = tf.reduce_mean(nll + tf.cast(kl_weight, kl.dtype) * kl)
    targets = [mean, log_variance, *variables]
    return nll, kl, zeros_for_none(tape.gradient(loss, targets), targets)

  def clip(self, gradients: list[tf.Tensor]) -> list[tf.Tensor]:
    """Each of [d/d mean, d/d log_variance] clipped on its own (`clip_by_norm`)."""
    return [clip_by_norm(g, self.max_grad_norm) for g in gradients]


@dataclasses.dataclass
class Trajectory:
  """What the backward walk needs of a refinement: each step's input [mean, log_variance]
  and unclipped gradients [d/d mean, d/d log_variance] (B, D), and the sum over steps of the
  loss gradients with respect to `refine`'s variables."""
  inputs: list
  gradients: list
  variable_gradient_sum: list


def zeros_for_none(gradients, variables) -> list[tf.Tensor]:
  """Gradients with None (no path) replaced by zeros of the variable's shape."""
  return [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
          for g, v in zip(gradients, variables)]
