"""How q(z|x) is inferred: `Amortized` (the encoder's posterior) or `SemiAmortized` (the
encoder's, refined by SA-VAE's steps, `refinement.Refinement`).

The VAE, the step builder and the network builders ask the model's inference object
(`vae.inference`) instead of testing flags: what the posterior is, which terms a forward
pass adds, how a training step gets its gradients, whether XLA may compile the step and
whether the decoder must be twice differentiable.
"""

import tensorflow as tf
import tensorflow_probability as tfp

from skip_vae_tf import objectives
from skip_vae_tf.models import encoders
from skip_vae_tf.models import refinement as refinement_lib

tfd = tfp.distributions


class Amortized:
  """q(z|x) is the encoder's own posterior (the VAE and the Skip-VAE)."""
  model_suffix = "vae"
  compiles_with_xla = True
  needs_second_derivative = False

  def posterior(self, vae, x, initial: tfd.Distribution, training: bool, kl_weight):
    """(the posterior, the per-example (NLL, KL) of the first refinement step or None)."""
    del vae, x, training, kl_weight
    return initial, None

  def extra_terms(self, vae, initial, first_terms, terms) -> dict:
    """Terms a forward pass adds beside the ELBO `terms` at the posterior (none)."""
    del vae, initial, first_terms, terms
    return {}

  def encoder_terms(self, initial, posterior) -> dict:
    """Terms that train the encoder other than through the ELBO (none)."""
    del initial, posterior
    return {}

  def terms_and_gradients(self, vae, x, kl_weight, loss_scale: float, loss_fn):
    """Training terms (as `vae(x, training=True)`) and the gradients, aligned with
    `vae.trainable_variables`, of loss_scale * sum_b loss_fn(terms, kl_weight)_b."""
    with tf.GradientTape() as tape:
      terms = vae(x, training=True, kl_weight=kl_weight)
      loss = loss_scale * tf.reduce_sum(loss_fn(terms, kl_weight))
    return terms, tape.gradient(loss, vae.trainable_variables)


