r"""The same trained weights evaluated in float32 and in mixed bfloat16, side by side.

  python benchmarks/precision_numerics.py --workdir=RUN [--max_examples=500] [--iw_samples=50]

Restores RUN's best checkpoint once per precision (checkpoints are float32 either way) and
evaluates the first `max_examples` test examples with the same posterior draws: -ELBO,
reconstruction NLL, KL (nats per example; per sentence for text) and the IW-NLL with K =
`iw_samples`, each as the float32 value, the bfloat16 value and their paired difference
(mean +- standard error over examples), plus the wall time of each pass. Both run without
XLA, so that the draws are the same.
"""

import pathlib
import sys
import time

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import record  # pylint: disable=g-import-not-at-top,wrong-import-position

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained run's workdir.", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Raw data folder (default: the run's).")
_MAX_EXAMPLES = flags.DEFINE_integer("max_examples", 500, "Test examples.", lower_bound=1)
_IW_SAMPLES = flags.DEFINE_integer("iw_samples", 50, "K of the IW-NLL (0 skips it).",
                                   lower_bound=0)
_TERMS = ("negative_elbo", "reconstruction_nll", "kl")


def per_example(precision_name: str) -> tuple[dict[str, np.ndarray], dict[str, float]]:
  """({term: (N,)}, {pass: seconds}) of the run's best weights in `precision_name`."""
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from skip_vae_tf import evaluation
  from skip_vae_tf import evaluators
  from skip_vae_tf import precision
  from skip_vae_tf import workdir as workdir_lib
  config, task, model, _ = evaluation.restore_model(
      workdir_lib.Workdir(_WORKDIR.value), "best", precision_name)
  if _DATA_DIR.value:
    config.data.data_dir = _DATA_DIR.value
  config.data.max_eval_examples = _MAX_EXAMPLES.value
  # No XLA in either precision: a compiled pass may draw its posterior samples with another
  # stateless RNG algorithm, and the draws would then differ along with the precision.
  config.train.jit_compile = False
  data = task.load_data(config.data, config.seed)
  batch = config.train.eval_batch_size
  use_xla = precision.use_xla(config.train)
  seconds = {}
  start = time.perf_counter()
  outputs = evaluators.PosteriorEvaluator(
      model, tf.distribute.get_strategy(), batch, config.train.mi_minibatch_size,
      use_xla).outputs(data, "test")
  seconds["posterior pass"] = time.perf_counter() - start
  values = {name: outputs[name] for name in _TERMS}
  if _IW_SAMPLES.value:
    start = time.perf_counter()
    values["iw_nll"] = evaluators.ImportanceWeightedEvaluator(
        model, _IW_SAMPLES.value, max(1, task.iw_examples_per_call // batch), batch,
        seed=config.seed, jit_compile=use_xla).per_example(data, "test")
    seconds["IW-NLL pass"] = time.perf_counter() - start
  return values, seconds


def main(argv):
  del argv
  results = {name: per_example(name) for name in ("float32", "mixed_bfloat16")}
  (full, full_seconds), (mixed, mixed_seconds) = results["float32"], results["mixed_bfloat16"]
  count = len(full["negative_elbo"])
  print(f"{_WORKDIR.value}: {count} test examples, nats per example; the same weights and "
        f"draws; IW-NLL K={_IW_SAMPLES.value}")
  print(f"{'term':20s} {'float32':>12s} {'bfloat16':>12s} {'bf16 - f32':>22s}")
  for name in full:
    difference = mixed[name] - full[name]
    stderr = difference.std(ddof=1) / np.sqrt(count)
    print(f"{name:20s} {full[name].mean():12.4f} {mixed[name].mean():12.4f} "
          f"{difference.mean():+12.4f} +- {stderr:.4f}  (max |diff| "
          f"{np.abs(difference).max():.4f})")
  rows = []
  for name in full:
    difference = mixed[name] - full[name]
    rows.append({"run": record.portable_path(_WORKDIR.value), "term": name, "examples": count,
                 "bf16_minus_f32": round(float(difference.mean()), 4),
                 "stderr": round(float(difference.std(ddof=1) / np.sqrt(count)), 4)})
  for name, seconds in full_seconds.items():
    print(f"{name}: float32 {seconds:.1f} s, mixed bfloat16 {mixed_seconds[name]:.1f} s "
          f"(compilation included)")
  print("wrote", record.write("precision_numerics", "The same weights in float32 and mixed "
                              "bfloat16 (same draws; nats per example)", ("run", "term"),
                              rows))


if __name__ == "__main__":
  app.run(main)
