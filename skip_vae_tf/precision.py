"""Numeric precision of the networks: float32, or mixed bfloat16 (`train.precision`).

Mixed bfloat16 is Keras' 'mixed_bfloat16' dtype policy on every network layer: variables
stay float32, matrix products and convolutions run in bfloat16. Everything the paper's
figures are made of stays float32: the posterior parameters and the logits are cast to
float32 where they become distributions (`encoders.diagonal_gaussian`,
`decoders.bernoulli_image`, the text decoder's cross-entropy), so the likelihood, the KL,
log-sum-exps, MI and IW accumulations, the LSTM cell state and the optimizer all run in
float32. Checkpoints are float32 either way: a run's weights evaluate in both precisions.
"""

import contextlib

import keras
import tensorflow as tf

PRECISIONS = ("float32", "mixed_bfloat16")


@contextlib.contextmanager
def policy_scope(precision: str):
  """Layers created inside take `precision` as their dtype policy (one of PRECISIONS)."""
  if precision not in PRECISIONS:
    raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(precision)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


def use_xla(train_config) -> bool:
  """Whether to compile the per-replica passes with XLA: `train.jit_compile`, except for
  mixed bfloat16 without a GPU, where XLA on CPU runs bfloat16 matrix products at float32
  speed while TF's own (oneDNN) kernels run them about 1.7x faster (benchmarks/)."""
  if train_config.precision == "mixed_bfloat16" and not tf.config.list_physical_devices("GPU"):
    return False
  return bool(train_config.jit_compile)
