"""LSTM encoder and decoder for sentences of token ids (B, L) int32, `<s> ... </s>` + padding.

Padding is id 0 (`vocabulary.PAD_ID`) on the right. The decoder is teacher-forced on
x[:, :-1] and predicts the targets x[:, 1:]; target positions holding padding are masked
out of the likelihood (tfd.Masked), so a padded batch scores exactly like its sentences
scored one by one.

`skip` is the only switch between the VAE decoder and the generative skip model's:
- off (the reference's VAE): z is concatenated to the word embedding at every step and
  initialises the first layer's hidden state;
- on: z is also concatenated to the input of every further LSTM layer and to the input of
  the output softmax layer.
"""

from collections.abc import Sequence

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from skip_vae_tf import vocabulary
from skip_vae_tf.models import encoders
from skip_vae_tf.models import layer_lists
from skip_vae_tf.models import layers
from skip_vae_tf.models import lstm
from skip_vae_tf.models import seeds

tfd = tfp.distributions

# Time steps whose (B, chunk, V) logits `log_likelihood` holds at once (its memory bound).
LOGITS_CHUNK = 25


def initializer(scale: float):
  """Uniform in [-scale, scale] (the reference's init), or Keras defaults when scale is 0."""
  return keras.initializers.RandomUniform(-scale, scale) if scale else "glorot_uniform"


def sentence_lengths(x: tf.Tensor) -> tf.Tensor:
  """(B, L) ids -> (B,) int32 number of non-padding tokens (`<s>` and `</s>` included)."""
  return tf.reduce_sum(tf.cast(tf.not_equal(x, vocabulary.PAD_ID), tf.int32), axis=1)


def num_predicted_tokens(x: tf.Tensor) -> tf.Tensor:
  """(B,) float32 tokens the decoder predicts per sentence: every word and `</s>`, not `<s>`."""
  return tf.cast(sentence_lengths(x) - 1, tf.float32)


def masked_categorical(logits: tf.Tensor, mask: tf.Tensor) -> tfd.Distribution:
  """Logits (B, T, V), mask (B, T) bool -> batch (B,), event (T,) of token ids; masked
  positions contribute log-probability 0."""
  return tfd.Independent(tfd.Masked(tfd.Categorical(logits=logits), validity_mask=mask),
                         reinterpreted_batch_ndims=1)


