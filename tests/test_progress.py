"""Training progress: window means (non-finite steps left out), rates, the due-step rule."""

import math

import pytest

from skip_vae_tf import progress


def test_window_means_are_means_over_finite_steps_and_reset():
  window = progress.Window()
  window.add({"negative_elbo": 100.0, "kl": 1.0}, examples=32)
  window.add({"negative_elbo": math.nan, "kl": 9.0}, examples=32)  # A skipped step.
  window.add({"negative_elbo": 110.0, "kl": 3.0}, examples=32)
  assert window.means() == {"negative_elbo": 105.0, "kl": 2.0}
  assert window.examples == 96
  window.reset()
  assert window.means() == {} and window.rates() == {}


def test_rates_count_tokens_and_exclude_what_came_before():
  window = progress.Window()
  window.add({"num_tokens": 10.0}, examples=4)
  window.exclude_from_rate()
  assert window.rates() == {}
  window.add({"num_tokens": 12.0}, examples=4)
  rates = window.rates()
  assert rates["tokens_per_sec"] == pytest.approx(12.0 * rates["examples_per_sec"])
  assert window.means() == {"num_tokens": 11.0}  # Means still cover both steps.


@pytest.mark.parametrize("step, every, last, due", [
    (100, 100, None, True), (99, 100, None, False), (37, 100, 37, True), (0, 5, None, True)])
def test_is_time(step, every, last, due):
  assert progress.is_time(step, every, last) is due


def test_interval_is_due_once_its_minutes_have_passed_since_the_last_restart():
  now = [100.0]
  interval = progress.Interval(2.0, clock=lambda: now[0])
  now[0] += 119.0
  assert not interval.due()
  now[0] += 1.0
  assert interval.due()
  interval.restart()
  assert not interval.due()
  now[0] += 1e6
  assert not progress.Interval(0.0, clock=lambda: now[0]).due()  # 0: never.


def test_format_line_copes_with_missing_values_and_unknown_eta():
  line = progress.format_line(3, 10, 1, {"negative_elbo": 90.5}, math.inf)
  assert "negative_elbo 90.500" in line and "kl nan" in line and "ETA unknown" in line
  assert progress.format_duration(3725) == "1h02m05s"