class SemiAmortized(Amortized):
  """The encoder's posterior refined by `refinement`'s K steps (SA-VAE, Skip-SA-VAE).

  A forward pass adds the encoder's own posterior's terms (`amortized_negative_elbo`,
  `amortized_reconstruction_nll`, `amortized_kl`, `amortized_posterior_mean`,
  `amortized_posterior_log_variance`, `amortized_z`: the first refinement step's terms) and,
  without end-to-end training (`encoder_terms`), `encoder_refinement_kl` (B,) =
  KL(q_0 || q_K), which trains the encoder towards the refined posterior. Not compiled with
  XLA: XLA schedules the recomputed refinement steps together (16 GB at the default image
  config) and takes minutes to compile them.
  """
  model_suffix = "sa_vae"
  compiles_with_xla = False
  needs_second_derivative = True

  def __init__(self, refinement: refinement_lib.Refinement):
    self.refinement = refinement

  def posterior(self, vae, x, initial: tfd.Distribution, training: bool, kl_weight):
    """Zero steps leave the encoder's posterior itself."""
    if not self.refinement.steps:
      return initial, None
    seeds = [vae.sampling_seed.next() for _ in range(self.refinement.steps)]
    mean, log_variance, first_terms, _ = self.refinement.refine(
        vae.terms_fn(x, training), *parameters(initial), kl_weight, seeds)
    return encoders.diagonal_gaussian(mean, log_variance), first_terms

  def extra_terms(self, vae, initial, first_terms, terms) -> dict:
    nll, kl = first_terms or (terms["reconstruction_nll"], terms["kl"])
    amortized = {"negative_elbo": nll + kl, "reconstruction_nll": nll, "kl": kl,
                 **posterior_outputs(initial, initial.sample(seed=vae.sampling_seed.next()))}
    return {f"amortized_{name}": value for name, value in amortized.items()}

  def encoder_terms(self, initial, posterior) -> dict:
    if self.refinement.end_to_end:
      return {}
    return {"encoder_refinement_kl": _refinement_kl(initial, posterior)}

  def terms_and_gradients(self, vae, x, kl_weight, loss_scale: float,
                          loss_fn=objectives.weighted_loss):
    """As `Amortized.terms_and_gradients`, with memory O(1) in the refinement steps: the
    forward pass keeps only each step's parameters and gradients; end to end, the backward
    pass walks the steps in reverse, each step's second-order terms for its parameters and
    the decoder by the refinement's `second_order`: `_ExactPullback` (equal to
    differentiating `vae(x, training=True)`, tested) or `_FiniteDifferencePullback` (within
    float32 finite-difference error of it, tested)."""
    if not self.refinement.steps:
      return super().terms_and_gradients(vae, x, kl_weight, loss_scale, loss_fn)
    with tf.GradientTape(persistent=True) as encoder_tape:
      initial = vae.encoder(x, training=True)
      initial_params = parameters(initial)
    terms_fn = vae.terms_fn(x, training=True)
    seeds = [vae.sampling_seed.next() for _ in range(self.refinement.steps)]
    decoder_variables = vae.decoder.trainable_variables
    finite_differences = (self.refinement.end_to_end
                          and self.refinement.second_order == "finite_difference")
    # No tape records this walk: only each step's inputs and gradients are kept.
    *params, first_terms, trajectory = self.refinement.refine(
        terms_fn, *(tf.stop_gradient(p) for p in initial_params), kl_weight, seeds,
        variables=decoder_variables if finite_differences else ())
    with tf.GradientTape() as tape:
      tape.watch(params)
      posterior = encoders.diagonal_gaussian(*params)
      terms = vae.terms_at(x, initial, posterior, first_terms, training=True)
      loss = loss_scale * tf.reduce_sum(loss_fn(terms, kl_weight))
    *decoder_grads, adjoint_mean, adjoint_log_variance = refinement_lib.zeros_for_none(
        tape.gradient(loss, [*decoder_variables, *params]), [*decoder_variables, *params])
    encoder_variables = vae.encoder.trainable_variables
    if self.refinement.end_to_end:
      pullback = (_FiniteDifferencePullback(self.refinement, terms_fn, kl_weight, trajectory,
                                            decoder_variables) if finite_differences
                  else _ExactPullback(self.refinement, terms_fn, kl_weight, decoder_variables))
      adjoint, decoder_grads = self._backward_steps(
          pullback, trajectory, seeds, [adjoint_mean, adjoint_log_variance], decoder_grads)
      encoder_grads = encoder_tape.gradient(initial_params, encoder_variables,
                                            output_gradients=adjoint)
    else:
      with encoder_tape:
        terms.update(self.encoder_terms(initial, posterior))
        encoder_loss = loss_scale * tf.reduce_sum(terms["encoder_refinement_kl"])
      encoder_grads = encoder_tape.gradient(encoder_loss, encoder_variables)
    encoder_grads = refinement_lib.zeros_for_none(encoder_grads, encoder_variables)
    by_variable = {id(v): g for v, g in zip([*encoder_variables, *decoder_variables],
                                             [*encoder_grads, *decoder_grads])}
    return terms, [by_variable.get(id(v)) for v in vae.trainable_variables]

  def _backward_steps(self, pullback, trajectory, seeds, adjoint, decoder_grads):
    """Reverse mode through the steps, one step at a time: from d loss / d final params
    (`adjoint`), the gradient with respect to the initial params, and the decoder's
    gradients plus their paths through the steps. Step k: x_k+1 = x_k + lr v_k,
    v_k = momentum v_k-1 - clip(g(x_k)); `pullback` gives each step's vector-Jacobian
    product of clip(g(x_k)) and turns the sum of its decoder terms into their gradient."""
    steps = self.refinement
    velocity_adjoint, decoder_paths = [0.0, 0.0], [0.0] * len(decoder_grads)
    for k in reversed(range(len(seeds))):
      velocity_adjoint = [a + lr * b for a, lr, b in
                          zip(velocity_adjoint, steps.learning_rates, adjoint)]
      # Recompute step k only once step k + 1 is done (in a graph, independent
      # recomputations would otherwise run together and hold all steps' activations).
      with tf.control_dependencies(adjoint):
        params = [tf.identity(p) for p in trajectory.inputs[k]]
      through = pullback(k, params, seeds[k], [-a for a in velocity_adjoint])
      adjoint = [a + b for a, b in zip(adjoint, through[:2])]
      decoder_paths = [a + b for a, b in zip(decoder_paths, through[2:])]
      velocity_adjoint = [steps.momentum * a for a in velocity_adjoint]
    return adjoint, [a + b for a, b in zip(decoder_grads, pullback.finish(decoder_paths))]


