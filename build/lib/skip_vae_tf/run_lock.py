"""One process per run folder: an OS file lock held while a process uses the folder.

`claim(folder)` takes an exclusive, non-blocking `fcntl.flock` on FOLDER/.skip_vae_run
and writes who holds it (pid, host, program, time) into that file. The kernel drops the lock
when the process ends, however it ends, so a killed process never leaves a stale lock. The
file stays after the lock is released: it is also the marker that says the folder is a run of
this project. Claims are counted per process, so code that already holds a folder (a study
training one of its runs) may claim it again.
"""

import dataclasses
import datetime
import errno
import fcntl
import json
import os
import pathlib
import socket
import sys

from skip_vae_tf import errors

MARKER = ".skip_vae_run"


class RunBusyError(errors.SkipVaeError):
  """Another live process holds the run folder."""
  exit_code = 3


@dataclasses.dataclass
class _Held:
  descriptor: int
  count: int


_HELD: dict[str, _Held] = {}


def _key(folder: pathlib.Path) -> str:
  return os.path.realpath(folder)


def holder(folder: pathlib.Path) -> str:
  """Who holds (or last held) `folder`: 'bin/train.py (pid 123 on host, since ...)'."""
  try:
    info = json.loads((folder / MARKER).read_text())
    return (f"{info['program']} (pid {info['pid']} on {info['host']}, since "
            f"{info['since']})")
  except (OSError, ValueError, KeyError, TypeError):
    return "another process (its pid is not recorded yet)"


def _open(path: pathlib.Path) -> tuple[int, bool]:
  """A descriptor of the marker file and whether it is writable (a read-only workdir's
  existing marker is locked through a read-only descriptor)."""
  try:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644), True
  except PermissionError:
    return os.open(path, os.O_RDONLY), False
  except OSError as error:
    if error.errno == errno.EROFS:
      return os.open(path, os.O_RDONLY), False
    raise


def claim(folder: pathlib.Path) -> "Claim":
  """Holds `folder` for this process until the returned claim is released (or the process
  ends). Raises RunBusyError naming the holder when another process holds it, and
  OSError when the marker can be neither created nor opened."""
  key = _key(folder)
  if key in _HELD:
    _HELD[key].count += 1
    return Claim(key)
  descriptor, writable = _open(folder / MARKER)
  try:
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    os.close(descriptor)
    raise RunBusyError(f"{folder} is in use by {holder(folder)}; wait for it to finish, "
                       "or stop it (its checkpoint is written first)") from None
  if writable:  # Written in place: replacing the file would drop the lock's inode.
    program = pathlib.Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    record = json.dumps({"program": program, "pid": os.getpid(),
                         "host": socket.gethostname(),
                         "since": datetime.datetime.now().isoformat(timespec="seconds")})
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, record.encode() + b"\n", 0)
  _HELD[key] = _Held(descriptor, 1)
  return Claim(key)


class Claim:
  """A claim of `claim`; `release()` (or leaving a `with` block) gives it up."""

  def __init__(self, key: str):
    self._key, self._released = key, False

  def release(self) -> None:
    if self._released:
      return
    self._released = True
    held = _HELD[self._key]
    held.count -= 1
    if not held.count:
      del _HELD[self._key]
      os.close(held.descriptor)  # Closing the descriptor drops the flock.

  def __enter__(self) -> "Claim":
    return self

  def __exit__(self, *exc_info) -> None:
    self.release()
