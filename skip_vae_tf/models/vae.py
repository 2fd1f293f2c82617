"""The VAE: one class for the plain VAE and the generative skip model, images and text.

The decoder's `skip` flag is the only difference between the two.
"""

import keras
import ml_collections
import tensorflow as tf
import tensorflow_probability as tfp

from skip_vae_tf import objectives
from skip_vae_tf.data import text as text_data
from skip_vae_tf.models import decoders
from skip_vae_tf.models import encoders
from skip_vae_tf.models import seeds
from skip_vae_tf.models import text

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
    if isinstance(self.decoder, text.LSTMDecoder):
      terms["num_tokens"] = text.num_predicted_tokens(x)
    return terms

  def reconstruct_and_sample(self, x: tf.Tensor, num_prior_samples: int,
                             seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Decoded from the posterior means of x, and from `num_prior_samples` prior draws.

    Images: ancestral samples (B, H, W, 1) and (K, H, W, 1). Text: greedy decodes and
    ancestral samples, (B, max_decode_length) and (K, max_decode_length) token ids.
    """
    prior_seed, sample_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    means = self.encoder(x, training=False).distribution.loc
    prior_z = tf.random.stateless_normal([num_prior_samples, self.latent_dim], prior_seed)
    if isinstance(self.decoder, decoders.ImageDecoder):
      # Image reconstructions are samples too: one sampling loop for both (the PixelCNN's
      # loop is slow to trace).
      images = self.decoder.sample(tf.concat([means, prior_z], axis=0), sample_seed)
      return images[:tf.shape(means)[0]], images[tf.shape(means)[0]:]
    return self.decoder.greedy(means), self.decoder.sample(prior_z, sample_seed)


def _image_networks(model_config: ml_collections.ConfigDict, image_shape):
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
  return encoder, decoder


def _text_networks(model_config: ml_collections.ConfigDict):
  common = dict(vocab_size=model_config.vocab_size, embedding_dim=model_config.embedding_dim,
                latent_dim=model_config.latent_dim, init_scale=model_config.init_scale)
  encoder = text.LSTMEncoder(hidden=model_config.encoder_hidden, name="encoder", **common)
  decoder = text.LSTMDecoder(hidden=model_config.decoder_hidden, skip=model_config.skip,
                             dropout=model_config.decoder_dropout,
                             max_decode_length=model_config.max_decode_length,
                             name="decoder", **common)
  return encoder, decoder


def build_vae(model_config: ml_collections.ConfigDict, image_shape=(28, 28, 1)) -> VAE:
  """A VAE from the `model` section of a config (see `skip_vae_tf.config`)."""
  is_text = model_config.encoder == "lstm"
  encoder, decoder = (_text_networks(model_config) if is_text
                      else _image_networks(model_config, image_shape))
  model = VAE(encoder, decoder, model_config.latent_dim, name="skip_vae" if model_config.skip
              else "vae")
  # Creates the variables.
  model(tf.constant([[text_data.BOS_ID, text_data.EOS_ID]]) if is_text
        else tf.zeros([1, *image_shape]))
  return model
