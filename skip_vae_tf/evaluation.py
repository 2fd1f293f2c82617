"""Evaluating a trained run: restore its weights, run every evaluator, write the reports.

`evaluate_run` is what bin/evaluate.py calls: the evaluators the run's `config.evals`
declares (`eval_registry`; by default ELBO terms, MI, active units and KL per dimension, the
linear probe where labels exist, and the importance-weighted NLL).
Definitions and units: docs/metrics.md.
"""

import dataclasses
import json
import time

from absl import logging
import ml_collections
import tensorflow as tf

from skip_vae_tf import eval_registry
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


@dataclasses.dataclass(frozen=True)
class EvaluationRequest:
  """What to evaluate and how.

  split, checkpoint: the split and the run's 'best' or 'latest' weights.
  iw_samples, iw_chunk: K and samples per decoder call of the run's `evals.iw_nll` entry
    (None = the run's config; iw_samples 0 drops the entry).
  batch_size: examples per batch (0 = the run's train.eval_batch_size).
  data_dir: the raw data folder (None = the run's).
  max_examples: evaluate the first N examples of the split (0 = all).
  num_samples: > 0 adds `samples`: the first examples of the split, their decodes and
    prior samples (`tasks.summary_decodes`, as the task's `samples_record`).
  precision_name: evaluate in another precision than the run's (`restore_model`).
  jit_compile: compile the passes with XLA (`precision.use_xla`), whatever the run trained
    with (evaluation's decoder passes gain from it where training steps do not).
  """
  split: str = "test"
  checkpoint: str = "best"
  iw_samples: int | None = None
  iw_chunk: int | None = None
  batch_size: int = 0
  data_dir: str | None = None
  max_examples: int = 0
  num_samples: int = 0
  precision_name: str | None = None
  jit_compile: bool = True


def evaluate_run(workdir: str, request: EvaluationRequest = EvaluationRequest()) -> dict:
  """Every metric of the run's `config.evals` (docs/metrics.md) for one split of a trained
  run.

  Writes eval_<split>.json and eval_<split>.md into `workdir` and TensorBoard scalars
  under `eval/<split>/` in workdir/eval; returns the json content.
  """
  run = workdir_lib.Workdir(workdir)
  run.claim()
  try:
    run.check_writable()  # Before the work, not when the reports are written.
    return _evaluate(run, request)
  finally:
    run.release()


def _apply_request(config: ml_collections.ConfigDict, request: EvaluationRequest) -> None:
  """The request's data and importance-sampling settings in the run's config."""
  if request.data_dir is not None:
    config.data.data_dir = request.data_dir
  if request.max_examples:
    key = "max_train_examples" if request.split == "train" else "max_eval_examples"
    config.data[key] = request.max_examples
  if request.iw_samples == 0:
    del config.evals["iw_nll"]
  elif request.iw_samples is not None:
    config.evals.iw_nll.num_samples = request.iw_samples
  if request.iw_chunk is not None and "iw_nll" in config.evals:
    config.evals.iw_nll.chunk = request.iw_chunk


def _evaluate(run: workdir_lib.Workdir, request: EvaluationRequest) -> dict:
  config, task, model, path = restore_model(run, request.checkpoint, request.precision_name)
  _apply_request(config, request)
  split = request.split
  batch_size = request.batch_size or config.train.eval_batch_size
  data = task.load_data(config.data, config.seed)
  logging.info("Evaluating %s (%s) on %d %s examples", path, config.model.decoder,
               data.num_examples(split), split)
  context = eval_registry.EvalContext(
      model, tf.distribute.get_strategy(), task, config, batch_size,
      precision.use_xla(config.train, request.jit_compile), progress=True)
  start = time.time()
  scalars, kl_per_dim = evaluators.collect(eval_registry.build(config.evals, context), data,
                                           split, task)
  iw_entry = config.evals.get("iw_nll")
  result = {"workdir": str(run.path), "checkpoint": path, "split": split,
            "num_examples": data.num_examples(split), "dataset": config.data.name,
            "data_source": data.source, "seed": config.seed, "skip": bool(config.model.skip),
            "iw_samples": iw_entry.num_samples if iw_entry else 0,
            "precision": config.train.precision, "metrics": scalars,
            "kl_per_dim": kl_per_dim.tolist(), "seconds": round(time.time() - start, 1),
            "units": task.units_note(config)}
  if request.num_samples:
    decodes = tasks.summary_decodes(tf.function(model.reconstruct_and_sample), data, split,
                                    request.num_samples, config.seed)
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
