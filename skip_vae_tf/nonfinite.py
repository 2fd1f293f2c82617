"""Non-finite steps: each is skipped and counted by the training step; too many in a row
stop the run with one line naming the last good checkpoints and the rates to lower."""

from absl import logging
import ml_collections

from skip_vae_tf import errors


class NonFiniteLossError(errors.SkipVaeError):
  """Too many consecutive steps had a non-finite loss or gradient, or validation never was
  finite."""


class ConsecutiveNonFinite:
  """Counts consecutive non-finite steps; `add(finite, step, checkpoints)` raises
  NonFiniteLossError at `config.train.max_consecutive_nonfinite` in a row (`checkpoints`:
  a callable giving the message's 'the last good checkpoint is ...' part)."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config, self.count = config, 0

  def add(self, finite: bool, step: int, checkpoints) -> None:
    if finite:
      self.count = 0
      return
    self.count += 1
    logging.warning("step %d: non-finite gradient norm, update skipped", step)
    if self.count >= self.config.train.max_consecutive_nonfinite:
      raise NonFiniteLossError(
          f"{self.count} consecutive steps had a non-finite loss or gradient (last at step "
          f"{step}); {checkpoints()}: lower {likely_rate(self.config)} or raise "
          "train.max_consecutive_nonfinite")


def likely_rate(config: ml_collections.ConfigDict) -> str:
  """The rates to lower: a semi-amortized model's refinement steps diverge on their own."""
  rate = f"train.learning_rate ({config.train.learning_rate:g})"
  if config.model.inference != "semi_amortized":
    return rate
  refinement = ", ".join(f"{r:g}" for r in config.model.svi_learning_rates)
  return f"model.svi_learning_rates (the refinement's: {refinement}) or {rate}"
