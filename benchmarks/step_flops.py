r"""Floating-point operations of one training step (forward and backward), counted from the
step's TF graph (the TF profiler's float_operation count: convolutions, matrix products and
their gradients), and an estimate of a paper-budget run's cost on a GPU from it.

  python benchmarks/step_flops.py --config=configs/omniglot.py

Image models only: the profiler does not count operations inside graph loops, which is
where the text LSTMs compute. Semi-amortized models' refinement steps are unrolled in the
graph, so they are counted, with the second order training takes in float32
(`model.svi_second_order`; override it with --config.model.svi_second_order=exact).
Writes benchmarks/results/step_flops.json (`benchmarks/record.py`).
"""

import os
import pathlib
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
import record  # pylint: disable=g-import-not-at-top,wrong-import-position

_CONFIG = config_flags.DEFINE_config_file("config", str(REPO_ROOT / "configs" / "omniglot.py"),
                                          "Config file to count.", lock_config=True)
_MODELS = flags.DEFINE_list("models", ["vae", "skip_vae", "sa_vae", "skip_sa_vae"],
                            "Models to count.")


def count(config) -> float:
  """GFLOP of one training step of `config`'s model on a batch of zeros."""
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from tensorflow.python.profiler import model_analyzer
  from tensorflow.python.profiler import option_builder
  from skip_vae_tf import tasks
  task = tasks.for_config(config)
  model = tasks.build_model(task, config)
  batch = config.train.batch_size
  spec = tf.TensorSpec([batch, *task.image_shape], tf.float32)

  def step(x):  # The training step's terms and gradients, as the model computes them.
    return model.terms_and_gradients(x, tf.constant(1.0), 1.0 / batch)[1]
  graph = tf.function(step).get_concrete_function(spec).graph
  options = option_builder.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  return model_analyzer.profile(graph, options=options).total_float_ops / 1e9


def main(argv):
  del argv
  from skip_vae_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  if config_lib.modality(_CONFIG.value) != "image":
    raise app.UsageError("step_flops.py counts image models only (see its docstring)")
  rows = []
  for model in _MODELS.value:
    config = config_lib.resolve(_CONFIG.value, overrides={
        "model.skip": model.startswith("skip_"),
        "model.inference": "semi_amortized" if model.endswith("sa_vae") else "amortized",
        "train.precision": "float32"})
    config_lib.resolve_svi_second_order(config)
    gflop = count(config)
    print(f"{model:12s} {gflop:10.1f} GFLOP per step of {config.train.batch_size}", flush=True)
    rows.append({"config": os.path.relpath(config_flags.get_config_filename(
                     flags.FLAGS["config"]), REPO_ROOT),
                 "model": model,
                 "second_order": (config.model.svi_second_order if model.endswith("sa_vae")
                                  else "-"),
                 "batch": config.train.batch_size,
                 "gflop_per_step": round(gflop, 1)})
  print("wrote", record.write("step_flops", "Floating-point operations of one training step "
                              "(forward and backward, float32, counted in the graph)",
                              ("config", "model", "second_order"), rows))


if __name__ == "__main__":
  app.run(main)