def _cross_entropy(logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
  """Logits (B, T, V), target ids (B, T) -> (B, T) -log softmax(logits)[target], nats."""
  return tf.reduce_logsumexp(logits, axis=-1) - tf.gather(logits, targets, batch_dims=2)


class Dropout(keras.layers.Layer):
  """Inverted dropout drawn with an explicit Philox stateless RNG.

  Keras' Dropout draws through TF's 'auto' RNG algorithm, which XLA on CPU runs about 20x
  slower than Philox (0.3 s vs 15 ms per 1.3M draws here): with it, dropout alone took a
  fifth of a compiled Yahoo training step. The seed state is checkpointed
  (`seeds.SeedState`), so a resumed run drops what an uninterrupted one would have.
  """

  def __init__(self, rate: float, **kwargs):
    super().__init__(**kwargs)
    self.rate = rate
    self.seed_state = seeds.SeedState(name="seed_state")

  def call(self, x, training=False, seed=None):
    """`seed` (2,) draws the mask explicitly; by default the next seed of the state."""
    if not training or not self.rate:
      return x
    seed = tf.cast(self.seed_state.next() if seed is None else seed, tf.int64)
    keep = tf.random.stateless_uniform(tf.shape(x), seed, alg="philox") >= self.rate
    return tf.where(keep, x / (1.0 - self.rate), tf.zeros_like(x))


class LSTMEncoder(keras.layers.Layer):
  """Word embeddings -> stacked LSTMs; the top layer's state at each sentence's last token
  (`</s>`) -> q(z|x), a diagonal Gaussian with event shape (D,)."""

  def __init__(self, vocab_size: int, embedding_dim: int, hidden: Sequence[int],
               latent_dim: int, init_scale: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    init = initializer(init_scale)
    self.embedding = keras.layers.Embedding(vocab_size, embedding_dim,
                                            embeddings_initializer=init, name="embedding")
    self.lstms = layer_lists.tracked(self, "lstm", [
        lstm.LSTM(units, initializer=init, name=f"lstm{i}") for i, units in enumerate(hidden)])
    self.head = encoders.GaussianHead(latent_dim, initializer=init, name="head")

  def call(self, x, training=False):
    del training  # No dropout in the encoder (as in the reference).
    h = self.embedding(x)
    for layer in self.lstms:
      h = layer(h)
    last = tf.gather(h, sentence_lengths(x) - 1, axis=1, batch_dims=1)
    return self.head(last)


class LSTMDecoder(keras.layers.Layer):
  """p(x|z): teacher-forced stacked LSTMs over word embeddings, softmax over the vocabulary.

  Args:
    vocab_size: V.
    embedding_dim: word embedding width.
    hidden: units of each LSTM layer.
    latent_dim: D.
    skip: the generative skip model (z into every layer and the softmax input).
    dropout: rate on the word embeddings and on the top LSTM's output.
    max_decode_length: tokens generated by `greedy` and `sample` (without `<s>`).
    init_scale: uniform init range (0 = Keras defaults).
    chunk_softmax: `log_likelihood` holds the logits of LOGITS_CHUNK steps at a time,
      recomputed for the gradient (bounded memory); its second derivative is not defined
      (tf.recompute_grad), so a semi-amortized model, which differentiates through
      gradients of the likelihood, builds its decoder without it.
  """

  def __init__(self, vocab_size: int, embedding_dim: int, hidden: Sequence[int],
               latent_dim: int, skip: bool, dropout: float = 0.0, max_decode_length: int = 100,
               init_scale: float = 0.0, chunk_softmax: bool = True, **kwargs):
    super().__init__(**kwargs)
    init = initializer(init_scale)
    self.skip = skip
    self.chunk_softmax = chunk_softmax
    self.max_decode_length = max_decode_length
    self.embedding = keras.layers.Embedding(vocab_size, embedding_dim,
                                            embeddings_initializer=init, name="embedding")
    # Linear(z) is the top layer's initial hidden state (the reference's h0[-1]).
    self.initial_hidden = layers.Dense(hidden[-1], kernel_initializer=init,
                                             bias_initializer=init, name="z_to_h0")
    self.lstms = layer_lists.tracked(self, "lstm", [
        lstm.LSTM(units, static_dim=latent_dim if (i == 0 or skip) else 0, initializer=init,
                  name=f"lstm{i}") for i, units in enumerate(hidden)])
    self.dropout = Dropout(dropout, name="dropout")
    self.output_layer = layers.Dense(vocab_size, kernel_initializer=init,
                                           bias_initializer=init, name="output")
    # Built here: its weights are used as tensors (`_softmax_weights`), never by calling it.
    self.output_layer.build((None, hidden[-1]))
    # [h, z] W = h W_h + z W_z: the skip model's softmax input, without the concatenation.
    self.z_to_output = (layers.Dense(vocab_size, use_bias=False, kernel_initializer=init,
                                           name="z_to_output") if skip else None)

  def _initial_states(self, z):
    zeros = [tf.zeros([tf.shape(z)[0], layer.units]) for layer in self.lstms]
    states = [(h, h) for h in zeros]
    states[-1] = (tf.cast(self.initial_hidden(z), tf.float32), zeros[-1])
    return states

  def _softmax_weights(self, z):
    """The softmax layer as tensors in the compute dtype: kernel (H, V), bias (V,) and z's
    term (B, V) (the skip model's z_to_output(z); zeros for the VAE)."""
    dtype = self.output_layer.compute_dtype
    kernel = tf.cast(self.output_layer.kernel, dtype)
    bias = tf.cast(self.output_layer.bias, dtype)
    if self.skip:
      return kernel, bias, tf.cast(self.z_to_output(z), dtype)
    return kernel, bias, tf.zeros([tf.shape(z)[0], tf.shape(kernel)[1]], dtype)

  @staticmethod
  def _logits_from(h, kernel, bias, z_term):
    """Hidden states (B, [T,] H) and `_softmax_weights` -> float32 logits (B, [T,] V): the
    output layer (as `layers.Dense` computes it) plus z's term."""
    logits = layers.add_bias(keras.ops.matmul(tf.cast(h, kernel.dtype), kernel), bias)
    logits += z_term[:, None] if len(logits.shape) == 3 else z_term
    return tf.cast(logits, tf.float32)

  def _output_logits(self, h, z):
    """Top hidden states (B, [T,] H), z (B, D) -> float32 logits (B, [T,] V)."""
    return self._logits_from(h, *self._softmax_weights(z))

  def _top_states(self, x, z, training, seed):
    """The top LSTM's outputs after dropout (B, L - 1, H) for the inputs x[:, :-1]."""
    seeds = ((None, None) if seed is None else
             [tf.random.experimental.stateless_fold_in(seed, i) for i in range(2)])
    h = self.dropout(self.embedding(x[:, :-1]), training=training, seed=seeds[0])
    for layer, state in zip(self.lstms, self._initial_states(z)):
      h = layer(h, static=z if layer.static_dim else None, initial_state=state)
    return self.dropout(h, training=training, seed=seeds[1])

  def logits(self, x, z, training=False, seed=None):
    """x (B, L) ids, z (B, D) -> logits (B, L - 1, V) of the targets x[:, 1:]; `seed`
    (2,) draws the dropout masks explicitly (default: the dropout layer's seed state)."""
    return self._output_logits(self._top_states(x, z, training, seed), z)

  def call(self, x, z, training=False):
    """p(x[:, 1:] | x[:, :-1], z): batch (B,), event (L - 1,), padding masked."""
    targets = x[:, 1:]
    return masked_categorical(self.logits(x, z, training),
                              tf.not_equal(targets, vocabulary.PAD_ID))

  def log_likelihood(self, x, z, training=False, seed=None):
    """(B,) log p(x|z), nats per sentence (padding excluded); `seed` as in `logits`.

    The masked cross-entropy logsumexp(logits) - logit[target], equal to
    `self(x, z).log_prob(x[:, 1:])` (a test checks it), with `chunk_softmax` computed over
    LOGITS_CHUNK time steps at a time (`_chunked_cross_entropy`): the (B, L - 1, V) logits
    never exist at once. Written out rather than with TF's fused sparse cross-entropy, whose second
    derivative TF does not provide (semi-amortized training differentiates through
    gradients of this likelihood).
    """
    targets = x[:, 1:]
    h = self._top_states(x, z, training, seed)
    if self.chunk_softmax:
      cross_entropy = self._chunked_cross_entropy(h, z, targets)
    else:
      cross_entropy = _cross_entropy(self._output_logits(h, z), targets)
    mask = tf.cast(tf.not_equal(targets, vocabulary.PAD_ID), cross_entropy.dtype)
    return -tf.reduce_sum(mask * cross_entropy, axis=1)

  def _chunked_cross_entropy(self, h, z, targets):
    """Top states (B, T, H), z (B, D), targets (B, T) -> (B, T) float32 -logp(target).

    The T steps go through the softmax in chunks of LOGITS_CHUNK, one after another, each
    chunk's (B, chunk, V) logits recomputed in the backward pass (tf.recompute_grad)
    rather than kept: peak memory holds one chunk's logits, not all T steps'.
    """
    batch, steps = tf.shape(h)[0], tf.shape(h)[1]
    chunks = (steps + LOGITS_CHUNK - 1) // LOGITS_CHUNK
    padding = chunks * LOGITS_CHUNK - steps

    def time_major_chunks(tensor):
      """(B, T, ...) -> (chunks, B, LOGITS_CHUNK, ...), T padded to whole chunks."""
      rank = tensor.shape.rank
      tensor = tf.pad(tensor, [[0, 0], [0, padding]] + [[0, 0]] * (rank - 2))
      tensor = tf.reshape(tensor, tf.concat([[batch, chunks, LOGITS_CHUNK],
                                             tf.shape(tensor)[2:]], 0))
      return tf.transpose(tensor, [1, 0] + list(range(2, rank + 1)))

    @tf.recompute_grad
    def chunk_cross_entropy(h_chunk, target_ids, kernel, bias, z_term):
      return _cross_entropy(self._logits_from(h_chunk, kernel, bias, z_term),
                            tf.cast(target_ids, tf.int32))

    # The softmax weights enter as arguments (recompute_grad differentiates its arguments;
    # variables read inside a loop it cannot); target ids travel as float32 (exact below
    # 2^24) because recompute_grad takes float inputs.
    weights = self._softmax_weights(z)
    entropies = tf.map_fn(
        lambda args: chunk_cross_entropy(args[0], args[1], *weights),
        (time_major_chunks(h), time_major_chunks(tf.cast(targets, tf.float32))),
        fn_output_signature=tf.TensorSpec([None, LOGITS_CHUNK], tf.float32),
        parallel_iterations=1)
    entropies = tf.reshape(tf.transpose(entropies, [1, 0, 2]), [batch, -1])
    return entropies[:, :steps]

  def _generate(self, z, choose):
    """Token by token from `<s>`; `choose(step, logits (B, V)) -> ids (B,)`. After `</s>`
    every position is `<pad>`. Returns (B, max_decode_length) int32."""
    batch = tf.shape(z)[0]
    projections = [layer.static_projection(z if layer.static_dim else None)
                   for layer in self.lstms]
    token = tf.fill([batch], vocabulary.BOS_ID)
    finished = tf.zeros([batch], tf.bool)
    tokens = tf.TensorArray(tf.int32, size=self.max_decode_length)

    def step_fn(step, token, finished, states, tokens):
      h = self.embedding(token)
      new_states = []
      for layer, projection, state in zip(self.lstms, projections, states):
        h, c = layer.step(h, projection, state)
        new_states.append((h, c))
      token = tf.cast(choose(step, self._output_logits(h, z)), tf.int32)
      token = tf.where(finished, vocabulary.PAD_ID, token)
      finished = finished | tf.equal(token, vocabulary.EOS_ID)
      return step + 1, token, finished, new_states, tokens.write(step, token)

    # An explicit while_loop (not AutoGraph), so that it also traces in exported signatures.
    *_, tokens = tf.while_loop(
        lambda step, *_: step < self.max_decode_length, step_fn,
        (tf.constant(0), token, finished, self._initial_states(z), tokens))
    return tf.transpose(tokens.stack())

  def per_example_counts(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
    """{'num_tokens': (B,)}: the tokens each sentence's likelihood covers (`</s>`, not
    `<s>`), for per-word figures."""
    return {"num_tokens": num_predicted_tokens(x)}

  def summary_decodes(self, means: tf.Tensor, prior_z: tf.Tensor,
                      seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Greedy decodes of the posterior means (B, T) and ancestral samples from the prior
    draws (K, T), token ids."""
    return self.greedy(means), self.sample(prior_z, seed)

  def greedy(self, z: tf.Tensor) -> tf.Tensor:
    """z (B, D) -> (B, max_decode_length) ids, the most likely token at each step."""
    return self._generate(z, lambda step, logits: tf.argmax(logits, axis=-1))

  def sample(self, z: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """z (B, D), stateless seed (2,) -> (B, max_decode_length) ids drawn from p(x|z)."""
    def draw(step, logits):
      step_seed = tf.random.experimental.stateless_fold_in(seed, step)
      return tf.random.stateless_categorical(logits, 1, step_seed)[:, 0]
    return self._generate(z, draw)
