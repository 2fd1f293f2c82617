"""The signature functions in process: the score estimators against a numpy re-derivation,
explicit randomness, in-graph tokenization, and input validation (with hypothesis)."""

import math
import re

from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp
import numpy as np
import pytest
from scipy import special, stats
import tensorflow as tf

from skip_vae_tf import config as config_lib
from skip_vae_tf import serving
from skip_vae_tf import serving_adapters
from skip_vae_tf import tasks
from skip_vae_tf import vocabulary as vocab

WORDS = ("the", "what", "is", "best", "way", "?")
VOCABULARY = vocab.Vocabulary(vocab.SPECIALS + WORDS)


def _image_signatures(skip=True, decoder="pixelcnn_official"):
  config = config_lib.apply_smoke(config_lib.image_config())
  config.model.skip, config.model.decoder = skip, decoder
  task = tasks.ImageTask()
  return serving.Signatures(task.build_model(config.model), task, iw_samples=7, score_seed=3)


def _text_signatures(skip=True):
  config = config_lib.apply_smoke(config_lib.text_config())
  config.model.skip, config.model.vocab_size = skip, VOCABULARY.size
  task = tasks.TextTask(VOCABULARY)
  return serving.Signatures(task.build_model(config.model), task, iw_samples=7, score_seed=3)


@pytest.fixture(scope="module")
def image_signatures():
  return _image_signatures()


@pytest.fixture(scope="module")
def mlp_signatures():
  """Pixel-at-a-time PixelCNN sampling is slow in eager mode; sampling tests use an MLP."""
  return _image_signatures(decoder="mlp")


@pytest.fixture(scope="module")
def text_signatures():
  return _text_signatures()


def _binary_images(count, seed=0):
  return (np.random.default_rng(seed).uniform(size=(count, 28, 28, 1)) < 0.3).astype(np.float32)


def _numpy_scores(signatures, inputs):
  """reconstruction_nll, kl, iw_nll and the Monte Carlo -ELBO -mean_k log w_k re-derived:
  one decoder call per sample, scipy densities."""
  model = signatures.model
  posterior = model.encoder(inputs).distribution
  mean, std = posterior.loc.numpy().astype(np.float64), posterior.scale.numpy().astype(np.float64)
  noise = signatures.score_noise().numpy()[:, 0].astype(np.float64)  # (K, D)
  log_px_z, log_weights = [], []
  for eps in noise:
    z = mean + std * eps
    log_lik = model.decoder.log_likelihood(inputs, tf.constant(z, tf.float32)).numpy()
    log_px_z.append(log_lik)
    log_weights.append(log_lik + stats.norm.logpdf(z).sum(1)
                       - stats.norm.logpdf(z, mean, std).sum(1))
  kl = 0.5 * np.sum(mean ** 2 + std ** 2 - 1.0 - 2.0 * np.log(std), axis=1)
  iw_nll = math.log(len(noise)) - special.logsumexp(np.array(log_weights), axis=0)
  return -np.mean(log_px_z, axis=0), kl, iw_nll, -np.mean(log_weights, axis=0)


