"""SIGTERM/SIGINT as stop requests: the first is recorded, the handlers are put back."""

import signal

import pytest

from skip_vae_tf import stop_signals


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_first_signal_is_a_request_and_restores_the_previous_handler(number, capsys):
  previous = signal.getsignal(number)
  with stop_signals.StopRequests() as stop:
    assert not stop.requested and signal.getsignal(number) != previous
    signal.raise_signal(number)
    assert stop.requested and stop.signal_number == number
    # Acknowledged at once, before the step finishes.
    assert capsys.readouterr().err.startswith(
        f"{signal.Signals(number).name} received: stopping after the current step")
    assert stop.signal_name == signal.Signals(number).name
    # A second signal would reach the previous handler: stop at once.
    assert signal.getsignal(number) == previous
  assert signal.getsignal(number) == previous


def test_leaving_without_a_signal_restores_every_handler():
  before = {number: signal.getsignal(number) for number in stop_signals.SIGNALS}
  with stop_signals.StopRequests() as stop:
    pass
  assert not stop.requested and stop.signal_name == ""
  assert {number: signal.getsignal(number) for number in stop_signals.SIGNALS} == before
