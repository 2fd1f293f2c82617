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
