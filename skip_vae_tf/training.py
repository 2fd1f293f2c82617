"""The training loop: distributed steps, periodic validation, checkpoints, summaries.

One code path for one device, several (MirroredStrategy) and several hosts
(MultiWorkerMirroredStrategy): `skip_vae_tf.distribute`; the compiled steps are
`skip_vae_tf.steps`'. A step whose gradient norm is not finite applies no update and is
counted. SIGTERM/SIGINT stop the loop at the next step boundary after a checkpoint
(`TrainingInterrupted`). The KL weight is a tf.Variable set before each step from the
warm-up schedule. The run directory is `skip_vae_tf.workdir`'s; what differs between
images and text is the task's (`skip_vae_tf.tasks`).
"""

import math
import os
import time

from absl import logging
import keras
import ml_collections
import numpy as np
import tensorflow as tf

from skip_vae_tf import distribute
from skip_vae_tf import errors
from skip_vae_tf import eval_registry
from skip_vae_tf import evaluators
from skip_vae_tf import nonfinite
from skip_vae_tf import objectives
from skip_vae_tf import precision
from skip_vae_tf import prepare
from skip_vae_tf import progress
from skip_vae_tf import run_logs
from skip_vae_tf import steps
from skip_vae_tf import stop_signals
from skip_vae_tf import tasks
from skip_vae_tf import train_state
from skip_vae_tf import update_schedules
from skip_vae_tf import workdir as workdir_lib


NonFiniteLossError = nonfinite.NonFiniteLossError


class TrainingInterrupted(errors.SkipVaeError):
  """SIGTERM or SIGINT stopped the run after writing a checkpoint; `signal_number` says
  which (a binary exits with 128 + signal_number, as a shell does)."""
  label = "stopped"

  def __init__(self, message: str, signal_number: int):
    super().__init__(message)
    self.signal_number = signal_number
    self.exit_code = 128 + signal_number


def _drop_tensorflow_info(record) -> bool:
  """Logging filter: TF logs INFO lines per checkpoint save and per collective; drop those."""
  return record.levelno > 20 or f"{os.sep}tensorflow{os.sep}" not in record.pathname


