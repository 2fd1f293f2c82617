"""Training progress: window means for the log line and TensorBoard, rates, ETA, timing.

A log line reports the mean of each training statistic over the steps since the previous
line (steps whose update was skipped as non-finite left out), not the value of the last
batch; rates exclude the first step of a process, which includes tracing and XLA
compilation, so the ETA is the steady-state one.
"""

import math
import time


def is_time(step: int, every: int, last_step: int | None = None) -> bool:
  """Whether something due every `every` steps (never when 0; always at `last_step`) is
  due at `step`."""
  return (every > 0 and step % every == 0) or step == last_step


class Interval:
  """A wall-clock interval: `due()` once `minutes` have passed since the last `restart()`
  (never when `minutes` is 0); `clock` returns seconds (time.monotonic)."""

  def __init__(self, minutes: float, clock=time.monotonic):
    self.seconds, self.clock = 60.0 * minutes, clock
    self.restart()

  def restart(self) -> None:
    self.started = self.clock()

  def due(self) -> bool:
    return self.seconds > 0 and self.clock() - self.started >= self.seconds


def format_duration(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "unknown"
  seconds = int(seconds)
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


class Window:
  """Sums of per-step statistics since the last `reset`, and the time they took."""

  def __init__(self):
    self.reset()

  def reset(self) -> None:
    self.sums: dict[str, float] = {}
    self.finite_steps = 0
    self.exclude_from_rate()

  def add(self, stats: dict[str, float], examples: int) -> None:
    """One step's statistics (means over its batch); `examples` in its global batch."""
    self.examples += examples
    if "num_tokens" in stats:
      self.tokens += stats["num_tokens"] * examples
    if not all(math.isfinite(v) for v in stats.values()):
      return
    self.finite_steps += 1
    for name, value in stats.items():
      self.sums[name] = self.sums.get(name, 0.0) + value

  def exclude_from_rate(self) -> None:
    """Restarts the clock and the example counts (after compilation or a validation)."""
    self.start, self.examples, self.tokens = time.time(), 0, 0.0

  def means(self) -> dict[str, float]:
    """Mean of each statistic over the window's finite steps (NaN if there were none)."""
    return {name: (total / self.finite_steps if self.finite_steps else math.nan)
            for name, total in self.sums.items()}

  def rates(self) -> dict[str, float]:
    """examples_per_sec and, for text, tokens_per_sec over the window ({} before a timed
    step)."""
    if not self.examples:
      return {}
    elapsed = max(time.time() - self.start, 1e-9)
    rates = {"examples_per_sec": self.examples / elapsed}
    if self.tokens:
      rates["tokens_per_sec"] = self.tokens / elapsed
    return rates


def format_line(step: int, total: int, epoch: int, scalars: dict[str, float],
                eta: float) -> str:
  """The training log line: window means of the loss terms, rates, ETA (seconds)."""
  value = lambda name: scalars.get(name, math.nan)
  rate = f"{value('examples_per_sec'):.1f} examples/s"
  if "tokens_per_sec" in scalars:
    rate += f", {scalars['tokens_per_sec']:.0f} tokens/s, ppl bound {value('perplexity_bound'):.1f}"
  return (f"step {step}/{total} epoch {epoch} | window means: negative_elbo "
          f"{value('negative_elbo'):.3f} recon {value('reconstruction_nll'):.3f} kl "
          f"{value('kl'):.3f} grad_norm {value('grad_norm'):.3g} | {rate} | ETA "
          f"{format_duration(eta)}")
