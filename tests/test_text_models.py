"""LSTM VAE / Skip-VAE: the LSTM against numpy, masking, the skip switch, decoding."""

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from skip_vae_tf import config as config_lib
from skip_vae_tf import precision as precision_lib
from skip_vae_tf import tasks
from skip_vae_tf import vocabulary as vocab
from skip_vae_tf.models import lstm
from skip_vae_tf.models import text

VOCAB = 23


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _numpy_lstm(inputs, kernel, recurrent_kernel, bias, h, c):
  """A textbook LSTM over (B, T, F) inputs, gates (i, f, g, o)."""
  outputs = []
  for t in range(inputs.shape[1]):
    gates = inputs[:, t] @ kernel + h @ recurrent_kernel + bias
    i, f, g, o = np.split(gates, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    outputs.append(h)
  return np.stack(outputs, axis=1)


@pytest.mark.parametrize("twice_differentiable", [False, True])
def test_lstm_with_static_input_is_an_lstm_over_the_concatenation(twice_differentiable):
  rng = np.random.default_rng(0)
  layer = lstm.LSTM(6, static_dim=3, initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5),
                    twice_differentiable=twice_differentiable)
  x = rng.normal(size=(2, 5, 4)).astype(np.float32)
  s = rng.normal(size=(2, 3)).astype(np.float32)
  h0, c0 = (rng.normal(size=(2, 6)).astype(np.float32) for _ in range(2))
  out = layer(tf.constant(x), static=tf.constant(s), initial_state=(h0, c0)).numpy()
  concatenated = np.concatenate([x, np.repeat(s[:, None], 5, axis=1)], axis=-1)
  kernel = np.concatenate([layer.kernel.numpy(), layer.static_kernel.numpy()], axis=0)
  expected = _numpy_lstm(concatenated.astype(np.float64), kernel, layer.recurrent_kernel.numpy(),
                         layer.bias.numpy(), h0, c0)
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
  # The step API gives the same states.
  step = layer.step_function(tf.constant(s))
  state = (tf.constant(h0), tf.constant(c0))
  for t in range(5):
    state = step(tf.constant(x[:, t]), state)
  np.testing.assert_allclose(state[0].numpy(), expected[:, -1], rtol=1e-5, atol=1e-6)


def _lstm_gradients(layer, inputs, jit_compile):
  """Gradients of sum(outputs * weights) for the inputs, static input, initial state and
  every weight of `layer`, as numpy arrays."""
  x, s, h0, c0, weights = (tf.constant(a) for a in inputs)

  @tf.function(jit_compile=jit_compile)
  def run(x, s, h0, c0):
    with tf.GradientTape() as tape:
      tape.watch([x, s, h0, c0])
      loss = tf.reduce_sum(layer(x, static=s, initial_state=(h0, c0)) * weights)
    return tape.gradient(loss, [x, s, h0, c0] + layer.trainable_variables)
  return [g.numpy() for g in run(x, s, h0, c0)]


@pytest.mark.parametrize("precision,jit_compile",
                         [("float32", False), ("float32", True), ("mixed_bfloat16", False)])
def test_written_out_lstm_gradient_equals_autodiff_of_the_loop(precision, jit_compile):
  """The backward pass through time written out by hand and TF's autodiff of the same loop
  (`twice_differentiable`) give the same gradients, for the inputs, the static input, the
  initial state and every weight; in bfloat16 up to its rounding."""
  rng = np.random.default_rng(3)
  inputs = [rng.normal(size=shape).astype(np.float32)
            for shape in [(3, 7, 4), (3, 2), (3, 5), (3, 5), (3, 7, 5)]]
  with precision_lib.policy_scope(precision):
    written, autodiff = (
        lstm.LSTM(5, static_dim=2, initializer=tf.keras.initializers.RandomUniform(-0.5, 0.5),
                  twice_differentiable=twice) for twice in (False, True))
  for layer in (written, autodiff):
    layer(tf.constant(inputs[0]), static=tf.constant(inputs[1]))
  autodiff.set_weights(written.get_weights())
  tolerance = dict(rtol=1e-5, atol=1e-6) if precision == "float32" else dict(rtol=0, atol=2e-2)
  for got, want in zip(_lstm_gradients(written, inputs, jit_compile),
                       _lstm_gradients(autodiff, inputs, jit_compile)):
    assert np.abs(want).max() > 0.1
    np.testing.assert_allclose(got, want, **tolerance)


def _model_config(skip: bool, layers: int = 2) -> ml_collections.ConfigDict:
  config = config_lib.apply_smoke(config_lib.text_config()).model
  config.vocab_size, config.skip, config.decoder_dropout = VOCAB, skip, 0.0
  config.decoder_hidden = (7,) * layers
  config.encoder_hidden = (9,)
  return config


def _padded_batch(rng, lengths):
  """Sentences `<s> w.. </s>` of the given total lengths, right-padded."""
  batch = np.zeros((len(lengths), max(lengths)), np.int32)
  for row, length in enumerate(lengths):
    batch[row, 0], batch[row, length - 1] = vocab.BOS_ID, vocab.EOS_ID
    batch[row, 1:length - 1] = rng.integers(4, VOCAB, size=length - 2)
  return batch