class Trainer:
  """The model, optimizer, strategy and state of one training run in `workdir`.

  `data` (optional) is an in-memory dataset with the interface of
  `skip_vae_tf.data.datasets` (e.g. an `ImageDataset` of arrays); by default the config's
  data section is loaded.
  """

  def __init__(self, config: ml_collections.ConfigDict, workdir: str, data=None,
               allow_foreign_workdir: bool = False):
    # The strategy comes first: multi-worker collectives must be configured before any
    # TF op (data loading included) starts the runtime.
    self.strategy = distribute.make_strategy(config.train.strategy)
    run = prepare.prepare_run(config, data)
    self.config, self.task, self.data = config, run.task, run.data
    self.workdir = workdir_lib.Workdir(workdir)
    logging.get_absl_logger().addFilter(_drop_tensorflow_info)
    # Only the chief writes the run's files; other workers write their (identical)
    # checkpoints to a private folder and no summaries.
    self.is_chief = distribute.is_chief(self.strategy)
    self.global_batch_size = config.train.batch_size
    self.train_input = prepare.training_batches(config, self.data,
                                                self.strategy.num_replicas_in_sync)
    # Only once data and sizes are good: a failed start leaves nothing. The chief claims
    # the run (one process per workdir); other workers share the chief's folder.
    self.workdir.prepare(allow_foreign_workdir, claim=self.is_chief)
    try:
      self._start()
    except BaseException:
      self.workdir.release()  # A long-lived process (a study) may use the run next.
      raise

  def _start(self) -> None:
    """config.json and the run files, seeds, step counts, and the state."""
    config = self.config
    self.workdir.check_config(config, write=self.is_chief)
    if self.is_chief:
      self.task.write_run_files(self.workdir, self.data)
    keras.utils.set_random_seed(config.seed)
    if config.train.deterministic:
      tf.config.experimental.enable_op_determinism()
    self.steps_per_epoch = self.train_input.steps_per_epoch
    self.total_steps = prepare.total_steps(config.train, self.steps_per_epoch)
    self._build_state()

  def _build_state(self) -> None:
    """Model, optimizer, checkpointed state, the step and its update schedule, evaluators
    and writers."""
    config = self.config
    with self.strategy.scope():
      self.model = tasks.build_model(self.task, config)
      self.optimizer = steps.make_optimizer(config.train)
      self.optimizer.build(self.model.trainable_variables)
    self.state = train_state.TrainState(self.strategy, self.model, self.optimizer)
    self.train_step = steps.GuardedStep(self.model, *steps.make_train_step(
        self.model, self.optimizer, self.strategy, self.state.kl_weight,
        self.global_batch_size, config.train.grad_clip_norm, precision.use_xla(config.train),
        objectives.loss_for_config(config.train)), self.state.skipped_steps)
    self.updates = update_schedules.for_config(
        config.train, self.train_step, self.model, self.optimizer, self.strategy,
        self.train_input, self.state.kl_weight)
    self.state.track(self.updates.checkpointed())
    write_dir = self.workdir.path
    if not self.is_chief:
      write_dir = self.workdir.clear_worker_dir(distribute.task_id(self.strategy))
    self.state.write_to(write_dir, config.train.checkpoints_to_keep)
    self.evaluators = eval_registry.build(config.evals, eval_registry.EvalContext(
        self.model, self.strategy, self.task, config, config.train.eval_batch_size,
        precision.use_xla(config.train)), during_training=True)
    posterior = next(e for e in self.evaluators
                     if isinstance(e, evaluators.PosteriorEvaluator))
    self.logs = run_logs.RunLogs(self.workdir, self.is_chief, self.task, self.data,
                                 self.model, posterior, config)
    self.nonfinite = nonfinite.ConsecutiveNonFinite(config)
    # Workers' clocks differ, and every worker must take part in every save.
    self.checkpoint_interval = progress.Interval(
        config.train.checkpoint_every_minutes if distribute.cluster_size() <= 1 else 0.0)

  def evaluate(self, split: str) -> tuple[dict[str, float], np.ndarray]:
    """The training evaluators' metrics of a split: (scalars, KL per dim)."""
    return evaluators.collect(self.evaluators, self.data, split, self.task)

  def _validate(self, step: int) -> None:
    start = time.time()
    scalars, kl_per_dim = self.evaluate("validation")
    self.logs.evaluation(workdir_lib.VALIDATION_LOGS, step, scalars, kl_per_dim)
    self.updates.after_validation(scalars, step)
    self.logs.samples(workdir_lib.VALIDATION_LOGS, step)
    logging.info("validation at step %d: %s (%.1fs)", step,
                 ", ".join(f"{k} {v:.4g}" for k, v in scalars.items()), time.time() - start)
    improved = self.state.save_if_best(step, scalars["negative_elbo"])
    if improved:
      logging.info("new best validation negative_elbo %.4f: saved %s",
                   scalars["negative_elbo"], self.state.best.latest_checkpoint)
    self.state.adapt_learning_rate(improved, -(-step // self.steps_per_epoch),
                                   self.config.train)

  def _log_progress(self, step: int, window: progress.Window) -> None:
    self.logs.progress(step, window, self.total_steps, self.steps_per_epoch, {
        "kl_weight": float(self.state.kl_weight.numpy()),
        "learning_rate": float(self.optimizer.learning_rate.numpy()),
        "skipped_steps": float(self.state.skipped_steps.numpy())})

  def _after_step(self, step: int, window: progress.Window,
                  stop: stop_signals.StopRequests) -> None:
    """Logging, validation, checkpoint and stop request, each when due."""
    config = self.config.train
    if progress.is_time(step, config.log_every_steps, self.total_steps):
      self._log_progress(step, window)
      window.reset()
    validation_due = progress.is_time(step, self.steps_per_epoch * config.eval_every_epochs,
                                      self.total_steps)
    if validation_due:
      # Before the checkpoint of this step: a run killed during validation resumes from
      # the previous checkpoint and validates again, as an uninterrupted run did.
      self._validate(step)
      window.exclude_from_rate()
    elif progress.is_time(step, config.check_every_steps):
      self.logs.check(step)
      window.exclude_from_rate()
    if (validation_due or progress.is_time(step, config.checkpoint_every_steps)
        or self.checkpoint_interval.due()):
      self.state.save_latest(step)
      self.checkpoint_interval.restart()
    if stop.requested:
      self._stop(stop, step)

  def _restore(self) -> int:
    latest = self.state.restore_newest(self.workdir)
    if latest is None:
      logging.info("Starting a new run in %s", self.workdir.path)
      return 0
    step = int(self.state.step.numpy())
    logging.info("Resumed from step %d (epoch %d, checkpoint %s)", step,
                 step // self.steps_per_epoch + 1, latest)
    return step

  def train(self) -> dict:
    """Trains to `total_steps` (resuming if the workdir holds a checkpoint); returns metrics.

    Raises:
      TrainingInterrupted: SIGTERM/SIGINT arrived; a checkpoint of the last finished step
        was written first.
    """
    try:
      with stop_signals.StopRequests() as stop:
        return self._train(stop)
    finally:
      if not self.is_chief:
        self.workdir.clear_worker_dir(distribute.task_id(self.strategy))
      self.workdir.release()

  def _stop(self, stop: stop_signals.StopRequests, step: int) -> None:
    self.state.ensure_saved(step)
    raise TrainingInterrupted(
        f"{stop.signal_name} received: saved {self.state.latest.latest_checkpoint} at step "
        f"{step}; run the same command to resume", stop.signal_number)

  def _train(self, stop: stop_signals.StopRequests) -> dict:
    step = self._restore()
    self.checkpoint_interval.restart()
    self.logs.start(step, self.model, self.total_steps, self.steps_per_epoch,
                    self.strategy.num_replicas_in_sync)
    window, first_step, config = progress.Window(), step + 1, self.config.train
    while step < self.total_steps and not self.state.lr_exhausted(self.config.train):
      epoch, offset = divmod(step, self.steps_per_epoch)
      for batch in distribute.distribute(self.strategy,
                                         self.train_input.epoch(epoch, skip_batches=offset)):
        self.state.kl_weight.assign(objectives.kl_weight(step, self.steps_per_epoch,
                                                   self.total_steps, config))
        result = self.updates.step(batch)
        step += 1
        self.state.step.assign(step)
        stats = {k: float(v) for k, v in result.items() if k != "finite"}
        window.add(stats, self.global_batch_size)
        if step == first_step:  # Tracing and compilation: not part of the rate.
          window.exclude_from_rate()
        self.nonfinite.add(bool(result["finite"]), step, self.state.last_good_checkpoints)
        self._after_step(step, window, stop)
        if step >= self.total_steps or self.state.lr_exhausted(self.config.train):
          break
    return self._final_metrics(step)

  def _final_metrics(self, step: int) -> dict:
    """Validation and test metrics of the best checkpoint, written to metrics.json."""
    self.state.ensure_saved(step)
    # Decided on a value every worker holds, so that all run the same collectives.
    if not math.isfinite(float(self.state.best_validation.numpy())):
      self._validate(step)
    best = self.state.best_checkpoint(self.workdir)
    self.state.checkpoint.restore(best).assert_existing_objects_matched()
    result = {"dataset": self.config.data.name, "data_source": self.data.source,
              "seed": self.config.seed, "skip": bool(self.config.model.skip), "steps": step,
              "best_checkpoint": best}
    for split in ("validation", "test"):
      result[split], kl_per_dim = self.evaluate(split)
      result[f"{split}_kl_per_dim"] = kl_per_dim.tolist()
    result["units"] = self.task.units_note(self.config)
    self.state.checkpoint.restore(self.state.latest.latest_checkpoint)
    logging.info("weights fingerprint at step %d: %s", step,
                 distribute.weights_fingerprint(self.model))
    self.logs.final(result)
    return result


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, data=None,
                       allow_foreign_workdir: bool = False) -> dict:
  """Trains (or resumes) the run in `workdir` and returns the final metrics. `data`: an
  optional in-memory dataset in place of the config's; `allow_foreign_workdir`: write into
  a non-empty folder that holds no run (see `Trainer`, `Workdir.prepare`)."""
  return Trainer(config, workdir, data, allow_foreign_workdir).train()
