"""The functions behind the exported SavedModel's signatures, and the archive holding them.

Signatures (batch dimension free; B examples, D latent dims, N samples):

| signature | inputs | outputs |
|---|---|---|
| serving_default, encode | x, seed int64 (B,) | mean, stddev, z float32 (B, D) |
| decode | z float32 (B, D) | images: probabilities, images (B, H, W, 1); text: text (B,), tokens (B, T) |
| sample | num_samples int32 (), seed int64 () | images (N, H, W, 1) or text (N,), tokens (N, T) |
| score | x | negative_elbo, reconstruction_nll, kl, iw_nll (B,); text adds num_words (B,) |

x is float32 (B, H, W, 1) pixel values in [0, 1] for image models and a (B,) string of
whitespace-tokenized text for text models (tokenized inside the graph with the training
vocabulary; unknown words become `<unk>`, an empty string is the empty sentence).

Randomness is explicit and stateless, so every signature is a deterministic function of its
inputs: encode draws example b's z with `seed[b]` alone (so z does not depend on the rest
of the batch), sample draws from `seed`, and score uses the same `iw_samples` standard
normal draws (fixed at export by `score_seed`) for every example. Scores are in nats per
example (per sentence for text).
"""

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from skip_vae_tf import metrics
from skip_vae_tf.data import text as text_data
from skip_vae_tf.models import text as text_models
from skip_vae_tf.models import vae as vae_lib

tfd = tfp.distributions
MAX_SAMPLES_PER_REQUEST = 1024
SIGNATURES = ("serving_default", "encode", "decode", "sample", "score")
# Seed streams of the stateless draws, so that no two draws share random numbers.
_ENCODE_STREAM, _PRIOR_STREAM, _DECODER_STREAM, _SCORE_STREAM = range(4)


def _check_not_empty(tensor: tf.Tensor, name: str) -> tf.Tensor:
  with tf.control_dependencies([tf.debugging.assert_positive(
      tf.shape(tensor)[0], message=f"input {name} must hold at least one example")]):
    return tf.identity(tensor)


def _check_pixels(x: tf.Tensor) -> tf.Tensor:
  x = _check_not_empty(x, "x")
  with tf.control_dependencies([
      tf.debugging.assert_greater_equal(x, 0.0, message="input x must hold pixel values in "
                                        "[0, 1] (a value is below 0 or NaN)"),
      tf.debugging.assert_less_equal(x, 1.0, message="input x must hold pixel values in "
                                     "[0, 1] (a value is above 1 or NaN)")]):
    return tf.identity(x)


def _check_latents(z: tf.Tensor) -> tf.Tensor:
  return tf.debugging.assert_all_finite(_check_not_empty(z, "z"), "input z must be finite")


def _check_num_samples(num_samples: tf.Tensor) -> tf.Tensor:
  with tf.control_dependencies([
      tf.debugging.assert_positive(num_samples, message="input num_samples must be >= 1"),
      tf.debugging.assert_less_equal(
          num_samples, MAX_SAMPLES_PER_REQUEST,
          message=f"input num_samples must be <= {MAX_SAMPLES_PER_REQUEST} per request")]):
    return tf.identity(num_samples)