def _log_softmax(logits):
  logits = logits.astype(np.float64)
  shifted = logits - logits.max(-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@pytest.mark.parametrize("skip", [False, True])
def test_padded_batch_scores_like_its_sentences_one_by_one(skip):
  model = tasks.TextTask().build_model(_model_config(skip))
  rng = np.random.default_rng(1)
  lengths = [3, 9, 6, 2]
  batch = _padded_batch(rng, lengths)
  z = tf.constant(rng.normal(size=(4, model.latent_dim)), tf.float32)
  batched = model.decoder.log_likelihood(tf.constant(batch), z).numpy()
  for row, length in enumerate(lengths):
    sentence = batch[row:row + 1, :length]
    logits = model.decoder.logits(tf.constant(sentence), z[row:row + 1]).numpy()[0]
    targets = sentence[0, 1:]
    expected = _log_softmax(logits)[np.arange(length - 1), targets].sum()
    assert batched[row] == pytest.approx(expected, rel=1e-5, abs=1e-4)
  # The masked sparse cross-entropy the model trains on equals the tfd likelihood.
  tfd_log_prob = model.decoder(tf.constant(batch), z).log_prob(batch[:, 1:])
  np.testing.assert_allclose(batched, tfd_log_prob, rtol=1e-5)
  terms = model(tf.constant(batch))
  np.testing.assert_array_equal(terms["num_tokens"], np.array(lengths) - 1)


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("jit_compile", [False, True])
def test_chunked_likelihood_and_its_gradients_match_the_full_softmax(skip, jit_compile):
  """Sentences longer than softmax_chunk (several chunks, the last one partial), with dropout
  drawn from a seed: the chunked likelihood and its gradient (recomputed chunk by chunk)
  equal those of the (B, T, V) softmax."""
  config = _model_config(skip)
  config.decoder_dropout = 0.3
  model = tasks.TextTask().build_model(config)
  chunk = model.decoder.softmax_chunk
  assert chunk == config.softmax_chunk == 25
  assert not any(layer.twice_differentiable for layer in model.decoder.lstms)
  rng = np.random.default_rng(7)
  lengths = [2 * chunk + 9, 5, chunk + 1]
  batch = tf.constant(_padded_batch(rng, lengths))
  z = tf.constant(rng.normal(size=(3, model.latent_dim)), tf.float32)
  seed = tf.constant([3, 4])
  decoder = model.decoder

  def full_softmax(x, z):
    log_probs = tf.nn.log_softmax(decoder.logits(x, z, training=True, seed=seed))
    targets = x[:, 1:]
    picked = tf.gather(log_probs, targets, batch_dims=2)
    return tf.reduce_sum(tf.where(tf.equal(targets, vocab.PAD_ID), 0.0, picked), axis=1)

  def value_and_gradients(log_likelihood):
    @tf.function(jit_compile=jit_compile)
    def run(z):
      with tf.GradientTape() as tape:
        tape.watch(z)
        total = tf.reduce_sum(log_likelihood(batch, z))
      return total, tape.gradient(total, [z] + decoder.trainable_variables)
    return run(z)

  chunked = value_and_gradients(
      lambda x, z: decoder.log_likelihood(x, z, training=True, seed=seed))
  full = value_and_gradients(full_softmax)
  np.testing.assert_allclose(chunked[0], full[0], rtol=1e-5)
  for got, want in zip(chunked[1], full[1]):
    np.testing.assert_allclose(tf.convert_to_tensor(got), tf.convert_to_tensor(want),
                               rtol=1e-4, atol=1e-6)


def test_semi_amortized_decoder_keeps_the_twice_differentiable_softmax():
  config = _model_config(True)
  config.inference = "semi_amortized"
  model = tasks.TextTask().build_model(config)
  assert model.decoder.softmax_chunk == 0
  assert all(layer.twice_differentiable for layer in model.decoder.lstms)
  assert not any(layer.twice_differentiable for layer in model.encoder.lstms)
  batch = tf.constant(_padded_batch(np.random.default_rng(8), [config.softmax_chunk + 3, 4]))
  z = tf.ones([2, model.latent_dim])
  with tf.GradientTape() as outer:
    outer.watch(z)
    with tf.GradientTape() as inner:
      inner.watch(z)
      total = tf.reduce_sum(model.decoder.log_likelihood(batch, z))
    dz_norm = tf.reduce_sum(inner.gradient(total, z) ** 2)
  second = outer.gradient(dz_norm, z)
  assert second is not None and np.all(np.isfinite(second.numpy()))


def test_encoder_reads_each_sentence_at_its_last_token():
  model = tasks.TextTask().build_model(_model_config(True))
  rng = np.random.default_rng(2)
  lengths = [4, 10, 7]
  batch = _padded_batch(rng, lengths)
  means = model.encoder(tf.constant(batch)).distribution.loc.numpy()
  for row, length in enumerate(lengths):
    alone = model.encoder(tf.constant(batch[row:row + 1, :length])).distribution.loc.numpy()
    np.testing.assert_allclose(means[row], alone[0], rtol=1e-5, atol=1e-6)


def _z_gradient_without_first_layer_route(model, batch, z):
  """|d log p(x|z) / d z| after cutting z's routes into the first LSTM layer."""
  decoder = model.decoder
  decoder.lstms[0].static_kernel.assign(tf.zeros_like(decoder.lstms[0].static_kernel))
  for weight in decoder.initial_hidden.weights:
    weight.assign(tf.zeros_like(weight))
  with tf.GradientTape() as tape:
    tape.watch(z)
    log_likelihood = tf.reduce_sum(decoder.log_likelihood(batch, z))
  return float(tf.reduce_max(tf.abs(tape.gradient(log_likelihood, z))))


def test_skip_switch_routes_z_into_every_layer_and_the_softmax():
  layers, latent = 3, 4
  plain, skip = (tasks.TextTask().build_model(_model_config(s, layers)) for s in (False, True))
  assert [layer.static_dim for layer in plain.decoder.lstms] == [latent, 0, 0]
  assert [layer.static_dim for layer in skip.decoder.lstms] == [latent] * layers
  assert plain.decoder.z_to_output is None and skip.decoder.z_to_output is not None
  # Exactly the extra input widths: z (D) into LSTM layers 2.. (4 gates each) and the softmax.
  extra = sum(latent * 4 * units for units in (7,) * (layers - 1)) + latent * VOCAB
  assert skip.count_params() - plain.count_params() == extra

  rng = np.random.default_rng(3)
  batch = tf.constant(_padded_batch(rng, [5, 8]))
  z = tf.constant(rng.normal(size=(2, latent)), tf.float32)
  assert _z_gradient_without_first_layer_route(plain, batch, z) == 0.0
  assert _z_gradient_without_first_layer_route(skip, batch, z) > 1e-4
  # With only the softmax route left, z still reaches the likelihood under skip.
  for layer in skip.decoder.lstms[1:]:
    layer.static_kernel.assign(tf.zeros_like(layer.static_kernel))
  assert _z_gradient_without_first_layer_route(skip, batch, z) > 1e-4


@pytest.mark.parametrize("skip", [False, True])
def test_greedy_decode_is_the_argmax_of_the_teacher_forced_model(skip):
  model = tasks.TextTask().build_model(_model_config(skip))
  z = tf.constant(np.random.default_rng(4).normal(size=(3, model.latent_dim)), tf.float32)
  decoded = model.decoder.greedy(z).numpy()
  assert decoded.shape == (3, model.decoder.max_decode_length)
  inputs = np.concatenate([np.full((3, 1), vocab.BOS_ID, np.int32), decoded], axis=1)
  argmax = tf.argmax(model.decoder.logits(tf.constant(inputs), z), axis=-1).numpy()
  for row in range(3):
    ended = np.flatnonzero(decoded[row] == vocab.EOS_ID)
    stop = ended[0] + 1 if len(ended) else decoded.shape[1]
    np.testing.assert_array_equal(decoded[row, :stop], argmax[row, :stop])
    assert np.all(decoded[row, stop:] == vocab.PAD_ID)
  seed = tf.constant([1, 2])
  sampled = model.decoder.sample(z, seed).numpy()
  np.testing.assert_array_equal(sampled, model.decoder.sample(z, seed).numpy())
  assert sampled.min() >= 0 and sampled.max() < VOCAB


def test_dropout_drops_at_its_rate_keeps_the_mean_and_is_off_at_evaluation():
  layer = text.Dropout(0.5)
  x = tf.ones([200, 500])
  dropped = layer(x, training=True).numpy()
  assert set(np.unique(dropped)) == {0.0, 2.0}
  assert np.mean(dropped == 0.0) == pytest.approx(0.5, abs=0.01)
  assert dropped.mean() == pytest.approx(1.0, abs=0.02)
  assert not np.array_equal(dropped, layer(x, training=True).numpy())  # Fresh draws per call.
  np.testing.assert_array_equal(layer(x, training=False), x)
  compiled = tf.function(lambda t: layer(t, training=True), jit_compile=True)
  assert np.mean(compiled(x).numpy() == 0.0) == pytest.approx(0.5, abs=0.01)


def test_z_initialises_the_top_decoder_layer_and_heads_start_uniform():
  """As the reference: h0[-1] = Linear(z) (the top layer; the others start at zero), and
  every parameter, the posterior head's included, starts in U(-0.1, 0.1)."""
  model = tasks.TextTask().build_model(_model_config(True, layers=3))
  z = tf.random.stateless_normal([2, 4], [3, 4])
  states = model.decoder._initial_states(z)  # pylint: disable=protected-access
  np.testing.assert_allclose(states[-1][0], model.decoder.initial_hidden(z), rtol=1e-6)
  for h, c in states[:-1] + [(tf.zeros([2, 7]), states[-1][1])]:
    assert not np.any(h.numpy()) and not np.any(c.numpy())
  head = model.encoder.head.trainable_variables
  assert head and all(np.all(np.abs(v.numpy()) <= 0.1) for v in head)
  assert all(np.any(v.numpy() != 0.0) for v in head)  # Biases too, not Keras' zeros.
