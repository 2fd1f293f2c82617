r"""Training throughput (examples/s) and peak RSS of VAE and Skip-VAE for a config.

  python benchmarks/train_throughput.py --config=configs/omniglot.py --data_dir=../shared/data

Runs `--warmup_steps` steps, then `--windows` timed windows of `--window_steps` steps on real
training batches, and prints the median and spread of examples/s per model. Each model is
measured in its own process, so peak RSS (ru_maxrss) is per model.
"""

import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
from ml_collections import config_flags

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from skip_vae_tf import config as config_lib  # pylint: disable=g-import-not-at-top

_CONFIG = config_flags.DEFINE_config_file("config", str(REPO_ROOT / "configs" / "omniglot.py"),
                                          "Config file to measure.", lock_config=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with the raw dataset files.")
_MODELS = flags.DEFINE_list("models", ["vae", "skip_vae"], "Which of vae, skip_vae to measure.")
_WARMUP = flags.DEFINE_integer("warmup_steps", 20, "Untimed steps first.", lower_bound=1)
_WINDOWS = flags.DEFINE_integer("windows", 5, "Timed windows.", lower_bound=1)
_WINDOW_STEPS = flags.DEFINE_integer("window_steps", 20, "Steps per timed window.", lower_bound=1)
_CHILD = flags.DEFINE_bool("child", False, "Internal: measure one model in this process.")


def measure(config) -> dict:
  """Times train steps of one model in this process; returns the figures."""
  from skip_vae_tf import training  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as workdir:
    trainer = training.Trainer(config, workdir)
    needed = _WARMUP.value + _WINDOWS.value * _WINDOW_STEPS.value
    batches, epoch = [], 0
    while len(batches) < needed:
      batches.extend(trainer.strategy.experimental_distribute_dataset(
          trainer.train_input.epoch(epoch)))
      epoch += 1
    for batch in batches[:_WARMUP.value]:
      trainer.train_step(batch)
    rates, position = [], _WARMUP.value
    for _ in range(_WINDOWS.value):
      start = time.perf_counter()
      for batch in batches[position:position + _WINDOW_STEPS.value]:
        float(trainer.train_step(batch)["negative_elbo"])
      rates.append(_WINDOW_STEPS.value * config.train.batch_size / (time.perf_counter() - start))
      position += _WINDOW_STEPS.value
    return {"parameters": trainer.model.count_params(),
            "examples_per_sec_median": statistics.median(rates),
            "examples_per_sec_windows": [round(r, 1) for r in rates],
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main(argv):
  del argv
  config = config_lib.resolve(_CONFIG.value, data_dir=_DATA_DIR.value)
  if _CHILD.value:
    print("RESULT " + json.dumps(measure(config)))
    return
  config_file = config_flags.get_config_filename(flags.FLAGS["config"])
  print(f"machine: {os.cpu_count()} CPUs; config: {config_file}; "
        f"batch {config.train.batch_size}; decoder {config.model.decoder} "
        f"{len(config.model.decoder_kernel_sizes)} layers x {config.model.decoder_channels}")
  for model in _MODELS.value:
    args = [sys.executable, __file__, "--child", f"--models={model}",
            *(a for a in sys.argv[1:] if not a.startswith("--models")),
            f"--config.model.skip={model == 'skip_vae'}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    result = json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:])
    print(f"{model:9s} {result['parameters']:>9,d} params | "
          f"{result['examples_per_sec_median']:7.1f} examples/s (median of "
          f"{_WINDOWS.value}x{_WINDOW_STEPS.value} steps; windows "
          f"{result['examples_per_sec_windows']}) | peak RSS {result['peak_rss_gib']:.2f} GiB")


if __name__ == "__main__":
  app.run(main)
