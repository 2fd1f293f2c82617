r"""Training throughput (examples/s; text: tokens/s) and peak RSS of VAE and Skip-VAE.

  python benchmarks/train_throughput.py --config=configs/omniglot.py --data_dir=../shared/data
  python benchmarks/train_throughput.py --config=configs/yahoo_small.py --data_dir=../shared/data
  python benchmarks/train_throughput.py --config=configs/yahoo_small.py --data_dir=../shared/data \
      --sentence_length=40
  python benchmarks/train_throughput.py --precisions=float32,mixed_bfloat16 ...
  python benchmarks/train_throughput.py --models=vae,sa_vae \
      --config.model.svi_second_order=exact ...

With several `--precisions` every model is measured in each, back to back, and the ratio to
the first precision printed (mixed bfloat16 runs without XLA on a CPU: precision.use_xla).

Text tokens are the tokens the decoder predicts (words and </s>). With --sentence_length=L
every batch holds real training sentences cut to L predicted tokens (`<s>` + L-1 words +
`</s>`), the setting the official code's reference figure was measured in; without it the
batches are the training loop's own length buckets.

Semi-amortized rows name how training differentiated through the refinement
(`second_order`, 'auto' resolved). Writes its rows to
benchmarks/results/train_throughput.json (`benchmarks/record.py`).
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

import record  # pylint: disable=g-import-not-at-top
from skip_vae_tf import config as config_lib  # pylint: disable=g-import-not-at-top

_CONFIG = config_flags.DEFINE_config_file("config", str(REPO_ROOT / "configs" / "omniglot.py"),
                                          "Config file to measure.", lock_config=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with the raw dataset files.")
_MODELS = flags.DEFINE_list("models", ["vae", "skip_vae"], "Which of vae, skip_vae, sa_vae, "
                            "skip_sa_vae to measure (sa_*: semi-amortized, the config's "
                            "model.svi_steps refinement steps).")
_WARMUP = flags.DEFINE_integer("warmup_steps", 20, "Untimed steps first.", lower_bound=1)
_WINDOWS = flags.DEFINE_integer("windows", 5, "Timed windows.", lower_bound=1)
_WINDOW_STEPS = flags.DEFINE_integer("window_steps", 20, "Steps per timed window.", lower_bound=1)
_SENTENCE_LENGTH = flags.DEFINE_integer("sentence_length", 0, "Text: cut every sentence to "
                                        "this many predicted tokens (0 = real buckets).")
_PRECISIONS = flags.DEFINE_list("precisions", ["float32"], "train.precision values to measure "
                                "each model in (skip_vae_tf/precision.py).")
_CHILD = flags.DEFINE_bool("child", False, "Internal: measure one model in this process.")


def _fixed_length_batches(trainer, length: int, count: int) -> list:
  """`count` batches of real training sentences with >= length - 1 words, cut to `length`
  predicted tokens: (batch, length + 1) int32."""
  from skip_vae_tf import vocabulary  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  corpus, size = trainer.data.train, trainer.global_batch_size
  long_enough = [i for i in range(len(corpus)) if corpus.lengths[i] >= length + 1]
  rows = corpus.padded(long_enough)[:, :length + 1].copy()
  rows[:, -1] = vocabulary.EOS_ID
  batches = [rows[(k * size) % (len(rows) - size):][:size] for k in range(count)]
  return [tf.constant(b) for b in batches]


def _tokens(batch) -> int:
  """Predicted tokens in a text batch (non-padding minus one `<s>` per sentence)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return int(tf.reduce_sum(tf.cast(batch != 0, tf.int32))) - int(batch.shape[0])


