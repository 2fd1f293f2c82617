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
    """The refinement's objective: per-example (reconstruction NLL, KL) at a fresh sample."""
    prior = self.prior()

    def terms(mean, log_variance, step):
      del step  # Each call draws from the next seed of the checkpointed seed state.
      posterior = encoders.diagonal_gaussian(mean, log_variance)
      z = posterior.sample(seed=self.sampling_seed.next())
      return (-self.decoder.log_likelihood(x, z, training=training),
              tfd.kl_divergence(posterior, prior))

    return terms

  def _refine(self, x, initial: tfd.Distribution, training: bool, kl_weight):
    """(refined posterior, per-example (NLL, KL) of the first step or None). Zero steps
    leave the encoder's posterior itself: the amortized VAE."""
    if not self.refinement.steps:
      return initial, None
    mean, log_variance, first_terms = self.refinement.refine(
        self._terms_fn(x, training), initial.distribution.loc,
        2.0 * tf.math.log(initial.distribution.scale), kl_weight)
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
      if not self.refinement.end_to_end:
        terms["encoder_refinement_kl"] = tfd.kl_divergence(
            initial, encoders.diagonal_gaussian(*(tf.stop_gradient(terms[k]) for k in (
                "posterior_mean", "posterior_log_variance"))))
    return terms

  def reconstruct_and_sample(self, x: tf.Tensor, num_prior_samples: int,
                             seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Decoded from the posterior means of x, and from `num_prior_samples` prior draws
    (`decoder.summary_decodes`: images are sampled, text decoded greedily and sampled)."""
    prior_seed, sample_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    means = self.encoder(x, training=False).distribution.loc
    prior_z = tf.random.stateless_normal([num_prior_samples, self.latent_dim], prior_seed)
    return self.decoder.summary_decodes(means, prior_z, sample_seed)


def _posterior_outputs(posterior: tfd.Distribution, z: tf.Tensor) -> dict[str, tf.Tensor]:
  return {"posterior_mean": posterior.distribution.loc,
          "posterior_log_variance": 2.0 * tf.math.log(posterior.distribution.scale), "z": z}


def build_vae(encoder: keras.layers.Layer, decoder: keras.layers.Layer, latent_dim: int,
              skip: bool, example_input: tf.Tensor,
              refinement: refinement_lib.Refinement | None = None) -> VAE:
  """A VAE of `encoder` and `decoder` (semi-amortized with a `refinement`), its variables
  created by a call on `example_input` (one example of the model's input)."""
  name = ("skip_" if skip else "") + ("sa_vae" if refinement is not None else "vae")
  model = VAE(encoder, decoder, latent_dim, refinement, name=name)
  model(example_input)
  return model
