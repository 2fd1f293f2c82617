"""An LSTM layer whose per-sequence inputs (z) are projected once, not at every step.

For inputs [x_t, s] with s the same at every step (z in the text decoders),
  gates_t = x_t W_x + s W_s + h_{t-1} W_h + b,  (i, f, g, o) = split(gates_t),
  c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g),  h_t = sigmoid(o) tanh(c_t),
which is exactly an LSTM over the concatenation [x_t, s] (same parameter count), but
x_t W_x runs as one matrix product over all steps and s W_s once per sequence; only
h_{t-1} W_h stays inside the recurrence (tf.scan).

Matrix products run in the layer's compute dtype (bfloat16 under the mixed policy,
`skip_vae_tf.precision`); the gates, the cell state and the hidden states are float32.
"""

import keras
import tensorflow as tf


class LSTM(keras.layers.Layer):
  """(B, T, F) sequence [+ (B, S) per-sequence input] -> (B, T, units) float32 hidden states.

  Args:
    units: hidden size H.
    static_dim: S, width of the per-sequence input (0 = none).
    initializer: for every weight and bias.
  """

  def __init__(self, units: int, static_dim: int = 0, initializer="glorot_uniform", **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.static_dim = static_dim
    self.initializer = keras.initializers.get(initializer)

  def build(self, input_shape):
    gates = 4 * self.units
    self.kernel = self.add_weight(shape=(input_shape[-1], gates), initializer=self.initializer,
                                  name="kernel")
    self.static_kernel = (self.add_weight(shape=(self.static_dim, gates),
                                          initializer=self.initializer, name="static_kernel")
                          if self.static_dim else None)
    self.recurrent_kernel = self.add_weight(shape=(self.units, gates),
                                            initializer=self.initializer,
                                            name="recurrent_kernel")
    self.bias = self.add_weight(shape=(gates,), initializer=self.initializer, name="bias")

  def _weight(self, variable) -> tf.Tensor:
    """A weight in the compute dtype (also when called outside `__call__`, e.g. `step`)."""
    return tf.cast(variable, self.compute_dtype)

  def static_projection(self, static: tf.Tensor | None) -> tf.Tensor:
    """(B, S) -> (B, 4H) float32 gate contribution of the per-sequence input, plus the bias."""
    bias = tf.cast(self.bias, tf.float32)
    if self.static_kernel is None:
      return bias[None]
    return _float32_matmul(static, self._weight(self.static_kernel)) + bias

  def step(self, inputs: tf.Tensor, projection: tf.Tensor,
           state: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """One step: x_t (B, F), `static_projection` (B, 4H), float32 (h, c) -> new (h, c)."""
    return _recurrence(self._weight(self.recurrent_kernel), state,
                       _float32_matmul(inputs, self._weight(self.kernel)) + projection)

  def call(self, inputs, static=None, initial_state=None):
    """inputs (B, T, F), static (B, S) or None, initial (h, c) or zeros -> (B, T, H)."""
    batch = tf.shape(inputs)[0]
    if initial_state is None:
      zeros = tf.zeros([batch, self.units])
      initial_state = (zeros, zeros)
    projection = self.static_projection(static)
    input_gates = tf.cast(tf.einsum("btf,fg->tbg", inputs, self._weight(self.kernel)),
                          tf.float32) + projection[None]
    # Read the recurrent kernel once, outside the loop: a variable read inside the scan body
    # is a new value at every step, and the gradient loop keeps all T of them (16 MB each
    # for 1024 units: the memory grew by gigabytes with the sentence length).
    recurrent_kernel = self._weight(self.recurrent_kernel)
    hidden, _ = tf.scan(lambda state, gates: _recurrence(recurrent_kernel, state, gates),
                        input_gates,
                        initializer=tuple(tf.cast(s, tf.float32) for s in initial_state))
    return tf.transpose(hidden, [1, 0, 2])


def _float32_matmul(a: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
  """a @ kernel in the kernel's dtype, returned as float32."""
  return tf.cast(tf.matmul(tf.cast(a, kernel.dtype), kernel), tf.float32)


def _recurrence(recurrent_kernel: tf.Tensor, state: tuple[tf.Tensor, tf.Tensor],
                input_gates: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """float32 (h, c), float32 input gates (B, 4H) -> the next float32 (h, c); h @ W_h in the
  kernel's dtype."""
  h, c = state
  gates = input_gates + _float32_matmul(h, recurrent_kernel)
  i, f, g, o = tf.split(gates, 4, axis=-1)
  c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
  return tf.sigmoid(o) * tf.tanh(c), c
