"""The VAE: one class for the plain VAE and the generative skip model, images and text,
with amortized or semi-amortized inference.

The decoder's `skip` flag is the only difference between the VAE and the Skip-VAE; a
`refinement.Refinement` makes either semi-amortized (SA-VAE, Skip-SA-VAE).
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from skip_vae_tf import objectives
from skip_vae_tf.models import encoders
from skip_vae_tf.models import refinement as refinement_lib
from skip_vae_tf.models import seeds

tfd = tfp.distributions


class VAE(keras.Model):
  """Encoder q(z|x), decoder p(x|z) and a standard-normal prior p(z) over (D,).

  x is a batch of binary images (B, 28, 28, 1) float32 or of padded sentences (B, L)
  int32. `call(x)` returns the per-example ELBO terms (nats per example, see
  `objectives.elbo_terms`) plus the posterior parameters `posterior_mean`,
  `posterior_log_variance` (B, D) and the sample `z` (B, D) they were evaluated at; for
  text also `num_tokens` (B,), the tokens each sentence's likelihood covers.

  With a `refinement` (semi-amortized inference) those are the terms at the refined
  posterior, and `amortized_negative_elbo`, `amortized_reconstruction_nll`,
  `amortized_kl`, `amortized_posterior_mean`, `amortized_posterior_log_variance`,
  `amortized_z` give the encoder's own posterior (the first refinement step's terms);
  without end-to-end training `encoder_refinement_kl` (B,) = KL(q_0 || q_K) trains the
  encoder towards the refined posterior.
  """

  def __init__(self, encoder: keras.layers.Layer, decoder: keras.layers.Layer,
               latent_dim: int, refinement: refinement_lib.Refinement | None = None,
               **kwargs):
    super().__init__(**kwargs)
    self.encoder = encoder
    self.decoder = decoder
    self.latent_dim = latent_dim
    self.refinement = refinement
    # Posterior draws are stateless, seeded from a checkpointed state: a resumed run draws
    # what an uninterrupted one would have.
    self.sampling_seed = seeds.SeedState(name="sampling_seed")

  def build(self, input_shape):
    """Nothing to create here: the encoder and decoder build on the first call."""
    del input_shape

  def prior(self) -> tfd.Distribution:
    return tfd.Independent(tfd.Normal(tf.zeros([self.latent_dim]), 1.0),
                           reinterpreted_batch_ndims=1)

  def _terms_fn(self, x, training: bool) -> refinement_lib.TermsFn:
    """The refinement's objective: per-example (reconstruction NLL, KL) at the sample (and
    decoder dropout) that `seed` draws."""
    prior = self.prior()

    def terms(mean, log_variance, seed):
      noise = tf.random.stateless_normal(tf.shape(mean), seed, dtype=mean.dtype)
      z = mean + tf.exp(0.5 * log_variance) * noise
      nll = -self.decoder.log_likelihood(
          x, z, training=training, seed=tf.random.experimental.stateless_fold_in(seed, 1))
      return nll, tfd.kl_divergence(encoders.diagonal_gaussian(mean, log_variance), prior)

    return terms

  def _refine(self, x, initial: tfd.Distribution, training: bool, kl_weight):
    """(refined posterior, per-example (NLL, KL) of the first step or None). Zero steps
    leave the encoder's posterior itself: the amortized VAE."""
    if not self.refinement.steps:
      return initial, None
    seeds = [self.sampling_seed.next() for _ in range(self.refinement.steps)]
    mean, log_variance, first_terms, _ = self.refinement.refine(
        self._terms_fn(x, training), *_parameters(initial), kl_weight, seeds)
    return encoders.diagonal_gaussian(mean, log_variance), first_terms

  def posterior(self, x, training=False, kl_weight=1.0) -> tfd.Distribution:
    """q(z|x): the encoder's, refined when the model is semi-amortized."""
    initial = self.encoder(x, training=training)
    if self.refinement is None:
      return initial
    return self._refine(x, initial, training, kl_weight)[0]

  def call(self, x, training=False, kl_weight=1.0):
    initial = self.encoder(x, training=training)
    posterior, first_terms = initial, None
    if self.refinement is not None:
      posterior, first_terms = self._refine(x, initial, training, kl_weight)
    terms = self._terms_at(x, initial, posterior, first_terms, training)
    if self.refinement is not None and not self.refinement.end_to_end:
      terms["encoder_refinement_kl"] = _refinement_kl(initial, posterior)
    return terms

  def _terms_at(self, x, initial, posterior, first_terms, training: bool) -> dict:
    """The ELBO terms at `posterior` (one sample) and, when semi-amortized, the amortized
    terms of the encoder's `initial` posterior (`first_terms`: the first step's)."""
    z = posterior.sample(seed=self.sampling_seed.next())
    terms = objectives.elbo_terms(self.decoder.log_likelihood(x, z, training=training),
                                  posterior, self.prior())
    terms.update(_posterior_outputs(posterior, z))
    terms.update(self.decoder.per_example_counts(x))
    if self.refinement is not None:
      nll, kl = first_terms or (terms["reconstruction_nll"], terms["kl"])
      amortized = {"negative_elbo": nll + kl, "reconstruction_nll": nll, "kl": kl,
                   **_posterior_outputs(initial, initial.sample(
                       seed=self.sampling_seed.next()))}
      terms.update({f"amortized_{name}": value for name, value in amortized.items()})
    return terms

  def semi_amortized_gradients(self, x, kl_weight, loss_scale: float,
                               loss_fn=objectives.weighted_loss):
    """Training terms (as `call(x, training=True)`) and the gradients, aligned with
    `trainable_variables`, of loss_scale * sum_b loss_fn(terms, kl_weight)_b, for a
    semi-amortized model with memory O(1) in the refinement steps: the forward pass keeps
    only each step's parameters; end to end, the backward pass walks the steps in reverse
    and recomputes each one's clipped gradient under a tape (exact second-order terms for
    the step's parameters and the decoder). Equal to differentiating `call` (tested)."""
    steps = self.refinement
    with tf.GradientTape(persistent=True) as encoder_tape:
      initial = self.encoder(x, training=True)
      initial_params = _parameters(initial)
    terms_fn = self._terms_fn(x, training=True)
    seeds = [self.sampling_seed.next() for _ in range(steps.steps)]
    # No tape records this walk: only each step's input parameters are kept.
    *params, first_terms, inputs = steps.refine(
        terms_fn, *(tf.stop_gradient(p) for p in initial_params), kl_weight, seeds)
    decoder_variables = self.decoder.trainable_variables
    with tf.GradientTape() as tape:
      tape.watch(params)
      posterior = encoders.diagonal_gaussian(*params)
      terms = self._terms_at(x, initial, posterior, first_terms, training=True)
      loss = loss_scale * tf.reduce_sum(loss_fn(terms, kl_weight))
    *decoder_grads, adjoint_mean, adjoint_log_variance = _zeros_for_none(
        tape.gradient(loss, [*decoder_variables, *params]), [*decoder_variables, *params])
    encoder_variables = self.encoder.trainable_variables
    if steps.end_to_end:
      adjoint, decoder_grads = self._backward_steps(
          terms_fn, kl_weight, inputs, seeds, [adjoint_mean, adjoint_log_variance],
          decoder_grads)
      encoder_grads = encoder_tape.gradient(initial_params, encoder_variables,
                                            output_gradients=adjoint)
    else:
      with encoder_tape:
        terms["encoder_refinement_kl"] = _refinement_kl(initial, posterior)
        encoder_loss = loss_scale * tf.reduce_sum(terms["encoder_refinement_kl"])
      encoder_grads = encoder_tape.gradient(encoder_loss, encoder_variables)
    encoder_grads = _zeros_for_none(encoder_grads, encoder_variables)
    by_variable = {id(v): g for v, g in zip([*encoder_variables, *decoder_variables],
                                             [*encoder_grads, *decoder_grads])}
    return terms, [by_variable.get(id(v)) for v in self.trainable_variables]

  def _backward_steps(self, terms_fn, kl_weight, inputs, seeds, adjoint, decoder_grads):
    """Reverse mode through the steps, one recomputed step at a time: from d loss / d final
    params (`adjoint`), the gradient with respect to the initial params, and the decoder's
    gradients plus their paths through the steps. Step k: x_k+1 = x_k + lr v_k,
    v_k = momentum v_k-1 - clip(g(x_k))."""
    steps, decoder_variables = self.refinement, self.decoder.trainable_variables
    velocity_adjoint = [0.0, 0.0]
    for k in reversed(range(len(seeds))):
      velocity_adjoint = [a + lr * b for a, lr, b in
                          zip(velocity_adjoint, steps.learning_rates, adjoint)]
      # Recompute step k only once step k + 1 is done (in a graph, independent
      # recomputations would otherwise run together and hold all steps' activations).
      with tf.control_dependencies(adjoint):
        params = [tf.identity(p) for p in inputs[k]]
      with tf.GradientTape() as tape:
        tape.watch(params)
        _, _, clipped = steps.clipped_gradients(terms_fn, kl_weight, *params, seeds[k])
      through = _zeros_for_none(tape.gradient(
          clipped, [*params, *decoder_variables],
          output_gradients=[-a for a in velocity_adjoint]), [*params, *decoder_variables])
      adjoint = [a + b for a, b in zip(adjoint, through[:2])]
      decoder_grads = [a + b for a, b in zip(decoder_grads, through[2:])]
      velocity_adjoint = [steps.momentum * a for a in velocity_adjoint]
    return adjoint, decoder_grads

  def reconstruct_and_sample(self, x: tf.Tensor, num_prior_samples: int,
                             seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Decoded from the posterior means of x, and from `num_prior_samples` prior draws
    (`decoder.summary_decodes`: images are sampled, text decoded greedily and sampled)."""
    prior_seed, sample_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    means = self.encoder(x, training=False).distribution.loc
    prior_z = tf.random.stateless_normal([num_prior_samples, self.latent_dim], prior_seed)
    return self.decoder.summary_decodes(means, prior_z, sample_seed)


def _refinement_kl(initial: tfd.Distribution, refined: tfd.Distribution) -> tf.Tensor:
  """(B,) KL(q_0 || q_K) with q_K held fixed: the encoder's loss without end-to-end training
  (the official `train_kl`)."""
  fixed = encoders.diagonal_gaussian(*(tf.stop_gradient(p) for p in _parameters(refined)))
  return tfd.kl_divergence(initial, fixed)


def _zeros_for_none(gradients, variables) -> list[tf.Tensor]:
  """Gradients with None (no path) replaced by zeros of the variable's shape."""
  return [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
          for g, v in zip(gradients, variables)]


def _parameters(posterior: tfd.Distribution) -> list[tf.Tensor]:
  """[mean, log_variance] (B, D) of a diagonal Gaussian posterior."""
  return [posterior.distribution.loc, 2.0 * tf.math.log(posterior.distribution.scale)]


def _posterior_outputs(posterior: tfd.Distribution, z: tf.Tensor) -> dict[str, tf.Tensor]:
  mean, log_variance = _parameters(posterior)
  return {"posterior_mean": mean, "posterior_log_variance": log_variance, "z": z}


def build_vae(encoder: keras.layers.Layer, decoder: keras.layers.Layer, latent_dim: int,
              skip: bool, example_input: tf.Tensor,
              refinement: refinement_lib.Refinement | None = None) -> VAE:
  """A VAE of `encoder` and `decoder` (semi-amortized with a `refinement`), its variables
  created by a call on `example_input` (one example of the model's input)."""
  name = ("skip_" if skip else "") + ("sa_vae" if refinement is not None else "vae")
  # The VAE itself computes in float32 (prior, KL, sampling): only the networks inside
  # may take a mixed policy (skip_vae_tf.precision).
  model = VAE(encoder, decoder, latent_dim, refinement, name=name, dtype="float32")
  model(example_input)
  return model
