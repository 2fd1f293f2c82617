"""The VAE: one class for the plain VAE and the generative skip model.

The decoder's `skip` flag is the only difference between the two.
"""

import keras
import ml_collections
import tensorflow as tf
import tensorflow_probability as tfp

from skip_vae_tf import objectives
from skip_vae_tf.models import decoders
from skip_vae_tf.models import encoders

tfd = tfp.distributions


class VAE(keras.Model):
  """Encoder q(z|x), decoder p(x|z) and a standard-normal prior p(z) over (D,).

  `call(x)` returns the per-example ELBO terms (nats per example, see
  `objectives.elbo_terms`) plus the posterior parameters `posterior_mean`,
  `posterior_log_variance` (B, D) and the sample `z` (B, D) they were evaluated at.
  """

  def __init__(self, encoder: keras.layers.Layer, decoder: keras.layers.Layer,
               latent_dim: int, **kwargs):
    super().__init__(**kwargs)
    self.encoder = encoder
    self.decoder = decoder
    self.latent_dim = latent_dim

  def prior(self) -> tfd.Distribution:
    return tfd.Independent(tfd.Normal(tf.zeros([self.latent_dim]), 1.0),
                           reinterpreted_batch_ndims=1)

  def call(self, x, training=False):
    posterior = self.encoder(x, training=training)
    z = posterior.sample()
    terms = objectives.elbo_terms(x, posterior, self.prior(), self.decoder(x, z))
    terms["posterior_mean"] = posterior.distribution.loc
    terms["posterior_log_variance"] = 2.0 * tf.math.log(posterior.distribution.scale)
    terms["z"] = z
    return terms

  def reconstruct_and_sample(self, x: tf.Tensor, num_prior_samples: int,
                             seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Images decoded from the posterior means of x (B, H, W, 1), and from prior draws.

    Returns ((B, H, W, 1), (num_prior_samples, H, W, 1)) binary images.
    """
    prior_seed, decode_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    means = self.encoder(x, training=False).distribution.loc
    prior_z = tf.random.stateless_normal([num_prior_samples, self.latent_dim], prior_seed)
    images = self.decoder.sample(tf.concat([means, prior_z], axis=0), decode_seed)
    return images[:tf.shape(x)[0]], images[tf.shape(x)[0]:]


def build_vae(model_config: ml_collections.ConfigDict, image_shape=(28, 28, 1)) -> VAE:
  """A VAE from the `model` section of a config (see `skip_vae_tf.config`)."""
  if model_config.encoder == "resnet":
    encoder = encoders.ResNetEncoder(model_config.latent_dim, model_config.encoder_channels,
                                     name="encoder")
  else:
    encoder = encoders.MLPEncoder(model_config.latent_dim, model_config.encoder_hidden,
                                  name="encoder")
  if model_config.decoder == "pixelcnn":
    decoder = decoders.PixelCNNDecoder(image_shape, model_config.decoder_channels,
                                       model_config.decoder_kernel_sizes,
                                       model_config.latent_feature_maps, model_config.skip,
                                       name="decoder")
  else:
    decoder = decoders.MLPDecoder(image_shape, model_config.decoder_hidden, model_config.skip,
                                  name="decoder")
  model = VAE(encoder, decoder, model_config.latent_dim, name="skip_vae" if model_config.skip
              else "vae")
  model(tf.zeros([1, *image_shape]))  # Creates the variables.
  return model
