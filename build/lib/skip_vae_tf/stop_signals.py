"""SIGTERM/SIGINT as a request to stop at the next step boundary (after a checkpoint).

The first signal only sets `requested`; the training loop finishes the step (or the
evaluation) it is in, writes a checkpoint and stops. The previous handlers are back in
place from then on, so a second signal stops the process at once.
"""

import signal
import sys
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequests:
  """Context manager: while inside, SIGTERM and SIGINT set `requested` (main thread only;
  elsewhere signals keep their handlers and `requested` stays False)."""

  def __init__(self):
    self.requested = False
    self.signal_number = 0
    self._previous = {}

  @property
  def signal_name(self) -> str:
    return signal.Signals(self.signal_number).name if self.signal_number else ""

  def _handle(self, number, frame):
    del frame
    self.requested, self.signal_number = True, number
    self._restore()
    # Said at once: the step in progress (or a validation) may take a while to finish.
    sys.stderr.write(f"{self.signal_name} received: stopping after the current step, "
                     "once its checkpoint is written; send it again to stop at once\n")
    sys.stderr.flush()

  def _restore(self):
    for number, handler in self._previous.items():
      signal.signal(number, handler)
    self._previous = {}

  def __enter__(self) -> "StopRequests":
    if threading.current_thread() is threading.main_thread():
      self._previous = {number: signal.signal(number, self._handle) for number in SIGNALS}
    return self

  def __exit__(self, *exc_info) -> None:
    self._restore()
