"""Which networks a training step updates: both at once (`JointUpdates`, the default) or
He et al.'s aggressive schedule (`aggressive.AggressiveTraining`, train.aggressive).

The loop asks its schedule for each step (`step(batch)` -> the step's stats), tells it each
validation's scalars (`after_validation`) and checkpoints its state (`checkpointed`); it
tests no flags.
"""

import ml_collections

from skip_vae_tf import aggressive


class JointUpdates:
  """Every step updates all variables together (`train_step`: a `steps.GuardedStep`)."""

  def __init__(self, train_step):
    self.train_step = train_step

  def step(self, batch) -> dict:
    return self.train_step(batch)

  def after_validation(self, scalars: dict[str, float], step: int) -> None:
    del scalars, step  # Nothing changes with validation.

  def checkpointed(self) -> dict:
    return {}


def for_config(train_config: ml_collections.ConfigDict, train_step, model, optimizer,
               strategy, train_input, kl_weight):
  """The schedule `train_config` asks for, around the trainer's `train_step`."""
  if train_config.aggressive:
    return aggressive.AggressiveTraining(model, optimizer, strategy, train_config, train_step,
                                         train_input, kl_weight)
  return JointUpdates(train_step)