def measure(config) -> dict:
  """Times train steps of one model in this process; returns the figures."""
  from skip_vae_tf import training  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as workdir:
    trainer = training.Trainer(config, workdir)
    needed = _WARMUP.value + _WINDOWS.value * _WINDOW_STEPS.value
    is_text = config_lib.modality(config) == "text"
    if is_text and _SENTENCE_LENGTH.value:
      batches = _fixed_length_batches(trainer, _SENTENCE_LENGTH.value, needed)
    else:
      batches, epoch = [], 0
      while len(batches) < needed:
        batches.extend(trainer.strategy.experimental_distribute_dataset(
            trainer.train_input.epoch(epoch)))
        epoch += 1
    for batch in batches[:_WARMUP.value]:
      trainer.train_step(batch)
    rates, token_rates, position = [], [], _WARMUP.value
    for _ in range(_WINDOWS.value):
      window = batches[position:position + _WINDOW_STEPS.value]
      start = time.perf_counter()
      for batch in window:
        float(trainer.train_step(batch)["negative_elbo"])
      seconds = time.perf_counter() - start
      rates.append(len(window) * config.train.batch_size / seconds)
      if is_text:  # The benchmark runs on one replica (the default strategy on CPU).
        token_rates.append(sum(_tokens(b) for b in window) / seconds)
      position += _WINDOW_STEPS.value
    result = {"parameters": trainer.model.count_params(),
              "second_order": trainer.config.model.svi_second_order,  # 'auto' resolved.
              "examples_per_sec_median": statistics.median(rates),
              "examples_per_sec_windows": [round(r, 1) for r in rates],
              "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    if is_text:
      result.update(tokens_per_sec_median=statistics.median(token_rates),
                    tokens_per_sec_windows=[round(r) for r in token_rates])
    return result


def main(argv):
  del argv
  config = config_lib.resolve(_CONFIG.value, data_dir=_DATA_DIR.value)
  if _CHILD.value:
    print("RESULT " + json.dumps(measure(config)))
    return
  config_file = config_flags.get_config_filename(flags.FLAGS["config"])
  if config_lib.modality(config) == "text":
    shape = (f"LSTM {config.model.encoder_hidden} -> {config.model.decoder_hidden}, "
             f"embedding {config.model.embedding_dim}; "
             + (f"sentences cut to {_SENTENCE_LENGTH.value} tokens" if _SENTENCE_LENGTH.value
                else f"length buckets of {config.data.bucket_width}"))
  else:
    shape = (f"{len(config.model.decoder_kernel_sizes)} layers x "
             f"{config.model.decoder_channels}")
  print(f"machine: {os.cpu_count()} CPUs; config: {config_file}; "
        f"batch {config.train.batch_size}; decoder {config.model.decoder} {shape}")
  results = {}
  for model in _MODELS.value:
    for precision in _PRECISIONS.value:
      results[model, precision] = _measure_in_child(model, precision)
  first = _PRECISIONS.value[0]
  rows = []
  for (model, precision), result in results.items():
    rate = result["examples_per_sec_median"]
    row = {"config": os.path.relpath(config_file, REPO_ROOT), "model": model,
           "second_order": result["second_order"] if model.endswith("sa_vae") else "-",
           "precision": precision, "batch": config.train.batch_size,
           "sentence_length": ((_SENTENCE_LENGTH.value or "buckets")
                               if "tokens_per_sec_median" in result else "-"),
           "parameters": result["parameters"], "examples_per_sec": round(rate, 1),
           "peak_rss_gib": round(result["peak_rss_gib"], 2)}
    if "tokens_per_sec_median" in result:
      row["tokens_per_sec"] = round(result["tokens_per_sec_median"])
    if precision != first:
      ratio = rate / results[model, first]["examples_per_sec_median"]
      print(f"{model} {precision} / {first}: {ratio:.2f}x examples/s")
    base = results.get((model.replace("sa_vae", "vae"), precision))
    if model.endswith("sa_vae") and base:
      row["step_time_over_vae"] = round(base["examples_per_sec_median"] / rate, 1)
      print(f"step-time ratio {model} / {model.replace('sa_vae', 'vae')} ({precision}): "
            f"{row['step_time_over_vae']} at {config.model.svi_steps} refinement steps")
    rows.append(row)
  print("wrote", record.write(
      "train_throughput", "Training throughput (median of timed windows of real batches)",
      ("config", "model", "second_order", "precision", "sentence_length"), rows))


def _measure_in_child(model: str, precision: str) -> dict:
  """Measures `model` in `precision` in a child process; prints and returns its figures."""
  inference = "semi_amortized" if model.endswith("sa_vae") else "amortized"
  args = [sys.executable, __file__, "--child", f"--models={model}",
          *(a for a in sys.argv[1:] if not a.startswith(("--models", "--precisions"))),
          f"--config.model.skip={model.startswith('skip_')}",
          f"--config.model.inference={inference}", f"--config.train.precision={precision}"]
  out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
  result = json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:])
  tokens = (f"{result['tokens_per_sec_median']:7.0f} tokens/s (windows "
            f"{result['tokens_per_sec_windows']}), " if "tokens_per_sec_median" in result
            else "")
  print(f"{model:9s} {precision:14s} {result['parameters']:>11,d} params | {tokens}"
        f"{result['examples_per_sec_median']:7.1f} examples/s (median of "
        f"{_WINDOWS.value}x{_WINDOW_STEPS.value} steps; windows "
        f"{result['examples_per_sec_windows']}) | peak RSS {result['peak_rss_gib']:.2f} GiB",
        flush=True)
  return result


if __name__ == "__main__":
  app.run(main)
