"""Keras' Conv2D and Dense with a bias gradient that is exact in bfloat16.

Keras adds a layer's bias with `tf.nn.bias_add`, whose gradient op (BiasAddGrad) on CPU sums a
bfloat16 gradient in a bfloat16 accumulator: 4,704 values of 0.01 (a batch of 6 images of 28x28)
sum to 8.0 through tf.nn.bias_add and to 4.0 through a Keras Conv2D, not 47.04, and a mixed
bfloat16 PixelCNN's bias gradients came out about 4x too small. These layers add the bias with a
broadcast add instead, whose gradient is a reduce_sum that TF accumulates in float32
(tests/test_precision.py). In float32 they are Keras' layers unchanged; the variables (and
checkpoints) are the same.

Inside `forward_only()`, where the IW-NLL's decoder passes are traced, no gradient is taken, so
the bias is added with `tf.nn.bias_add` (fused into the convolution) and `pixelcnn.gate` runs as
one XLA kernel.
"""

import contextlib
import contextvars

import keras
import tensorflow as tf

_FORWARD_ONLY = contextvars.ContextVar("forward_only", default=False)


@contextlib.contextmanager
def forward_only():
  """Graphs traced inside are never differentiated: layers may use kernels whose gradients
  are inexact or slow but whose forward pass is fast. Training, refinement, sampling and
  exported SavedModels (which TF Serving runs, with or without XLA) trace outside it."""
  token = _FORWARD_ONLY.set(True)
  try:
    yield
  finally:
    _FORWARD_ONLY.reset(token)


def is_forward_only() -> bool:
  """Whether the layers are being traced inside `forward_only()`."""
  return _FORWARD_ONLY.get()


def add_bias(x: tf.Tensor, bias) -> tf.Tensor:
  """x (..., C) + bias (C,), in x's dtype, as a broadcast add (not BiasAdd)."""
  return tf.add(x, tf.cast(bias, x.dtype))


class Conv2D(keras.layers.Conv2D):
  """keras.layers.Conv2D (channels last) with `add_bias` outside float32."""

  def call(self, inputs):
    if not self.use_bias or self.compute_dtype == "float32":
      return super().call(inputs)
    outputs = self.convolution_op(inputs, self.kernel)
    outputs = (tf.nn.bias_add(outputs, tf.cast(self.bias, outputs.dtype)) if is_forward_only()
               else add_bias(outputs, self.bias))
    return outputs if self.activation is None else self.activation(outputs)


class Dense(keras.layers.Dense):
  """keras.layers.Dense with `add_bias` outside float32."""

  def call(self, inputs, training=None):
    if self.bias is None or self.compute_dtype == "float32":
      return super().call(inputs, training)
    outputs = add_bias(keras.ops.matmul(inputs, self.kernel), self.bias)
    return outputs if self.activation is None else self.activation(outputs)
