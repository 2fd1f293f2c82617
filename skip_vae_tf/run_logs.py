"""Where a training run's figures go: TensorBoard (WORKDIR/train, validation and
validation_subset), the chief's metrics.jsonl, and the image or sentence summaries.

Only the chief writes; other workers get no-op writers. The periodic in-epoch check
(train.check_every_steps) also lives here: the latent metrics of a fixed validation subset.
"""

import functools
import json
import math

from absl import logging
import numpy as np
import tensorflow as tf

from skip_vae_tf import evaluators
from skip_vae_tf import metrics
from skip_vae_tf import progress
from skip_vae_tf import summaries
from skip_vae_tf import tasks
from skip_vae_tf import workdir as workdir_lib


class RunLogs:
  """The writers of one run and what it records at each log line, check and validation.

  Args:
    workdir: the run's `workdir.Workdir`.
    is_chief: whether this worker writes (others get no-op writers).
    task, data, model: the trainer's.
    evaluator: the trainer's `evaluators.PosteriorEvaluator`.
    config: the run's config.
  """

  def __init__(self, workdir: workdir_lib.Workdir, is_chief: bool, task, data, model,
               evaluator: evaluators.PosteriorEvaluator, config):
    self.workdir, self.is_chief, self.task, self.data = workdir, is_chief, task, data
    self.evaluator, self.config = evaluator, config
    self.writers = {name: (workdir.summary_writer(name) if is_chief
                           else tf.summary.create_noop_writer())
                    for name in (workdir_lib.TRAIN_LOGS, workdir_lib.VALIDATION_LOGS,
                                 workdir_lib.CHECK_LOGS)}
    self._reconstruct_and_sample = tf.function(model.reconstruct_and_sample)

  def start(self, step: int, model, total_steps: int, steps_per_epoch: int,
            replicas: int) -> None:
    """The opening lines of a run (from `step`), and on a new run (step 0) its
    hyperparameters, data source and config as TensorBoard text."""
    if step == 0 and self.is_chief:
      summaries.write_run_info(self.workdir.summary_writer(),
                               tasks.hparams(self.task, self.config),
                               {"data_source": self.data.source,
                                "config": "```\n" + self.config.to_json_best_effort(indent=2)
                                          + "\n```"})
    logging.info("Data: %s", self.data.source)
    logging.info(metrics.MI_NOTE)
    logging.info("%s: %d parameters; %d steps of batch %d (%d per epoch) on %d replica(s)",
                 model.name, model.count_params(), total_steps, self.config.train.batch_size,
                 steps_per_epoch, replicas)

  def progress(self, step: int, window: progress.Window, total_steps: int,
               steps_per_epoch: int, counters: dict[str, float]) -> None:
    """A log line: the `window`'s means and rates with the loop's `counters` (KL weight,
    learning rate, skipped steps) as train scalars, and a progress line with its ETA."""
    scalars = self.task.derived_scalars(window.means())
    scalars.update(window.rates(), **counters)
    self.train(step, scalars)
    rate = scalars.get("examples_per_sec", 0.0)
    eta = (total_steps - step) * self.config.train.batch_size / rate if rate else math.inf
    epoch = (step - 1) // steps_per_epoch + 1
    logging.info(progress.format_line(step, total_steps, epoch, scalars, eta))

  def final(self, result: dict) -> None:
    """The run's final metrics (`Trainer` result) into metrics.json (chief) and the log."""
    if self.is_chief:
      self.workdir.write_text(workdir_lib.METRICS_FILE, json.dumps(result, indent=2))
    logging.info("test at best checkpoint: %s; wrote %s",
                 ", ".join(f"{k} {v:.4g}" for k, v in result["test"].items()),
                 self.workdir / workdir_lib.METRICS_FILE)

  def train(self, step: int, scalars: dict[str, float]) -> None:
    """A log line's train scalars."""
    summaries.write_scalars(self.writers[workdir_lib.TRAIN_LOGS], scalars, step)
    if self.is_chief:
      self.workdir.append_scalars(workdir_lib.TRAIN_LOGS, step, scalars)

  def evaluation(self, split: str, step: int, scalars: dict[str, float],
                 kl_per_dim: np.ndarray) -> None:
    """Evaluation scalars and KL per dimension of `split` (VALIDATION_LOGS or CHECK_LOGS)
    to TensorBoard and (chief) metrics.jsonl."""
    writer = self.writers[split]
    summaries.write_scalars(writer, scalars, step)
    summaries.write_kl_per_dim(writer, kl_per_dim, step)
    if self.is_chief:
      self.workdir.append_scalars(split, step, {**scalars, "kl_per_dim": kl_per_dim.tolist()})

  def samples(self, split: str, step: int) -> None:
    """Validation examples beside their decodes, and prior samples, into `split`'s logs."""
    count = self.config.train.num_logged_samples
    if not count:
      return
    decodes = tasks.summary_decodes(self._reconstruct_and_sample, self.data, "validation",
                                    count, self.config.seed)
    self.task.write_samples(self.writers[split], *decodes, step)

  def check(self, step: int) -> None:
    """The periodic in-epoch check: latent metrics of a fixed validation subset, and
    images every train.check_images_every_steps."""
    scalars, kl_per_dim = evaluators.summarize(
        self.evaluator.run_on_examples(self._check_examples), self.task)
    self.evaluation(workdir_lib.CHECK_LOGS, step, scalars, kl_per_dim)
    if progress.is_time(step, self.config.train.check_images_every_steps):
      self.samples(workdir_lib.CHECK_LOGS, step)
    logging.info("check at step %d on %d validation examples: kl %.4g, mi_aggregate %.4g, "
                 "active_units_cov_ge_0.01 %d", step, len(self._check_examples),
                 scalars["kl"], scalars["mi_aggregate"], scalars["active_units_cov_ge_0.01"])

  @functools.cached_property
  def _check_examples(self) -> np.ndarray:
    """The fixed validation subset of the periodic check (model inputs)."""
    return self.data.first_examples("validation", self.config.train.check_examples)
