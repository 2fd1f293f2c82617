"""Numeric precision of the networks: float32, or mixed bfloat16 (`train.precision`).

Mixed bfloat16 is Keras' 'mixed_bfloat16' dtype policy on the network layers (the official
image encoder's posterior heads excepted: they compute in float32): variables stay float32,
matrix products and convolutions run in bfloat16. Everything the paper's
figures are made of stays float32: the posterior parameters and the logits are cast to
float32 where they become distributions (`encoders.diagonal_gaussian`,
`decoders.bernoulli_image`, the text decoder's cross-entropy), so the likelihood, the KL,
log-sum-exps, MI and IW accumulations, the LSTM cell state and the optimizer all run in
float32. Checkpoints are float32 either way: a run's weights evaluate in both precisions.

'auto' (the text configs' default; image configs default to float32) is mixed bfloat16
where the hardware computes in bfloat16 natively (a GPU of compute capability 8.0 or more;
a CPU with AVX512_BF16 or AMX-BF16) and float32 elsewhere, where bfloat16 would be emulated
and slower. Training resolves it before the run's config.json is written, so a run records
the precision it trained in.
"""

import contextlib
import pathlib

# TensorFlow and Keras are imported where they are used: the config (and so every binary's
# flag checks) reads this module's names without starting TensorFlow.

PRECISIONS = ("float32", "mixed_bfloat16")
CHOICES = ("auto",) + PRECISIONS
# /proc/cpuinfo flags of x86 CPUs with bfloat16 dot products in hardware.
_CPU_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
_CPUINFO = pathlib.Path("/proc/cpuinfo")


def cpu_has_bfloat16(cpuinfo: str | None = None) -> bool:
  """Whether the CPU multiplies bfloat16 natively, from /proc/cpuinfo's flags (`cpuinfo`,
  its text; read from the file when None; False where there is no such file)."""
  if cpuinfo is None:
    try:
      cpuinfo = _CPUINFO.read_text(errors="replace")
    except OSError:
      return False
  flags = set()
  for line in cpuinfo.splitlines():
    if line.startswith("flags"):
      flags.update(line.partition(":")[2].split())
  return any(flag in flags for flag in _CPU_BFLOAT16_FLAGS)


def gpus_have_bfloat16() -> bool | None:
  """None without a GPU; else whether every GPU has compute capability 8.0 or more."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gpus = tf.config.list_physical_devices("GPU")
  if not gpus:
    return None
  return all(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
             >= (8, 0) for gpu in gpus)


def resolve(precision: str) -> str:
  """`precision` itself when it is one of PRECISIONS; for 'auto', mixed_bfloat16 where the
  GPUs (or, without one, the CPU) compute in bfloat16 natively, else float32."""
  if precision in PRECISIONS:
    return precision
  if precision != "auto":
    raise ValueError(f"unknown precision {precision!r}; choose one of {CHOICES}")
  native = gpus_have_bfloat16()
  if native is None:
    native = cpu_has_bfloat16()
  return "mixed_bfloat16" if native else "float32"


@contextlib.contextmanager
def policy_scope(precision: str):
  """Layers created inside take `precision` as their dtype policy (one of CHOICES)."""
  import keras  # pylint: disable=g-import-not-at-top
  policy = resolve(precision)
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(policy)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


def use_xla(train_config, jit_compile: bool | None = None) -> bool:
  """Whether to compile the per-replica passes with XLA: `jit_compile` (None: the config's
  `train.jit_compile`), except for mixed bfloat16 without a GPU, where XLA on CPU runs
  bfloat16 matrix products no faster than float32 and TF's own (oneDNN) kernels are faster."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if (resolve(train_config.precision) == "mixed_bfloat16"
      and not tf.config.list_physical_devices("GPU")):
    return False
  return bool(train_config.jit_compile if jit_compile is None else jit_compile)