@pytest.mark.parametrize("modality", ["image", "text"])
def test_score_matches_a_numpy_rederivation(modality, image_signatures, text_signatures):
  if modality == "image":
    signatures, x = image_signatures, _binary_images(3)
    inputs = tf.constant(x)
  else:
    signatures = text_signatures
    x = np.array(["what is the best way ?", "the", "", "unknown words here"], dtype=object)
    inputs = signatures._model_inputs(tf.constant(x))  # pylint: disable=protected-access
  scores = {k: v.numpy() for k, v in signatures.score(tf.constant(x)).items()}
  reconstruction_nll, kl, iw_nll, sampled_negative_elbo = _numpy_scores(signatures, inputs)
  np.testing.assert_allclose(scores["reconstruction_nll"], reconstruction_nll, rtol=1e-4)
  np.testing.assert_allclose(scores["kl"], kl, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(scores["iw_nll"], iw_nll, rtol=1e-4)
  np.testing.assert_allclose(scores["negative_elbo"], reconstruction_nll + kl, rtol=1e-4)
  # Jensen: the IW bound is never looser than the ELBO estimated on the same K samples.
  assert np.all(scores["iw_nll"] <= sampled_negative_elbo + 1e-4)
  if modality == "text":  # Every word and </s>, not <s>.
    np.testing.assert_array_equal(scores["num_words"], [6 + 1, 1 + 1, 0 + 1, 3 + 1])


def test_scores_and_codes_do_not_depend_on_the_rest_of_the_batch(image_signatures):
  x, seeds = _binary_images(3, seed=1), np.array([5, 6, 7], np.int64)
  together = image_signatures.encode(tf.constant(x), tf.constant(seeds))
  alone = image_signatures.encode(tf.constant(x[1:2]), tf.constant(seeds[1:2]))
  for key in ("mean", "stddev", "z"):
    np.testing.assert_allclose(together[key].numpy()[1:2], alone[key].numpy(), atol=1e-6)
  scores = image_signatures.score(tf.constant(x))["iw_nll"].numpy()
  np.testing.assert_allclose(scores[2:], image_signatures.score(tf.constant(x[2:]))["iw_nll"],
                             rtol=1e-5)


def test_encode_draws_z_from_the_posterior_with_the_given_seeds(image_signatures):
  x = np.repeat(_binary_images(1, seed=2), 4000, axis=0)
  signatures = serving.Signatures(image_signatures.model, image_signatures.task,
                                  limits=serving.Limits(max_batch=4000))
  out = signatures.encode(tf.constant(x), tf.range(4000, dtype=tf.int64))
  noise = (out["z"].numpy() - out["mean"].numpy()) / out["stddev"].numpy()
  # Standard normal in every dimension, independent across seeds.
  assert np.all(np.abs(noise.mean(0)) < 0.1) and np.all(np.abs(noise.std(0) - 1) < 0.1)
  again = signatures.encode(tf.constant(x[:2]), tf.constant([0, 1], tf.int64))
  np.testing.assert_array_equal(again["z"].numpy(), out["z"].numpy()[:2])


@pytest.mark.parametrize("modality", ["image", "text"])
def test_sample_is_a_function_of_its_seed(modality, mlp_signatures, text_signatures):
  signatures = mlp_signatures if modality == "image" else text_signatures
  key = "images" if modality == "image" else "tokens"
  first = signatures.sample(tf.constant(3), tf.constant(11, tf.int64))[key].numpy()
  np.testing.assert_array_equal(
      first, signatures.sample(tf.constant(3), tf.constant(11, tf.int64))[key].numpy())
  assert not np.array_equal(
      first, signatures.sample(tf.constant(3), tf.constant(12, tf.int64))[key].numpy())


def test_text_decode_returns_the_words_of_the_greedy_tokens(text_signatures):
  z = tf.random.stateless_normal([5, text_signatures.latent_dim], [1, 1]) * 3.0
  out = text_signatures.decode(z)
  np.testing.assert_array_equal(out["tokens"].numpy(),
                                text_signatures.model.decoder.greedy(z).numpy())
  assert [t.decode() for t in out["text"].numpy()] == [
      VOCABULARY.to_text(row) for row in out["tokens"].numpy()]


@pytest.mark.parametrize("call, message", [
    (lambda s: s.encode(tf.fill([1, 28, 28, 1], 1.5), tf.constant([0], tf.int64)),
     "input x must hold pixel values in [0, 1]"),
    (lambda s: s.score(tf.fill([1, 28, 28, 1], -0.1)), "input x must hold pixel values"),
    (lambda s: s.score(tf.fill([1, 28, 28, 1], math.nan)), "input x must hold pixel values"),
    (lambda s: s.encode(tf.zeros([2, 28, 28, 1]), tf.constant([0], tf.int64)),
     "input seed must hold one int64 per example"),
    (lambda s: s.decode(tf.fill([1, 4], math.inf)), "input z must be finite"),
    (lambda s: s.sample(tf.constant(0), tf.constant(0, tf.int64)), "num_samples must be >= 1"),
    (lambda s: s.score(tf.zeros([0, 28, 28, 1])), "input x must hold at least one example"),
    (lambda s: s.decode(tf.zeros([0, 4])), "input z must hold at least one example"),
    (lambda s: s.sample(tf.constant(5000), tf.constant(0, tf.int64)),
     "input num_samples 5000 exceeds the export limit of 64 per request (bin/export.py "
     "--max_decodes)"),
    (lambda s: s.encode(tf.zeros([2, 32, 32, 1]), tf.constant([0, 1], tf.int64)),
     "input x must be [batch, 28, 28, 1] float32 in [0, 1], got shape [2 32 32 1]"),
    (lambda s: s.score(tf.zeros([2, 28, 28])), "input x must be [batch, 28, 28, 1]"),
    (lambda s: s.score(tf.zeros([2, 28, 28, 3])), "got shape [2 28 28 3]"),
    (lambda s: s.encode(tf.zeros([2, 28, 28, 1]), tf.constant(0, tf.int64)),
     "input seed must be [batch] int64, one per example"),
    (lambda s: s.decode(tf.zeros([1, 7])), "input z must be [batch, 4] float32, got shape [1 7]"),
    (lambda s: s.sample(tf.constant([3]), tf.constant(0, tf.int64)),
     "input num_samples must be a scalar int32"),
    (lambda s: s.sample(tf.constant(3), tf.constant([0, 1], tf.int64)),
     "input seed must be a scalar int64"),
])
def test_bad_inputs_fail_with_a_message_naming_the_input(call, message, image_signatures):
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
    call(image_signatures)


def test_requests_beyond_the_export_limits_are_refused_before_any_work(image_signatures,
                                                                        text_signatures):
  limits = serving.Limits(max_batch=3, max_decodes=2, max_words=4)
  image = serving.Signatures(image_signatures.model, image_signatures.task, limits=limits)
  text = serving.Signatures(text_signatures.model, text_signatures.task, limits=limits)
  seeds = tf.range(4, dtype=tf.int64)
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(
      "input x: the batch of 4 exceeds the export limit of 3 per request (bin/export.py "
      "--max_batch)")):
    image.encode(tf.zeros([4, 28, 28, 1]), seeds)
  with pytest.raises(tf.errors.InvalidArgumentError, match="input z: the batch of 3 exceeds"):
    image.decode(tf.zeros([3, image.latent_dim]))
  with pytest.raises(tf.errors.InvalidArgumentError, match="input num_samples 3 exceeds"):
    text.sample(tf.constant(3), tf.constant(0, tf.int64))
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(
      "input text: a sentence of 5 exceeds the export limit of 4 per request")):
    text.score(tf.constant(["the best way", "what is the best way"]))
  assert text.score(tf.constant(["what is the best"]))["iw_nll"].shape == (1,)  # At the limit.
  # Tokens: 3 sentences padded to <s> + 3 words + </s> = 15 tokens; the limit is 14.
  tokens = serving.Signatures(text_signatures.model, text_signatures.task,
                              limits=serving.Limits(max_tokens=14))
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(
      "input text: the batch of sentences x padded length (tokens) 15 exceeds the export "
      "limit of 14 per request (bin/export.py --max_tokens)")):
    tokens.encode(tf.constant(["the best way", "what", "is"]), tf.range(3, dtype=tf.int64))
  assert tokens.score(tf.constant(["the best", "way"]))["iw_nll"].shape == (2,)  # 8 tokens.
  assert image.encode(tf.zeros([3, 28, 28, 1]), seeds[:3])["z"].shape == (3, image.latent_dim)