@dataclasses.dataclass
class Signatures:
  """The signature functions of one trained VAE (see the module docstring).

  Attributes:
    model: the trained VAE.
    iw_samples: K, importance samples per example in `score`.
    score_seed: seeds the K standard-normal draws `score` shares across examples.
    vocabulary: the training vocabulary (text models only).
  """
  model: vae_lib.VAE
  iw_samples: int = 10
  score_seed: int = 0
  vocabulary: text_data.Vocabulary | None = None

  def __post_init__(self):
    if self.iw_samples < 1:
      raise ValueError(f"iw_samples must be >= 1, got {self.iw_samples}")
    self.is_text = self.vocabulary is not None
    if self.is_text:
      self.table = self.vocabulary.lookup_table()
      self.tokens = tf.constant(self.vocabulary.tokens)
    self.latent_dim = self.model.latent_dim

  # ---- input specs -----------------------------------------------------------------

  def input_spec(self) -> tf.TensorSpec:
    if self.is_text:
      return tf.TensorSpec([None], tf.string, name="text")
    return tf.TensorSpec([None, *self.model.decoder.image_shape], tf.float32, name="x")

  def input_signatures(self) -> dict[str, list[tf.TensorSpec]]:
    """{signature name: input_signature} for `keras.export.ExportArchive.add_endpoint`."""
    encode = [self.input_spec(), tf.TensorSpec([None], tf.int64, name="seed")]
    return {
        "serving_default": encode,
        "encode": encode,
        "decode": [tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")],
        "sample": [tf.TensorSpec([], tf.int32, name="num_samples"),
                   tf.TensorSpec([], tf.int64, name="seed")],
        "score": [self.input_spec()],
    }

  def functions(self) -> dict[str, callable]:
    return {"serving_default": self.encode, "encode": self.encode, "decode": self.decode,
            "sample": self.sample, "score": self.score}

  # ---- signatures ------------------------------------------------------------------

  def model_inputs(self, x: tf.Tensor) -> tf.Tensor:
    """Signature input -> model input: checked pixels, or (B, L) int32 padded token ids."""
    if self.is_text:
      x = _check_not_empty(x, "text")
      return text_data.token_ids(x, self.table).to_tensor(default_value=text_data.PAD_ID)
    return _check_pixels(x)

  def encode(self, x: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
    """q(z|x): mean, stddev and z = mean + stddev * eps, eps ~ N(0, I) drawn from seed[b]."""
    posterior = self.model.encoder(self.model_inputs(x), training=False).distribution
    with tf.control_dependencies([tf.debugging.assert_equal(
        tf.shape(seed)[0], tf.shape(posterior.loc)[0],
        message="input seed must hold one int64 per example of the first input")]):
      noise = tf.map_fn(
          lambda s: tf.random.stateless_normal(
              [self.latent_dim], tf.stack([s, tf.constant(_ENCODE_STREAM, tf.int64)])),
          seed, fn_output_signature=tf.TensorSpec([self.latent_dim], tf.float32))
    return {"mean": posterior.loc, "stddev": posterior.scale,
            "z": posterior.loc + posterior.scale * noise}

  def decode(self, z: tf.Tensor) -> dict[str, tf.Tensor]:
    """Greedy decoding of z: the autoregressive loop runs inside the graph."""
    z = _check_latents(z)
    if self.is_text:
      tokens = self.model.decoder.greedy(z)
      return {"text": text_data.ids_to_text(tokens, self.tokens), "tokens": tokens}
    probabilities, images = self.model.decoder.greedy(z)
    return {"probabilities": probabilities, "images": images}

  def sample(self, num_samples: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
    """num_samples draws z ~ p(z), x ~ p(x|z), all from `seed`."""
    num_samples = _check_num_samples(num_samples)
    z = tf.random.stateless_normal([num_samples, self.latent_dim],
                                   tf.stack([seed, tf.constant(_PRIOR_STREAM, tf.int64)]))
    samples = self.model.decoder.sample(
        z, tf.stack([seed, tf.constant(_DECODER_STREAM, tf.int64)]))
    if self.is_text:
      return {"text": text_data.ids_to_text(samples, self.tokens), "tokens": samples}
    return {"images": samples}

  def score_noise(self) -> tf.Tensor:
    """(K, 1, D) the standard-normal draws eps_k that `score` uses for every example."""
    return tf.random.stateless_normal([self.iw_samples, 1, self.latent_dim],
                                      [self.score_seed, _SCORE_STREAM])

  def score(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
    """Per-example -ELBO, its terms, and the importance-weighted NLL with K = iw_samples.

    With z_k = mean + stddev * eps_k for K shared draws eps_k:
    reconstruction_nll = -(1/K) sum_k log p(x|z_k), kl = KL(q(z|x)||p(z)) in closed form,
    negative_elbo = reconstruction_nll + kl, and
    iw_nll = -log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x); nats per example.
    """
    inputs = self.model_inputs(x)
    posterior = self.model.encoder(inputs, training=False)
    prior = self.model.prior()
    z = posterior.distribution.loc + posterior.distribution.scale * self.score_noise()
    log_px_z, log_weights = metrics.importance_log_weights(
        inputs, z, posterior, prior, self.model.decoder.log_likelihood)
    reconstruction_nll = -tf.reduce_mean(log_px_z, axis=0)
    kl = tfd.kl_divergence(posterior, prior)
    iw_nll = math.log(self.iw_samples) - tf.reduce_logsumexp(log_weights, axis=0)
    scores = {"negative_elbo": reconstruction_nll + kl, "reconstruction_nll": reconstruction_nll,
              "kl": kl, "iw_nll": tf.cast(iw_nll, tf.float32)}
    if self.is_text:
      scores["num_words"] = text_models.num_predicted_tokens(inputs)
    return scores


def export_archive(signatures: Signatures) -> keras.export.ExportArchive:
  """A `keras.export.ExportArchive` holding the model, its vocabulary table (text) and
  every signature of `SIGNATURES`; `write_out(path)` writes the SavedModel."""
  archive = keras.export.ExportArchive()
  archive.track(signatures.model)
  if signatures.is_text:
    archive.track(signatures.table)
  specs, functions = signatures.input_signatures(), signatures.functions()
  for name in SIGNATURES:
    archive.add_endpoint(name, functions[name], input_signature=specs[name])
  return archive


def example_inputs(signatures: Signatures, batch: int = 2) -> dict[str, dict[str, np.ndarray]]:
  """Small valid inputs for every signature: for smoke checks and the docs' examples."""
  if signatures.is_text:
    x = np.array(["the", "what is the best way to learn ?"][:batch] +
                 [""] * max(0, batch - 2), dtype=object)
  else:
    shape = signatures.model.decoder.image_shape
    x = (np.random.default_rng(0).uniform(size=(batch, *shape)) < 0.3).astype(np.float32)
  z = np.random.default_rng(1).standard_normal((batch, signatures.latent_dim)).astype(np.float32)
  encode = {signatures.input_spec().name: x, "seed": np.arange(batch, dtype=np.int64)}
  return {"serving_default": encode, "encode": encode, "decode": {"z": z},
          "sample": {"num_samples": np.int32(batch), "seed": np.int64(0)},
          "score": {signatures.input_spec().name: x}}
