"""The VAE: one class for the plain VAE and the generative skip model, images and text,
with amortized or semi-amortized inference.

The decoder's `skip` flag is the only difference between the VAE and the Skip-VAE; an
`inference.SemiAmortized` makes either semi-amortized (SA-VAE, Skip-SA-VAE).
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from skip_vae_tf import objectives
from skip_vae_tf.models import encoders
from skip_vae_tf.models import inference as inference_lib
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

  `inference` (`inference.Amortized` by default) says what the posterior is and which terms
  a pass adds: with `inference.SemiAmortized` those are the terms at the refined posterior,
  plus the encoder's own posterior's `amortized_*` terms.
  """

  def __init__(self, encoder: keras.layers.Layer, decoder: keras.layers.Layer,
               latent_dim: int, inference: inference_lib.Amortized | None = None, **kwargs):
    super().__init__(**kwargs)
    self.encoder = encoder
    self.decoder = decoder
    self.latent_dim = latent_dim
    self.inference = inference or inference_lib.Amortized()
    # Posterior draws are stateless, seeded from a checkpointed state: a resumed run draws
    # what an uninterrupted one would have.
    self.sampling_seed = seeds.SeedState(name="sampling_seed")

  def build(self, input_shape):
    """Nothing to create here: the encoder and decoder build on the first call."""
    del input_shape

  def prior(self) -> tfd.Distribution:
    return tfd.Independent(tfd.Normal(tf.zeros([self.latent_dim]), 1.0),
                           reinterpreted_batch_ndims=1)

  def terms_fn(self, x, training: bool) -> refinement_lib.TermsFn:
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

  def posterior(self, x, training=False, kl_weight=1.0) -> tfd.Distribution:
    """q(z|x): the encoder's, refined when the model is semi-amortized."""
    initial = self.encoder(x, training=training)
    return self.inference.posterior(self, x, initial, training, kl_weight)[0]

  def call(self, x, training=False, kl_weight=1.0):
    initial = self.encoder(x, training=training)
    posterior, first_terms = self.inference.posterior(self, x, initial, training, kl_weight)
    terms = self.terms_at(x, initial, posterior, first_terms, training)
    terms.update(self.inference.encoder_terms(initial, posterior))
    return terms

  def terms_at(self, x, initial, posterior, first_terms, training: bool) -> dict:
    """The ELBO terms at `posterior` (one sample) and the inference's own terms of the
    encoder's `initial` posterior (`first_terms`: the first refinement step's)."""
    z = posterior.sample(seed=self.sampling_seed.next())
    terms = objectives.elbo_terms(self.decoder.log_likelihood(x, z, training=training),
                                  posterior, self.prior())
    terms.update(inference_lib.posterior_outputs(posterior, z))
    terms.update(self.decoder.per_example_counts(x))
    terms.update(self.inference.extra_terms(self, initial, first_terms, terms))
    return terms

  def terms_and_gradients(self, x, kl_weight, loss_scale: float,
                          loss_fn=objectives.weighted_loss):
    """Training terms (as `call(x, training=True)`) and the gradients, aligned with
    `trainable_variables`, of loss_scale * sum_b loss_fn(terms, kl_weight)_b, as the
    inference computes them (`inference.SemiAmortized`: memory O(1) in the steps)."""
    return self.inference.terms_and_gradients(self, x, kl_weight, loss_scale, loss_fn)

  def reconstruct_and_sample(self, x: tf.Tensor, num_prior_samples: int,
                             seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Decoded from the posterior means of x, and from `num_prior_samples` prior draws
    (`decoder.summary_decodes`: images are sampled, text decoded greedily and sampled)."""
    prior_seed, sample_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    means = self.encoder(x, training=False).distribution.loc
    prior_z = tf.random.stateless_normal([num_prior_samples, self.latent_dim], prior_seed)
    return self.decoder.summary_decodes(means, prior_z, sample_seed)


def build_vae(encoder: keras.layers.Layer, decoder: keras.layers.Layer, latent_dim: int,
              skip: bool, example_input: tf.Tensor,
              inference: inference_lib.Amortized | None = None) -> VAE:
  """A VAE of `encoder` and `decoder` (amortized unless an `inference` says otherwise), its
  variables created by a call on `example_input` (one example of the model's input)."""
  inference = inference or inference_lib.Amortized()
  name = ("skip_" if skip else "") + inference.model_suffix
  # The VAE itself computes in float32 (prior, KL, sampling): only the networks inside
  # may take a mixed policy (skip_vae_tf.precision).
  model = VAE(encoder, decoder, latent_dim, inference, name=name, dtype="float32")
  model(example_input)
  return model
