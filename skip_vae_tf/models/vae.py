"""The VAE: one class for the plain VAE and the generative skip model, images and text.

The decoder's `skip` flag is the only difference between the two.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from skip_vae_tf import objectives
from skip_vae_tf.models import seeds

tfd = tfp.distributions


class VAE(keras.Model):
  """Encoder q(z|x), decoder p(x|z) and a standard-normal prior p(z) over (D,).

  x is a batch of binary images (B, 28, 28, 1) float32 or of padded sentences (B, L)
  int32. `call(x)` returns the per-example ELBO terms (nats per example, see
  `objectives.elbo_terms`) plus the posterior parameters `posterior_mean`,
  `posterior_log_variance` (B, D) and the sample `z` (B, D) they were evaluated at; for
  text also `num_tokens` (B,), the tokens each sentence's likelihood covers.
  """

  def __init__(self, encoder: keras.layers.Layer, decoder: keras.layers.Layer,
               latent_dim: int, **kwargs):
    super().__init__(**kwargs)
    self.encoder = encoder
    self.decoder = decoder
    self.latent_dim = latent_dim
    # Posterior draws are stateless, seeded from a checkpointed state: a resumed run draws
    # what an uninterrupted one would have.
    self.sampling_seed = seeds.SeedState(name="sampling_seed")

  def build(self, input_shape):
    """Nothing to create here: the encoder and decoder build on the first call."""
    del input_shape

  def prior(self) -> tfd.Distribution:
    return tfd.Independent(tfd.Normal(tf.zeros([self.latent_dim]), 1.0),
                           reinterpreted_batch_ndims=1)

  def call(self, x, training=False):
    posterior = self.encoder(x, training=training)
    z = posterior.sample(seed=self.sampling_seed.next())
    terms = objectives.elbo_terms(self.decoder.log_likelihood(x, z, training=training),
                                  posterior, self.prior())
    terms["posterior_mean"] = posterior.distribution.loc
    terms["posterior_log_variance"] = 2.0 * tf.math.log(posterior.distribution.scale)
    terms["z"] = z
    terms.update(self.decoder.per_example_counts(x))
    return terms

  def reconstruct_and_sample(self, x: tf.Tensor, num_prior_samples: int,
                             seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Decoded from the posterior means of x, and from `num_prior_samples` prior draws
    (`decoder.summary_decodes`: images are sampled, text decoded greedily and sampled)."""
    prior_seed, sample_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    means = self.encoder(x, training=False).distribution.loc
    prior_z = tf.random.stateless_normal([num_prior_samples, self.latent_dim], prior_seed)
    return self.decoder.summary_decodes(means, prior_z, sample_seed)


def build_vae(encoder: keras.layers.Layer, decoder: keras.layers.Layer, latent_dim: int,
              skip: bool, example_input: tf.Tensor) -> VAE:
  """A VAE of `encoder` and `decoder`, its variables created by a call on `example_input`
  (one example of the model's input)."""
  model = VAE(encoder, decoder, latent_dim, name="skip_vae" if skip else "vae")
  model(example_input)
  return model