class _ExactPullback:
  """Step k's vector-Jacobian product by reverse over reverse: its clipped gradient
  recomputed under a tape and differentiated (second-order terms exact)."""

  def __init__(self, refinement, terms_fn, kl_weight, decoder_variables):
    self.refinement, self.terms_fn, self.kl_weight = refinement, terms_fn, kl_weight
    self.decoder_variables = decoder_variables

  def __call__(self, k, params, seed, cotangent):
    """[d/d mean, d/d log_variance, *d/d decoder variables] of <cotangent, clip(g(params))>."""
    del k
    with tf.GradientTape() as tape:
      tape.watch(params)
      _, _, gradients = self.refinement.gradients(self.terms_fn, self.kl_weight, *params, seed)
      clipped = self.refinement.clip(gradients)
    sources = [*params, *self.decoder_variables]
    return refinement_lib.zeros_for_none(
        tape.gradient(clipped, sources, output_gradients=cotangent), sources)

  def finish(self, decoder_paths):
    """The decoder's gradients through the steps from the sum of `__call__`'s terms."""
    return decoder_paths


class _FiniteDifferencePullback:
  """Step k's vector-Jacobian product by a one-sided difference of the full gradient (the
  official code's method, with the clip's own Jacobian exact): the cotangent pulled back
  through the clip is the direction u_k, and

    d/d(x, theta) <u_k, g(x_k)>  ~  [grad L(x_k + h u_k) - grad L(x_k)] / h.

  grad_x L(x_k) is the trajectory's; the decoder's sum over k of grad_theta L(x_k) is the
  trajectory's `variable_gradient_sum`, subtracted once in `finish`, so h is one step size
  for all steps: sqrt(float32 eps) (1 + |x|) / |u| at the last step."""

  def __init__(self, refinement, terms_fn, kl_weight, trajectory, decoder_variables):
    self.refinement, self.terms_fn, self.kl_weight = refinement, terms_fn, kl_weight
    self.trajectory, self.decoder_variables = trajectory, decoder_variables
    self.step_size = None

  def __call__(self, k, params, seed, cotangent):
    """As `_ExactPullback.__call__`, the decoder's terms grad_theta L(x_k + h u_k)."""
    unclipped = self.trajectory.gradients[k]
    with tf.GradientTape() as tape:
      tape.watch(unclipped)
      clipped = [tf.identity(g) for g in self.refinement.clip(unclipped)]
    direction = tape.gradient(clipped, unclipped, output_gradients=cotangent)
    if self.step_size is None:
      self.step_size = _step_size(params, direction)
    shifted = [p + self.step_size * u for p, u in zip(params, direction)]
    _, _, gradients = self.refinement.gradients(self.terms_fn, self.kl_weight, *shifted, seed,
                                                self.decoder_variables)
    return ([(a - b) / self.step_size for a, b in zip(gradients[:2], unclipped)]
            + gradients[2:])

  def finish(self, decoder_paths):
    """(sum_k grad_theta L(x_k + h u_k) - sum_k grad_theta L(x_k)) / h from the first sum."""
    return [(a - b) / self.step_size for a, b in
            zip(decoder_paths, self.trajectory.variable_gradient_sum)]


def _step_size(params, direction) -> tf.Tensor:
  """sqrt(float32 eps) (1 + |params|) / |direction| over both tensors: a one-sided
  difference's balance of rounding and truncation error."""
  norm = lambda tensors: tf.sqrt(sum(tf.reduce_sum(tf.square(t)) for t in tensors))
  root_eps = tf.cast(tf.sqrt(tf.constant(1.1920929e-07)), params[0].dtype)
  return root_eps * (1.0 + norm(params)) / tf.maximum(norm(direction), 1e-30)


def _refinement_kl(initial: tfd.Distribution, refined: tfd.Distribution) -> tf.Tensor:
  """(B,) KL(q_0 || q_K) with q_K held fixed: the encoder's loss without end-to-end training
  (the official `train_kl`)."""
  fixed = encoders.diagonal_gaussian(*(tf.stop_gradient(p) for p in parameters(refined)))
  return tfd.kl_divergence(initial, fixed)


def parameters(posterior: tfd.Distribution) -> list[tf.Tensor]:
  """[mean, log_variance] (B, D) of a diagonal Gaussian posterior."""
  return [posterior.distribution.loc, 2.0 * tf.math.log(posterior.distribution.scale)]


def posterior_outputs(posterior: tfd.Distribution, z: tf.Tensor) -> dict[str, tf.Tensor]:
  """The posterior's parameters and the sample `z` (B, D) terms are evaluated at."""
  mean, log_variance = parameters(posterior)
  return {"posterior_mean": mean, "posterior_log_variance": log_variance, "z": z}