# ---- property-based -------------------------------------------------------------------

_ASCII_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")
_pieces = st.sampled_from(list(WORDS) + ["zebra", " ", "\t", "\n", "\x0b", "é", "\u3000",
                                          "\x1c", "<s>", "</s>", "<pad>"])
_texts = st.lists(st.one_of(st.lists(_pieces, max_size=12).map("".join), st.text(max_size=20)),
                  min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(_texts)
def test_in_graph_tokenization_matches_a_python_reference(lines):
  table = VOCABULARY.lookup_table()
  ids = vocab.token_ids(tf.constant(lines), table).to_list()
  counts = vocab.word_counts(tf.constant(lines)).numpy()
  index = {token: i for i, token in enumerate(VOCABULARY.tokens)}
  for line, row, count in zip(lines, ids, counts):
    words = [w for w in _ASCII_WHITESPACE.split(line) if w]
    assert count == len(words)  # Counted without splitting, as the serving limits count.
    assert row == ([vocab.BOS_ID] + [index.get(w, vocab.UNK_ID) for w in words]
                   + [vocab.EOS_ID])


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int32, st.tuples(st.integers(1, 4), st.integers(1, 12)),
                  elements=st.integers(0, VOCABULARY.size - 1)))
def test_ids_to_text_matches_vocabulary_to_text(ids):
  texts = vocab.ids_to_text(tf.constant(ids), tf.constant(VOCABULARY.tokens)).numpy()
  assert [t.decode() for t in texts] == [VOCABULARY.to_text(row) for row in ids]


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float32, (2, 28, 28, 1),
                  elements=st.one_of(st.floats(0, 1, width=32),
                                     st.sampled_from([-1e-6, 1.0000001, 2.0, -3.0, math.nan,
                                                      math.inf]))))
def test_pixel_validation_accepts_exactly_the_unit_interval(images):
  valid = bool(np.all((images >= 0) & (images <= 1)))
  try:
    out = serving_adapters.ImageServing(tasks.ImageTask()).model_inputs(
        tf.constant(images), lambda x, *_: x)
  except tf.errors.InvalidArgumentError as error:
    assert not valid and "input x must hold pixel values in [0, 1]" in str(error)
  else:
    assert valid
    np.testing.assert_array_equal(out.numpy(), images)
