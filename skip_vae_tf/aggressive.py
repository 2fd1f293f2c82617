"""Aggressive inference-network training (He et al. 2019, "Lagging Inference Networks and
Posterior Collapse in Variational Autoencoders").

While aggressive, each training step first updates the encoder alone, on fresh training
batches, until its loss stops falling (`encoder_updates`), and then the decoder alone on
the step's batch; aggressive training ends at the first validation whose mutual
information is below the previous one (`still_aggressive`), and training goes on jointly.
The official code's constants: at most 100 encoder updates, converged when the mean loss
of the last 15 is not below that of the 15 before.
"""

import math
from collections.abc import Callable


def encoder_updates(update: Callable[[], float], max_steps: int, check_every: int) -> int:
  """Calls `update()` (one encoder-only update on a fresh batch, returning its training
  loss in nats per example) until the mean loss of a window of `check_every` calls is
  above that of the window before, or `max_steps` calls were made; returns the number of
  calls."""
  previous, window = math.inf, []
  for step in range(1, max_steps + 1):
    window.append(update())
    if step % check_every == 0:
      current = sum(window) / len(window)
      if current > previous:
        return step
      previous, window = current, []
  return max_steps


def still_aggressive(mutual_information: float, previous: float) -> bool:
  """Whether aggressive training goes on after a validation with `mutual_information`
  (nats) when the previous validation had `previous` (-inf before the first)."""
  return not mutual_information < previous


# The encoder's fresh batches come from these epochs of the shuffled training stream, so
# that they differ from the steps' own batches.
_ENCODER_BATCHES_EPOCH_OFFSET = 1_000_000


class AggressiveTraining:
  """The schedule above as an update schedule the loop asks (`update_schedules`): `step`
  aggressive while `active`, joint afterwards; `after_validation` ends it. One optimizer
  serves both networks (He et al. keep one per network, which only changes Adam's bias
  correction). Its state (`checkpointed`) is saved with the run.

  Args:
    model, optimizer, strategy: the trainer's.
    train_config: the config's `train` section (aggressive_max_steps, _check_every,
      grad_clip_norm).
    train_step: the trainer's `train_step(batch, apply_step)`.
    train_input: the training batches (`epoch(index)`).
    kl_weight: the KL weight variable of the loss.
  """

  def __init__(self, model, optimizer, strategy, train_config, train_step, train_input,
               kl_weight):
    # pylint: disable=g-import-not-at-top
    import tensorflow as tf
    from skip_vae_tf import distribute
    from skip_vae_tf import steps
    self.config, self.train_step, self.kl_weight = train_config, train_step, kl_weight
    with strategy.scope():
      self.active = tf.Variable(True, trainable=False)
      self.last_mi = tf.Variable(-math.inf, trainable=False)
    encoder = model.encoder.trainable_variables
    rest = [v for v in model.trainable_variables if not any(v is e for e in encoder)]
    self.apply_encoder, self.apply_decoder = (
        steps.make_apply_step(model, optimizer, strategy, train_config.grad_clip_norm,
                              variables)
        for variables in (encoder, rest))

    def fresh_batches():
      epoch = _ENCODER_BATCHES_EPOCH_OFFSET
      while True:
        yield from distribute.distribute(strategy, train_input.epoch(epoch))
        epoch += 1
    self._encoder_batches = fresh_batches()

  def checkpointed(self) -> dict:
    return {"aggressive": self.active, "aggressive_mi": self.last_mi}

  def is_active(self) -> bool:
    return bool(self.active.numpy())

  def encoder_update(self) -> float:
    """One encoder-only update on a fresh batch; its training loss (nats per example)."""
    stats = self.train_step(next(self._encoder_batches), self.apply_encoder)
    return float(stats["reconstruction_nll"] + self.kl_weight * stats["kl"])

  def step(self, batch) -> dict:
    """While aggressive: encoder updates to convergence, then a decoder-only step on
    `batch`; the stats of the latter, with `encoder_updates` (how many the encoder took).
    Afterwards: a joint step."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if not self.is_active():
      return self.train_step(batch)
    updates = encoder_updates(self.encoder_update, self.config.aggressive_max_steps,
                              self.config.aggressive_check_every)
    result = self.train_step(batch, self.apply_decoder)
    return {**result, "encoder_updates": tf.constant(float(updates))}

  def after_validation(self, scalars: dict[str, float], step: int) -> None:
    """Ends aggressive training at the first validation whose MI (`mi_aggregate`) falls."""
    from absl import logging  # pylint: disable=g-import-not-at-top
    if not self.is_active():
      return
    mutual_information = scalars["mi_aggregate"]
    previous = float(self.last_mi.numpy())
    if not still_aggressive(mutual_information, previous):
      self.active.assign(False)
      logging.info("aggressive training ends at step %d: validation mi_aggregate %.4f is "
                   "below the previous %.4f; joint updates from now on", step,
                   mutual_information, previous)
    self.last_mi.assign(mutual_information)
