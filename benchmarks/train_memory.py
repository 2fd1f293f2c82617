r"""Resident memory of a real training run, over its phases: is it bounded, is it flat?

  python benchmarks/train_memory.py -- --dataset=yahoo_small --skip=true \
      --config.train.epochs=1 --config.data.max_train_examples=3200
  python benchmarks/train_memory.py -- --dataset=omniglot --skip=true --config.train.epochs=3

Runs `bin/train.py` with the arguments after `--` (and a fresh --workdir unless given) as a
child process, samples its resident set size (VmRSS, /proc) every --interval seconds, and
prints one line per validation (the peak RSS of the epoch that ended there and the RSS at that
moment) and, at the end, the process's peak RSS (ru_maxrss of the child: every allocation,
not only those between samples). Linux only (/proc). GiB = 2^30 bytes.
"""

import pathlib
import resource
import subprocess
import sys
import tempfile
import threading
import time

from absl import app
from absl import flags

import record  # pylint: disable=g-import-not-at-top

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
_INTERVAL = flags.DEFINE_float("interval", 0.5, "Seconds between RSS samples.")
_MARK = "validation at step"


def _rss_gib(pid: int) -> float | None:
  """The process's current VmRSS in GiB; None once it is gone."""
  try:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 2**20
  except OSError:
    return None
  return None


def main(argv):
  train_args = argv[1:]
  workdir = None
  if not any(arg.startswith("--workdir") for arg in train_args):
    workdir = tempfile.TemporaryDirectory(prefix="train_memory_")
    train_args.append(f"--workdir={workdir.name}/run")
  command = [sys.executable, str(REPO_ROOT / "bin" / "train.py"), *train_args]
  print("running:", " ".join(command), flush=True)
  start = time.perf_counter()
  child = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           text=True)
  phase_peak = [0.0]

  def sample():
    while child.poll() is None:
      rss = _rss_gib(child.pid)
      if rss is not None:
        phase_peak[0] = max(phase_peak[0], rss)
      time.sleep(_INTERVAL.value)

  sampler = threading.Thread(target=sample, daemon=True)
  sampler.start()
  tail = []
  for line in child.stderr:
    tail = (tail + [line])[-20:]
    if _MARK in line:
      step = line.split(_MARK)[1].split(":")[0].strip()
      print(f"{time.perf_counter() - start:7.0f} s  validation at step {step}: peak RSS since "
            f"the previous one {phase_peak[0]:.2f} GiB, now {_rss_gib(child.pid) or 0:.2f} GiB",
            flush=True)
      phase_peak[0] = 0.0
  code = child.wait()
  sampler.join()
  peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
  print(f"{time.perf_counter() - start:7.0f} s  exit {code}; sampled peak after the last "
        f"validation {phase_peak[0]:.2f} GiB; peak RSS of the run (ru_maxrss) {peak:.2f} GiB",
        flush=True)
  if code:
    print("".join(tail), file=sys.stderr)
  else:
    measured = [a for a in argv[1:] if not a.startswith("--workdir")]
    print("wrote", record.write(
        "train_memory", "Peak memory of a training run (bin/train.py, whole process)",
        ("train_arguments",),
        [{"train_arguments": " ".join(measured), "peak_rss_gib": round(peak, 2),
          "seconds": round(time.perf_counter() - start)}]))
  if workdir is not None:
    workdir.cleanup()
  return code


if __name__ == "__main__":
  app.run(main)
