"""Evaluating a trained run: restore its weights, run every evaluator, write the reports.

`evaluate_run` is what bin/evaluate.py calls: ELBO terms, MI, active units and KL per
dimension (`evaluators.PosteriorEvaluator`, with the linear probe where labels exist) and the
importance-weighted NLL (`evaluators.ImportanceWeightedEvaluator`).
Definitions and units: docs/metrics.md.
"""

import json
import time

from absl import logging
import ml_collections
import tensorflow as tf

from skip_vae_tf import evaluators
from skip_vae_tf import metrics
from skip_vae_tf import precision
from skip_vae_tf import tasks
from skip_vae_tf import workdir as workdir_lib
from skip_vae_tf.models import vae as vae_lib


def restore_model(workdir: workdir_lib.Workdir, checkpoint: str,
                  precision_name: str | None = None) -> tuple[
    ml_collections.ConfigDict, tasks.Task, vae_lib.VAE, str]:
  """(config, task, model, checkpoint path) of a run, with its 'best' or 'latest' weights
  (the newest intact 'latest' one when newer ones are damaged), its networks in
  `precision_name` (None: the run's train.precision; checkpoints are float32 either way)."""
  config = workdir.load_config()
  if precision_name is not None:
    config.train.precision = precision_name
  workdir.checkpoint_path(checkpoint)  # A WorkdirError naming the folder when there is none.
  task = tasks.for_config(config)
  task.restore_run_files(workdir, config)
  model = tasks.build_model(task, config)
  path = workdir_lib.restore_newest_intact(
      tf.train.Checkpoint(model=model), workdir.checkpoint_folder(checkpoint),
      workdir / workdir_lib.CONFIG_FILE, partial=True)
  return config, task, model, path


def evaluate_run(workdir: str, split: str = "test", checkpoint: str = "best",
                 iw_samples: int = 500, iw_chunk: int = 0, batch_size: int = 0,
                 data_dir: str | None = None, max_examples: int = 0,
                 num_samples: int = 0, precision_name: str | None = None,
                 jit_compile: bool = True) -> dict:
  """Every metric of docs/metrics.md for one split of a trained run.

  `batch_size` 0 means the run's train.eval_batch_size; `iw_chunk` 0 means decoder calls
  of about 500 images or 64 sentences; `max_examples` (0 = all) caps the evaluated split.
  `num_samples` > 0 adds `samples`: the first examples of the split, their decodes and
  prior samples (`tasks.summary_decodes`, as the task's `samples_record`).
  `precision_name` evaluates in another precision than the run's (`restore_model`).
  `jit_compile` compiles the passes with XLA (`precision.use_xla`), whatever the run trained
  with (evaluation's decoder passes gain from it where training steps do not).

  Writes eval_<split>.json and eval_<split>.md into `workdir` and TensorBoard scalars
  under `eval/<split>/` in workdir/eval; returns the json content.
  """
  run = workdir_lib.Workdir(workdir)
  run.claim()
  try:
    run.check_writable()  # Before the work, not when the reports are written.
    return _evaluate(run, split, checkpoint, iw_samples, iw_chunk, batch_size, data_dir,
                     max_examples, num_samples, precision_name, jit_compile)
  finally:
    run.release()


def _evaluate(run: workdir_lib.Workdir, split: str, checkpoint: str, iw_samples: int,
              iw_chunk: int, batch_size: int, data_dir: str | None, max_examples: int,
              num_samples: int, precision_name: str | None, jit_compile: bool) -> dict:
  config, task, model, path = restore_model(run, checkpoint, precision_name)
  if data_dir is not None:
    config.data.data_dir = data_dir
  if max_examples:
    config.data["max_train_examples" if split == "train" else "max_eval_examples"] = max_examples
  batch_size = batch_size or config.train.eval_batch_size
  data = task.load_data(config.data, config.seed)
  logging.info("Evaluating %s (%s) on %d %s examples", path, config.model.decoder,
               data.num_examples(split), split)
  use_xla = precision.use_xla(config.train, jit_compile)
  chosen = [evaluators.PosteriorEvaluator(model, tf.distribute.get_strategy(), batch_size,
                                          config.train.mi_minibatch_size, use_xla,
                                          linear_probe=True)]
  if iw_samples:
    chosen.append(evaluators.ImportanceWeightedEvaluator(
        model, iw_samples, iw_chunk or max(1, task.iw_examples_per_call // batch_size),
        batch_size, seed=config.seed, progress_every=10, jit_compile=use_xla))
  start = time.time()
  scalars, kl_per_dim = evaluators.collect(chosen, data, split, task)
  result = {"workdir": str(run.path), "checkpoint": path, "split": split,
            "num_examples": data.num_examples(split), "dataset": config.data.name,
            "data_source": data.source, "seed": config.seed, "skip": bool(config.model.skip),
            "iw_samples": iw_samples, "precision": config.train.precision,
            "metrics": scalars,
            "kl_per_dim": kl_per_dim.tolist(), "seconds": round(time.time() - start, 1),
            "units": task.units_note(config)}
  if num_samples:
    decodes = tasks.summary_decodes(tf.function(model.reconstruct_and_sample), data, split,
                                    num_samples, config.seed)
    result["samples"] = task.samples_record(*decodes)
  _write_reports(run, split, result)
  return result


def markdown_table(result: dict) -> str:
  """The metrics of an `evaluate_run` result as a Markdown table."""
  lines = [f"Evaluation of `{result['checkpoint']}` on {result['num_examples']} "
           f"{result['split']} examples ({result['dataset']}, skip={result['skip']}); "
           f"{result['units']}.", "",
           "| metric | value |", "|---|---|"]
  lines += [f"| {name} | {value:.4f} |" if isinstance(value, float) else f"| {name} | {value} |"
            for name, value in result["metrics"].items()]
  return "\n".join(lines + ["", metrics.MI_NOTE]) + "\n"


def _write_reports(run: workdir_lib.Workdir, split: str, result: dict) -> None:
  run.write_text(f"eval_{split}.json", json.dumps(result, indent=2))
  run.write_text(f"eval_{split}.md", markdown_table(result))
  writer = run.summary_writer(workdir_lib.EVAL_LOGS)
  with writer.as_default(step=workdir_lib.checkpoint_step(result["checkpoint"])):
    for name, value in result["metrics"].items():
      tf.summary.scalar(f"eval/{split}/{name}", value)
    tf.summary.histogram(f"eval/{split}/kl_per_dim", result["kl_per_dim"])
  writer.flush()
