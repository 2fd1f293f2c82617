"""An LSTM layer whose per-sequence inputs (z) are projected once, not at every step.

For inputs [x_t, s] with s the same at every step (z in the text decoders),
  gates_t = x_t W_x + s W_s + h_{t-1} W_h + b,  (i, f, g, o) = split(gates_t),
  c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g),  h_t = sigmoid(o) tanh(c_t),
which is exactly an LSTM over the concatenation [x_t, s] (same parameter count), but
x_t W_x runs as one matrix product over all steps and s W_s once per sequence; only
h_{t-1} W_h stays inside the recurrence.

The backward pass through time is written out (`_recurrence_with_written_out_gradient`): the
forward pass keeps each step's activated gates and cell state, and the weight gradient is one
matrix product after the loop. Autodiff of the loop (tf.scan) instead keeps about eight
(B, H) intermediates per step and adds an (H, 4H) weight gradient at every step: the written-
out pass is lighter and faster. It is a first
derivative only: a model that differentiates through gradients (semi-amortized inference)
builds its decoder's LSTMs with `twice_differentiable=True`, which differentiates the loop by
autodiff.

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
    twice_differentiable: differentiate the loop by autodiff, which has second
      derivatives, instead of the written-out backward pass (module docstring).
  """

  def __init__(self, units: int, static_dim: int = 0, initializer="glorot_uniform",
               twice_differentiable: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.static_dim = static_dim
    self.twice_differentiable = twice_differentiable
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
    """A weight in the compute dtype (also when called outside `__call__`, e.g. for
    `step_function`)."""
    return tf.cast(variable, self.compute_dtype)

  def static_projection(self, static: tf.Tensor | None) -> tf.Tensor:
    """(B, S) -> (B, 4H) float32 gate contribution of the per-sequence input, plus the bias."""
    bias = tf.cast(self.bias, tf.float32)
    if self.static_kernel is None:
      return bias[None]
    return _float32_matmul(static, self._weight(self.static_kernel)) + bias

  def step_function(self, static: tf.Tensor | None):
    """For token-by-token decoding: `step(x_t (B, F), float32 (h, c)) -> new (h, c)`, with
    the per-sequence input `static` (B, S) projected and the weights cast to the compute
    dtype here, once. Read inside a decoding loop, each would be a new value at every step,
    and TF's loop runs up to 10 steps ahead on work that does not wait for the last token."""
    projection = self.static_projection(static)
    kernel, recurrent_kernel = self._weight(self.kernel), self._weight(self.recurrent_kernel)
    return lambda inputs, state: _recurrence(
        recurrent_kernel, state, _float32_matmul(inputs, kernel) + projection)

  def call(self, inputs, static=None, initial_state=None):
    """inputs (B, T, F), static (B, S) or None, initial (h, c) or zeros -> (B, T, H)."""
    batch = tf.shape(inputs)[0]
    if initial_state is None:
      zeros = tf.zeros([batch, self.units])
      initial_state = (zeros, zeros)
    projection = self.static_projection(static)
    input_products = tf.einsum("btf,fg->tbg", inputs, self._weight(self.kernel))
    # Read the recurrent kernel once, outside the loop: a variable read inside the scan body
    # is a new value at every step, and the gradient loop keeps all T of them (16 MB each
    # for 1024 units: the memory grew by gigabytes with the sentence length).
    recurrent_kernel = self._weight(self.recurrent_kernel)
    h0, c0 = (tf.cast(s, tf.float32) for s in initial_state)
    if self.twice_differentiable:
      hidden, _ = tf.scan(lambda state, gates: _recurrence(recurrent_kernel, state, gates),
                          tf.cast(input_products, tf.float32) + projection[None],
                          initializer=(h0, c0))
    else:
      hidden = _recurrence_with_written_out_gradient(
          input_products, tf.broadcast_to(projection, tf.shape(input_products)[1:]), h0, c0,
          recurrent_kernel)
    return tf.transpose(hidden, [1, 0, 2])


def _float32_matmul(a: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
  """a @ kernel in the kernel's dtype, returned as float32."""
  return tf.cast(tf.matmul(tf.cast(a, kernel.dtype), kernel), tf.float32)


def _step(recurrent_kernel: tf.Tensor, state: tuple[tf.Tensor, tf.Tensor],
          input_gates: tf.Tensor) -> tuple[tuple[tf.Tensor, tf.Tensor], tf.Tensor]:
  """float32 (h, c), float32 input gates (B, 4H) -> the next float32 (h, c) and the activated
  gates [sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)] (B, 4H); h @ W_h in the kernel's dtype."""
  h, c = state
  i, f, g, o = tf.split(input_gates + _float32_matmul(h, recurrent_kernel), 4, axis=-1)
  i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
  c = f * c + i * g
  return (o * tf.tanh(c), c), tf.concat([i, f, g, o], axis=-1)


def _recurrence(recurrent_kernel: tf.Tensor, state: tuple[tf.Tensor, tf.Tensor],
                input_gates: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """float32 (h, c), float32 input gates (B, 4H) -> the next float32 (h, c)."""
  return _step(recurrent_kernel, state, input_gates)[0]


@tf.custom_gradient
def _recurrence_with_written_out_gradient(input_products: tf.Tensor, projection: tf.Tensor,
                                          h0: tf.Tensor, c0: tf.Tensor,
                                          recurrent_kernel: tf.Tensor):
  """Hidden states (T, B, H) float32 of the recurrence over the input gates
  x_t W_x + projection, with the backward pass through time written out.

  Args:
    input_products: x_t W_x, time-major (T, B, 4H), in the compute dtype.
    projection: (B, 4H) float32, `static_projection` (the same at every step).
    h0, c0: (B, H) float32 initial state.
    recurrent_kernel: W_h (H, 4H) in the compute dtype.

  Forward, each step keeps its activated gates [i, f, g, o] (B, 4H) and h_t, c_t. Backward,
  from t = T - 1 down to 0, with dh the gradient reaching h_t (from the outputs and from
  step t + 1) and dc the one reaching c_t:
    dc += dh o (1 - tanh(c_t)^2),
    dgates_t = [dc g i (1 - i), dc c_{t-1} f (1 - f), dc i (1 - g^2), dh tanh(c_t) o (1 - o)],
    dh_{t-1} = dgates_t W_h^T,  dc_{t-1} = dc f.
  The input products' gradient is dgates (in their dtype, as autodiff of the cast gives it),
  the projection's sum_t dgates_t, and W_h's sum_t h_{t-1}^T dgates_t, one matrix product
  over all steps after the loop.
  """
  steps = tf.shape(input_products)[0]
  # h_0..h_T and c_0..c_T in one array each: [1:] are the outputs and [:-1] the states each
  # step starts from, both without a copy.
  states = lambda first: tf.TensorArray(tf.float32, size=steps + 1,
                                        element_shape=first.shape).write(0, first)

  def forward(t, h, c, hs, cs, gates):
    (h, c), activations = _step(recurrent_kernel, (h, c),
                                tf.cast(input_products[t], tf.float32) + projection)
    return t + 1, h, c, hs.write(t + 1, h), cs.write(t + 1, c), gates.write(t, activations)

  gates = tf.TensorArray(tf.float32, size=steps, element_shape=projection.shape)
  *_, hs, cs, gates = tf.while_loop(lambda t, *_: t < steps, forward,
                                    (0, h0, c0, states(h0), states(c0), gates))
  hs, cs, gates = hs.stack(), cs.stack(), gates.stack()

  def gradient(d_outputs):
    kernel_transposed = tf.transpose(recurrent_kernel)

    def backward(t, dh, dc, d_projection, d_products):
      i, f, g, o = tf.split(gates[t], 4, axis=-1)
      tanh_c = tf.tanh(cs[t + 1])
      dh += d_outputs[t]
      dc += dh * o * (1.0 - tanh_c * tanh_c)
      d_gates = tf.concat([dc * g * i * (1.0 - i), dc * cs[t] * f * (1.0 - f),
                           dc * i * (1.0 - g * g), dh * tanh_c * o * (1.0 - o)], axis=-1)
      return (t - 1, _float32_matmul(d_gates, kernel_transposed), dc * f,
              d_projection + d_gates, d_products.write(t, tf.cast(d_gates, d_products.dtype)))

    zeros = tf.zeros_like(h0)
    d_products = tf.TensorArray(input_products.dtype, size=steps,
                                element_shape=input_products.shape[1:])
    _, dh0, dc0, d_projection, d_products = tf.while_loop(
        lambda t, *_: t >= 0, backward,
        (steps - 1, zeros, zeros, tf.zeros_like(projection), d_products))
    d_products = d_products.stack()
    d_kernel = tf.einsum("tbh,tbg->hg", tf.cast(hs[:-1], recurrent_kernel.dtype),
                         tf.cast(d_products, recurrent_kernel.dtype))
    return d_products, d_projection, dh0, dc0, d_kernel

  return hs[1:], gradient
