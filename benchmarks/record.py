"""Where every benchmark writes its figures: benchmarks/results/<benchmark>.json, one row per
measured setting, each row with the command, date, git commit, machine and TensorFlow version
that produced it. A new measurement replaces the row with the same key and keeps the others,
so the file holds the latest measurement of each row (history lives in git).
`python benchmarks/render.py` turns the files into docs/benchmarks.md.
"""

import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
_SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def machine() -> dict:
  """CPU model, cores and the CPU flags that decide speed (bfloat16, AVX-512, AMX)."""
  model, flags = platform.processor() or platform.machine(), set()
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      key, _, value = line.partition(":")
      if key.strip() == "model name":
        model = value.strip()
      elif key.strip() == "flags":
        flags = set(value.split())
  except OSError:
    pass
  return {"cpu": model, "cores": os.cpu_count(),
          "flags": [f for f in _SPEED_FLAGS if f in flags]}


def commit() -> str:
  """The checked-out commit, '+dirty' when the tree differs from it."""
  root = pathlib.Path(__file__).resolve().parent.parent
  def git(*args):
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=False).stdout.strip()
  head = git("rev-parse", "--short=10", "HEAD") or "unknown"
  return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def portable_path(path: str) -> str:
  """An absolute path as `$HOME/...` when under the home folder, else relative to the
  current folder (the repository root, where the benchmarks run), so that it reads the same
  on every machine; other strings unchanged."""
  if not (os.path.isabs(path) and os.path.exists(path)):
    return path
  home = os.path.expanduser("~")
  if os.path.commonpath([home, os.path.abspath(path)]) == home and home != "/":
    return os.path.join("$HOME", os.path.relpath(path, home))
  return os.path.relpath(path)


def _portable(argument: str) -> str:
  """`--flag=/abs/path` with the path made portable (`portable_path`)."""
  flag, equals, value = argument.partition("=")
  return f"{flag}={portable_path(value)}" if equals else argument


def provenance() -> dict:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  command = [os.path.relpath(sys.argv[0]), *map(_portable, sys.argv[1:])]
  return {"command": "python " + " ".join(command),
          "date": datetime.date.today().isoformat(), "commit": commit(),
          "machine": machine(), "tensorflow": tf.__version__}


def write(benchmark: str, title: str, key: tuple[str, ...], rows: list[dict],
          folder: pathlib.Path = RESULTS) -> pathlib.Path:
  """Merges `rows` (dicts holding every field of `key`) into folder/<benchmark>.json, each
  stamped with `provenance()`; returns the file."""
  path = folder / f"{benchmark}.json"
  kept = json.loads(path.read_text())["rows"] if path.is_file() else []
  stamp = provenance()
  new = [{**row, **stamp} for row in rows]
  new_keys = {tuple(row[k] for k in key) for row in new}
  kept = [row for row in kept if tuple(row.get(k) for k in key) not in new_keys]
  folder.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps({"benchmark": benchmark, "title": title, "key": list(key),
                              "rows": kept + new}, indent=2) + "\n")
  return path
