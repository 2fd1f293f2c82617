"""What a run checkpoints: the model, the optimizer and the loop's counters, with the
managers of its latest and best checkpoints.

The counters are tf.Variables so that a resumed run continues exactly: the step, the KL
weight of the loss, the best validation negative ELBO (nats per example), the number of
skipped (non-finite) steps, and whether the learning rate has started to decay.
"""

import math

from absl import logging
import ml_collections
import tensorflow as tf

from skip_vae_tf import nonfinite
from skip_vae_tf import objectives
from skip_vae_tf import workdir as workdir_lib


class TrainState:
  """The checkpointed state of one run.

  Args:
    strategy: the variables are created in its scope.
    model, optimizer: the run's (the optimizer's variables already built).
  """

  def __init__(self, strategy: tf.distribute.Strategy, model, optimizer):
    self.model, self.optimizer = model, optimizer
    with strategy.scope():
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
      self.kl_weight = tf.Variable(1.0, trainable=False, name="kl_weight")
      self.best_validation = tf.Variable(math.inf, trainable=False, name="best_validation")
      self.skipped_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps")
      self.lr_decaying = tf.Variable(False, trainable=False, name="lr_decaying")
    self._tracked = dict(model=model, optimizer=optimizer, step=self.step,
                         kl_weight=self.kl_weight, best_validation=self.best_validation,
                         skipped_steps=self.skipped_steps, lr_decaying=self.lr_decaying)
    self.checkpoint = self.latest = self.best = None

  def track(self, objects: dict) -> None:
    """Adds `objects` (name -> trackable, e.g. a training strategy's state) to what is
    checkpointed; call before `write_to`."""
    self._tracked.update(objects)

  def write_to(self, folder, keep: int) -> None:
    """Checkpoints go under `folder` (its checkpoints/ and best/), `keep` latest ones."""
    self.checkpoint = tf.train.Checkpoint(**self._tracked)
    self.latest, self.best = workdir_lib.checkpoint_managers(self.checkpoint, folder, keep)

  def restore_newest(self, run: workdir_lib.Workdir) -> str | None:
    """Restores the newest intact checkpoint of `run` (every worker reads the chief's);
    returns its path, None when the run has none."""
    return workdir_lib.restore_newest_intact(self.checkpoint, run / workdir_lib.CHECKPOINTS,
                                             run / workdir_lib.CONFIG_FILE)

  def save_latest(self, step: int) -> None:
    workdir_lib.save(self.latest, step)

  def ensure_saved(self, step: int) -> None:
    """Saves a latest checkpoint of `step` unless the newest one is of it already."""
    newest = self.latest.latest_checkpoint
    if newest is None or workdir_lib.checkpoint_step(newest) != step:
      self.save_latest(step)

  def best_checkpoint(self, run: workdir_lib.Workdir) -> str:
    """The best validation checkpoint (this process's, else the run's best/ folder).

    Raises:
      NonFiniteLossError: validation was never finite, so there is none.
    """
    best = self.best.latest_checkpoint or tf.train.latest_checkpoint(
        str(run / workdir_lib.BEST))
    if best is None:
      raise nonfinite.NonFiniteLossError(
          f"the validation negative ELBO was never finite, so there is no best checkpoint; "
          f"the last checkpoint is {self.latest.latest_checkpoint}: lower "
          "train.learning_rate and start a new --workdir")
    return best

  def adapt_learning_rate(self, improved: bool, epoch: int,
                          train_config: ml_collections.ConfigDict) -> None:
    """The learning rate after the validation ending `epoch` (1-based) that did or did
    not improve (`objectives.learning_rate_after_validation`); logs a change."""
    old = float(self.optimizer.learning_rate.numpy())
    new, decaying = objectives.learning_rate_after_validation(
        old, improved, epoch, bool(self.lr_decaying.numpy()), train_config)
    self.lr_decaying.assign(decaying)
    if new != old:
      self.optimizer.learning_rate.assign(new)
      logging.info("learning rate %.4g -> %.4g (train.lr_schedule %s)%s", old, new,
                   train_config.lr_schedule,
                   "; below train.lr_stop_below: training ends"
                   if self.lr_exhausted(train_config) else "")

  def lr_exhausted(self, train_config: ml_collections.ConfigDict) -> bool:
    """Whether the learning rate fell below train.lr_stop_below: training ends."""
    return objectives.lr_exhausted(float(self.optimizer.learning_rate.numpy()), train_config)

  def save_if_best(self, step: int, negative_elbo: float) -> bool:
    """Saves a best checkpoint when `negative_elbo` beats the best so far; says whether."""
    if not negative_elbo < float(self.best_validation.numpy()):
      return False
    self.best_validation.assign(negative_elbo)
    workdir_lib.save(self.best, step)
    return True

  def last_good_checkpoints(self) -> str:
    """Where a failing run's good weights are, for its error message."""
    return (f"the last good checkpoint is {workdir_lib.named(self.latest.latest_checkpoint)}, "
            f"the best validation checkpoint "
            f"{workdir_lib.named(self.best.latest_checkpoint)}")
