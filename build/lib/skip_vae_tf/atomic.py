"""Writing files so that a reader, or a run killed mid-write, sees the old file or the new
one, never half of one: write a sibling temporary file, then rename it over the target."""

import contextlib
import os
import pathlib
from collections.abc import Iterator


@contextlib.contextmanager
def replacing(path: pathlib.Path, suffix: str = "") -> Iterator[pathlib.Path]:
  """Yields a temporary path beside `path`; on a clean exit it replaces `path`.

  The temporary name holds the process id (several workers may write the same target)
  and ends in `suffix` (e.g. '.npz' for writers that insist on an extension). On an error
  the temporary file is removed and `path` is left as it was.
  """
  tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp{suffix}")
  try:
    yield tmp
    tmp.replace(path)
  finally:
    tmp.unlink(missing_ok=True)


def write_text(path: pathlib.Path, text: str) -> None:
  """Writes `text` (UTF-8) to `path` atomically."""
  with replacing(path) as tmp:
    tmp.write_text(text, encoding="utf-8")
