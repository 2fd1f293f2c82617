"""The training loop: distributed steps, periodic validation, checkpoints, summaries.

One code path for one device, several (MirroredStrategy) and several hosts
(MultiWorkerMirroredStrategy): `skip_vae_tf.distribute`; the compiled steps are
`skip_vae_tf.steps`'. A step whose gradient norm is not finite applies no update and is
counted. SIGTERM/SIGINT stop the loop at the next step boundary after a checkpoint
(`TrainingInterrupted`). The KL weight is a tf.Variable set before each step from the
warm-up schedule. The run directory is `skip_vae_tf.workdir`'s; what differs between
images and text is the task's (`skip_vae_tf.tasks`).
"""

import json
import math
import os
import time

from absl import logging
import keras
import ml_collections
import numpy as np
import tensorflow as tf

from skip_vae_tf import aggressive
from skip_vae_tf import config as config_lib
from skip_vae_tf import distribute
from skip_vae_tf import errors
from skip_vae_tf import evaluators
from skip_vae_tf import metrics
from skip_vae_tf import nonfinite
from skip_vae_tf import objectives
from skip_vae_tf import precision
from skip_vae_tf import prepare
from skip_vae_tf import progress
from skip_vae_tf import run_logs
from skip_vae_tf import steps
from skip_vae_tf import stop_signals
from skip_vae_tf import summaries
from skip_vae_tf import tasks
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
    if self.global_batch_size % self.strategy.num_replicas_in_sync:
      raise config_lib.ConfigError(
          f"train.batch_size={self.global_batch_size} is not divisible by the "
          f"{self.strategy.num_replicas_in_sync} replicas")
    try:
      self.train_input = self.data.training_batches(config.train.batch_size, config.seed)
    except ValueError as error:  # A batch larger than the training split.
      raise config_lib.ConfigError(f"train.batch_size={config.train.batch_size}: {error}")
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
    total = config.train.epochs * self.steps_per_epoch
    self.total_steps = min(total, config.train.max_steps) if config.train.max_steps else total
    self._build_state()

  def _build_state(self) -> None:
    """Model, optimizer, checkpointed counters, checkpoint managers, writers, steps."""
    config = self.config
    with self.strategy.scope():
      self.model = tasks.build_model(self.task, config)
      self.optimizer = steps.make_optimizer(config.train)
      self.optimizer.build(self.model.trainable_variables)
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
      self.kl_weight = tf.Variable(1.0, trainable=False, name="kl_weight")
      self.best_validation = tf.Variable(math.inf, trainable=False, name="best_validation")
      self.skipped_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps")
      self.lr_decaying = tf.Variable(False, trainable=False, name="lr_decaying")
    state = dict(model=self.model, optimizer=self.optimizer, step=self.step,
                 kl_weight=self.kl_weight, best_validation=self.best_validation,
                 skipped_steps=self.skipped_steps, lr_decaying=self.lr_decaying)
    self.aggressive = None  # He et al.'s aggressive training, when the config asks for it.
    if config.train.aggressive:
      self.aggressive = aggressive.AggressiveTraining(
          self.model, self.optimizer, self.strategy, config.train, self.train_step,
          self.train_input, self.kl_weight)
      state.update(self.aggressive.checkpointed())
    self.checkpoint = tf.train.Checkpoint(**state)
    write_dir = self.workdir.path
    if not self.is_chief:
      write_dir = self.workdir.clear_worker_dir(distribute.task_id(self.strategy))
    self.latest_manager, self.best_manager = workdir_lib.checkpoint_managers(
        self.checkpoint, write_dir, config.train.checkpoints_to_keep)
    self._gradient_step, self._apply_step = steps.make_train_step(
        self.model, self.optimizer, self.strategy, self.kl_weight, self.global_batch_size,
        config.train.grad_clip_norm, precision.use_xla(config.train),
        objectives.loss_for_config(config.train))
    self._moving_statistics = [v for v in self.model.non_trainable_variables
                               if v.dtype in ("float32", "float64")]
    self.evaluator = evaluators.PosteriorEvaluator(
        self.model, self.strategy, config.train.eval_batch_size,
        config.train.mi_minibatch_size, precision.use_xla(config.train))
    self.logs = run_logs.RunLogs(self.workdir, self.is_chief, self.task, self.data,
                                 self.model, self.evaluator, config)
    self.nonfinite = nonfinite.ConsecutiveNonFinite(config)

  def _last_good_checkpoints(self) -> str:
    return (f"the last good checkpoint is "
            f"{workdir_lib.named(self.latest_manager.latest_checkpoint)}, the best validation "
            f"checkpoint {workdir_lib.named(self.best_manager.latest_checkpoint)}")

  def train_step(self, batch, apply_step=None) -> dict[str, tf.Tensor]:
    """One step on a distributed global batch; the update is skipped if not finite.
    `apply_step` (default: all variables) applies the gradients.

    Returns the mean negative ELBO, reconstruction NLL and KL over the batch (nats per
    example), the minibatch MI estimate, the gradient norm before clipping, and `finite`.
    A skipped step adds one to `skipped_steps` (checkpointed, logged as a train scalar) and
    leaves the weights, optimizer state and batch-norm statistics as they were.
    """
    # Batch-norm moving statistics change in the forward pass itself: a skipped step must
    # put them back, or one NaN batch poisons every later evaluation and checkpoint.
    statistics = [tf.identity(v.value) for v in self._moving_statistics]
    stats, grads = self._gradient_step(batch)
    if bool(stats["finite"]):
      (apply_step or self._apply_step)(grads)
    else:
      self.skipped_steps.assign_add(1)
      for variable, value in zip(self._moving_statistics, statistics):
        variable.assign(value)
    return stats

  def evaluate(self, split: str) -> tuple[dict[str, float], np.ndarray]:
    """The posterior evaluator's metrics of a split: (scalars, KL per dim)."""
    return evaluators.collect([self.evaluator], self.data, split, self.task)

  # ---- periodic work -----------------------------------------------------------------

  def _validate(self, step: int) -> None:
    start = time.time()
    scalars, kl_per_dim = self.evaluate("validation")
    self.logs.evaluation(workdir_lib.VALIDATION_LOGS, step, scalars, kl_per_dim)
    if self.aggressive and self.aggressive.is_active():
      self.aggressive.after_validation(scalars["mi_aggregate"], step)
    self.logs.samples(workdir_lib.VALIDATION_LOGS, step)
    logging.info("validation at step %d: %s (%.1fs)", step,
                 ", ".join(f"{k} {v:.4g}" for k, v in scalars.items()), time.time() - start)
    improved = scalars["negative_elbo"] < float(self.best_validation.numpy())
    if improved:
      self.best_validation.assign(scalars["negative_elbo"])
      workdir_lib.save(self.best_manager, step)
      logging.info("new best validation negative_elbo %.4f: saved %s",
                   scalars["negative_elbo"], self.best_manager.latest_checkpoint)
    old = float(self.optimizer.learning_rate.numpy())
    new, decaying = objectives.learning_rate_after_validation(
        old, improved, -(-step // self.steps_per_epoch), bool(self.lr_decaying.numpy()),
        self.config.train)
    self.lr_decaying.assign(decaying)
    if new != old:
      self.optimizer.learning_rate.assign(new)
      logging.info("learning rate %.4g -> %.4g (train.lr_schedule %s)%s", old, new,
                   self.config.train.lr_schedule,
                   "; below train.lr_stop_below: training ends" if self._lr_exhausted() else "")

  def _log_progress(self, step: int, window: progress.Window) -> None:
    scalars = self.task.derived_scalars(window.means())
    scalars.update(window.rates(), kl_weight=float(self.kl_weight.numpy()),
                   learning_rate=float(self.optimizer.learning_rate.numpy()),
                   skipped_steps=float(self.skipped_steps.numpy()))
    self.logs.train(step, scalars)
    rate = scalars.get("examples_per_sec", 0.0)
    eta = (self.total_steps - step) * self.global_batch_size / rate if rate else math.inf
    epoch = (step - 1) // self.steps_per_epoch + 1
    logging.info(progress.format_line(step, self.total_steps, epoch, scalars, eta))

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
    if validation_due or progress.is_time(step, config.checkpoint_every_steps):
      workdir_lib.save(self.latest_manager, step)
    if stop.requested:
      self._stop(stop, step)

  def _lr_exhausted(self) -> bool:
    return objectives.lr_exhausted(float(self.optimizer.learning_rate.numpy()),
                                   self.config.train)

  # ---- the loop ----------------------------------------------------------------------

  def _restore(self) -> int:
    # Every worker resumes from the chief's checkpoints (the workdir is shared).
    latest = workdir_lib.restore_newest_intact(
        self.checkpoint, self.workdir / workdir_lib.CHECKPOINTS,
        self.workdir / workdir_lib.CONFIG_FILE)
    if latest is None:
      logging.info("Starting a new run in %s", self.workdir.path)
      return 0
    step = int(self.step.numpy())
    logging.info("Resumed from step %d (epoch %d, checkpoint %s)", step,
                 step // self.steps_per_epoch + 1, latest)
    return step

  def _write_run_info(self) -> None:
    summaries.write_run_info(self.workdir.summary_writer(),
                             tasks.hparams(self.task, self.config),
                             {"data_source": self.data.source,
                              "config": "```\n" + self.config.to_json_best_effort(indent=2)
                                        + "\n```"})

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
    latest = self.latest_manager.latest_checkpoint
    if latest is None or workdir_lib.checkpoint_step(latest) != step:
      workdir_lib.save(self.latest_manager, step)
    raise TrainingInterrupted(
        f"{stop.signal_name} received: saved {self.latest_manager.latest_checkpoint} at step "
        f"{step}; run the same command to resume", stop.signal_number)

  def _train(self, stop: stop_signals.StopRequests) -> dict:
    step = self._restore()
    if step == 0 and self.is_chief:
      self._write_run_info()
    logging.info("Data: %s", self.data.source)
    logging.info(metrics.MI_NOTE)
    logging.info("%s: %d parameters; %d steps of batch %d (%d per epoch) on %d replica(s)",
                 self.model.name, self.model.count_params(), self.total_steps,
                 self.global_batch_size, self.steps_per_epoch,
                 self.strategy.num_replicas_in_sync)
    window, first_step, config = progress.Window(), step + 1, self.config.train
    while step < self.total_steps and not self._lr_exhausted():
      epoch, offset = divmod(step, self.steps_per_epoch)
      for batch in distribute.distribute(self.strategy,
                                         self.train_input.epoch(epoch, skip_batches=offset)):
        self.kl_weight.assign(objectives.kl_weight(step, self.steps_per_epoch,
                                                   self.total_steps, config))
        if self.aggressive and self.aggressive.is_active():
          result = self.aggressive.step(batch)
        else:
          result = self.train_step(batch)
        step += 1
        self.step.assign(step)
        stats = {k: float(v) for k, v in result.items() if k != "finite"}
        window.add(stats, self.global_batch_size)
        if step == first_step:  # Tracing and compilation: not part of the rate.
          window.exclude_from_rate()
        self.nonfinite.add(bool(result["finite"]), step, self._last_good_checkpoints)
        self._after_step(step, window, stop)
        if step >= self.total_steps or self._lr_exhausted():
          break
    return self._final_metrics(step)

  def _final_metrics(self, step: int) -> dict:
    """Validation and test metrics of the best checkpoint, written to metrics.json."""
    if self.latest_manager.latest_checkpoint is None or int(self.step.numpy()) != step:
      workdir_lib.save(self.latest_manager, step)
    # Decided on a value every worker holds, so that all run the same collectives.
    if not math.isfinite(float(self.best_validation.numpy())):
      self._validate(step)
    best = (self.best_manager.latest_checkpoint
            or tf.train.latest_checkpoint(str(self.workdir / workdir_lib.BEST)))
    if best is None:
      raise NonFiniteLossError(
          f"the validation negative ELBO was never finite, so there is no best checkpoint; "
          f"the last checkpoint is {self.latest_manager.latest_checkpoint}: lower "
          "train.learning_rate and start a new --workdir")
    self.checkpoint.restore(best).assert_existing_objects_matched()
    result = {"dataset": self.config.data.name, "data_source": self.data.source,
              "seed": self.config.seed, "skip": bool(self.config.model.skip), "steps": step,
              "best_checkpoint": best}
    for split in ("validation", "test"):
      result[split], kl_per_dim = self.evaluate(split)
      result[f"{split}_kl_per_dim"] = kl_per_dim.tolist()
    result["units"] = self.task.units_note(self.config)
    if self.is_chief:
      self.workdir.write_text(workdir_lib.METRICS_FILE, json.dumps(result, indent=2))
    self.checkpoint.restore(self.latest_manager.latest_checkpoint)
    logging.info("weights fingerprint at step %d: %s", step,
                 distribute.weights_fingerprint(self.model))
    logging.info("test at best checkpoint: %s; wrote %s",
                 ", ".join(f"{k} {v:.4g}" for k, v in result["test"].items()),
                 self.workdir / workdir_lib.METRICS_FILE)
    return result


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, data=None,
                       allow_foreign_workdir: bool = False) -> dict:
  """Trains (or resumes) the run in `workdir` and returns the final metrics. `data`: an
  optional in-memory dataset in place of the config's; `allow_foreign_workdir`: write into
  a non-empty folder that holds no run (see `Trainer`, `Workdir.prepare`)."""
  return Trainer(config, workdir, data, allow_foreign_workdir).train()
