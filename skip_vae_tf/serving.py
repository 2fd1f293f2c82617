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
import re

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from skip_vae_tf import metrics
from skip_vae_tf import serving_adapters
from skip_vae_tf import tasks
from skip_vae_tf.models import vae as vae_lib

tfd = tfp.distributions
SIGNATURES = ("serving_default", "encode", "decode", "sample", "score")
# Seed streams of the stateless draws, so that no two draws share random numbers.
_ENCODE_STREAM, _PRIOR_STREAM, _DECODER_STREAM, _SCORE_STREAM = range(4)


@dataclasses.dataclass(frozen=True)
class Limits:
  """What one request may ask for, checked before any work (bin/export.py flags of the
  same names); peak memory at each default is in docs/serving.md
  (benchmarks/serving_memory.py).

  Attributes:
    max_batch: examples per `encode` or `score` request.
    max_decodes: latents per `decode` request, and `num_samples` per `sample` request.
    max_words: words per sentence of a text model's `encode` or `score` input.
    max_tokens: tokens per text `encode` or `score` request: sentences times their padded
      length (`<s>`, the words, `</s>`); the LSTMs' memory grows with it (docs/serving.md
      gives peak memory at the limits).
  """
  max_batch: int = 256
  max_decodes: int = 64
  max_words: int = 400
  max_tokens: int = 16384

  def __post_init__(self):
    for name in ("max_batch", "max_decodes", "max_words", "max_tokens"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


_REFUSAL = re.compile(r"assertion failed: \[(input .*?)\]$", re.MULTILINE)


def refusal(error: tf.errors.InvalidArgumentError) -> str:
  """What a refused request was told: the line of a signature's error naming the input
  ("input num_samples 65 exceeds the export limit of 64 per request (bin/export.py
  --max_decodes)"). TF Serving's clients see it first, after "assertion failed: ["; in
  Python, `tf.saved_model.load`'s functions put TF's "Graph execution error:" and the node
  before it. The error's whole first line when it names no input."""
  found = _REFUSAL.search(error.message)
  return found.group(1) if found else error.message.strip().splitlines()[0]


def _at_most(tensor: tf.Tensor, count: tf.Tensor, limit: int, what: str, flag: str
             ) -> tf.Tensor:
  """`tensor`, once `count` <= `limit` (else one error naming `what` and the flag)."""
  message = tf.strings.format(f"{what} {{}} exceeds the export limit of {limit} per "
                              f"request (bin/export.py --{flag})", count)
  return serving_adapters.passed_only_if(count <= limit, tensor, message)


def _check_latents(z: tf.Tensor, latent_dim: int, limits: Limits) -> tf.Tensor:
  z = serving_adapters.check_shape(z, "z", [None, latent_dim],
                                   f"[batch, {latent_dim}] float32")
  z = _at_most(z, tf.shape(z)[0], limits.max_decodes, "input z: the batch of",
               "max_decodes")
  return tf.debugging.assert_all_finite(serving_adapters.check_not_empty(z, "z"),
                                        "input z must be finite")


def _check_num_samples(num_samples: tf.Tensor, limits: Limits) -> tf.Tensor:
  num_samples = serving_adapters.check_shape(num_samples, "num_samples", [], "a scalar int32")
  num_samples = _at_most(num_samples, num_samples, limits.max_decodes, "input num_samples",
                         "max_decodes")
  return serving_adapters.passed_only_if(num_samples >= 1, num_samples,
                              tf.constant("input num_samples must be >= 1"))


@dataclasses.dataclass
class Signatures:
  """The signature functions of one trained VAE (see the module docstring).

  Attributes:
    model: the trained VAE.
    task: the run's `tasks.ImageTask` or `tasks.TextTask` (with its vocabulary); its
      serving adapter (`serving_adapters.for_task`) turns signature inputs into model inputs
      and decoder outputs into signature outputs.
    iw_samples: K, importance samples per example in `score`.
    score_seed: seeds the K standard-normal draws `score` shares across examples.
    limits: what one request may ask for.
  """
  model: vae_lib.VAE
  task: tasks.Task
  iw_samples: int = 10
  score_seed: int = 0
  limits: Limits = Limits()

  def __post_init__(self):
    if self.iw_samples < 1:
      raise ValueError(f"iw_samples must be >= 1, got {self.iw_samples}")
    self.latent_dim = self.model.latent_dim
    self.adapter = serving_adapters.for_task(self.task)

  def input_signatures(self) -> dict[str, list[tf.TensorSpec]]:
    """{signature name: input_signature} for `keras.export.ExportArchive.add_endpoint`."""
    # Shapes are left open and checked in the graph, naming the input
    # (serving_adapters.check_shape).
    encode = [self.adapter.input_spec(), tf.TensorSpec(None, tf.int64, name="seed")]
    return {
        "serving_default": encode,
        "encode": encode,
        "decode": [tf.TensorSpec(None, tf.float32, name="z")],
        "sample": [tf.TensorSpec(None, tf.int32, name="num_samples"),
                   tf.TensorSpec(None, tf.int64, name="seed")],
        "score": [self.adapter.input_spec()],
    }

  def functions(self) -> dict[str, callable]:
    return {"serving_default": self.encode, "encode": self.encode, "decode": self.decode,
            "sample": self.sample, "score": self.score}

  # ---- signatures ------------------------------------------------------------------

  def _model_inputs(self, x: tf.Tensor) -> tf.Tensor:
    """The task's checked model inputs, within the batch (and sentence length) limits."""
    return self.adapter.model_inputs(x, self._within_limits)

  def _within_limits(self, tensor: tf.Tensor, batch: tf.Tensor,
                     longest: tf.Tensor | None = None) -> tf.Tensor:
    """`tensor` once a request of `batch` examples (text: the `longest` sentence in words)
    is within `limits`."""
    name = self.adapter.input_spec().name
    tensor = _at_most(tensor, batch, self.limits.max_batch, f"input {name}: the batch of",
                      "max_batch")
    if longest is not None:  # Tokens per sentence: <s>, the words, </s>.
      longest = tf.cast(longest, tf.int64)
      tensor = _at_most(tensor, longest, self.limits.max_words,
                        f"input {name}: a sentence of", "max_words")
      tensor = _at_most(tensor, tf.cast(batch, tf.int64) * (longest + 2),
                        self.limits.max_tokens,
                        f"input {name}: the batch of sentences x padded length (tokens)",
                        "max_tokens")
    return tensor

  def encode(self, x: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
    """q(z|x): mean, stddev and z = mean + stddev * eps, eps ~ N(0, I) drawn from seed[b]."""
    posterior = self.model.encoder(self._model_inputs(x), training=False).distribution
    seed = serving_adapters.check_shape(seed, "seed", [None],
                                        "[batch] int64, one per example")
    seed = serving_adapters.passed_only_if(
        tf.equal(tf.shape(seed)[0], tf.shape(posterior.loc)[0]), seed,
        tf.constant("input seed must hold one int64 per example of the first input"))
    noise = tf.map_fn(
        lambda s: tf.random.stateless_normal(
            [self.latent_dim], tf.stack([s, tf.constant(_ENCODE_STREAM, tf.int64)])),
        seed, fn_output_signature=tf.TensorSpec([self.latent_dim], tf.float32))
    return {"mean": posterior.loc, "stddev": posterior.scale,
            "z": posterior.loc + posterior.scale * noise}

  def decode(self, z: tf.Tensor) -> dict[str, tf.Tensor]:
    """Greedy decoding of z: the autoregressive loop runs inside the graph."""
    return self.adapter.decode(self.model.decoder,
                                    _check_latents(z, self.latent_dim, self.limits))

  def sample(self, num_samples: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
    """num_samples draws z ~ p(z), x ~ p(x|z), all from `seed`."""
    num_samples = _check_num_samples(num_samples, self.limits)
    seed = serving_adapters.check_shape(seed, "seed", [], "a scalar int64")
    z = tf.random.stateless_normal([num_samples, self.latent_dim],
                                   tf.stack([seed, tf.constant(_PRIOR_STREAM, tf.int64)]))
    samples = self.model.decoder.sample(
        z, tf.stack([seed, tf.constant(_DECODER_STREAM, tf.int64)]))
    return self.adapter.samples(samples)

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
    inputs = self._model_inputs(x)
    posterior = self.model.encoder(inputs, training=False)
    prior = self.model.prior()
    z = posterior.distribution.loc + posterior.distribution.scale * self.score_noise()
    # One decoder call per draw, one after another: a request holds the activations of B
    # examples, not K * B.
    log_px_z, log_weights = tf.map_fn(
        lambda z_k: [one_draw[0] for one_draw in metrics.importance_log_weights(
            inputs, z_k[None], posterior, prior, self.model.decoder.log_likelihood)],
        z, fn_output_signature=[tf.float32, tf.float64], parallel_iterations=1)
    reconstruction_nll = -tf.reduce_mean(log_px_z, axis=0)
    kl = tfd.kl_divergence(posterior, prior)
    iw_nll = math.log(self.iw_samples) - tf.reduce_logsumexp(log_weights, axis=0)
    scores = {"negative_elbo": reconstruction_nll + kl, "reconstruction_nll": reconstruction_nll,
              "kl": kl, "iw_nll": tf.cast(iw_nll, tf.float32)}
    scores.update(self.adapter.score_counts(inputs))
    return scores


def export_archive(signatures: Signatures) -> tuple[keras.export.ExportArchive,
                                                   dict[str, callable]]:
  """A `keras.export.ExportArchive` holding the model, the task's resources (the text
  vocabulary table) and every signature of `SIGNATURES` (`write_out(path)` writes it), and
  {name: the traced function the archive saves}: the reference a reloaded SavedModel must
  reproduce (a separate trace may round differently, and greedy decoding of an untrained
  model turns a rounding difference into another word)."""
  archive = keras.export.ExportArchive()
  archive.track(signatures.model)
  for resource in signatures.adapter.resources():
    archive.track(resource)
  specs, functions = signatures.input_signatures(), signatures.functions()
  endpoints = {name: archive.add_endpoint(name, functions[name], input_signature=specs[name])
               for name in SIGNATURES}
  return archive, endpoints


def example_inputs(signatures: Signatures, batch: int = 2) -> dict[str, dict[str, np.ndarray]]:
  """Small valid inputs for every signature: for smoke checks and the docs' examples."""
  x = signatures.adapter.example_x(batch)
  z = np.random.default_rng(1).standard_normal((batch, signatures.latent_dim)).astype(np.float32)
  name = signatures.adapter.input_spec().name
  encode = {name: x, "seed": np.arange(batch, dtype=np.int64)}
  return {"serving_default": encode, "encode": encode, "decode": {"z": z},
          "sample": {"num_samples": np.int32(batch), "seed": np.int64(0)},
          "score": {name: x}}
