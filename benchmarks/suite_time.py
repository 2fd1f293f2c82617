r"""Wall time of the README's test command, recorded for docs/benchmarks.md.

  python benchmarks/suite_time.py          # runs `python -m pytest -q tests`

Records the wall time and the pytest summary line (passed, failed) in
benchmarks/results/suite_time.json (`benchmarks/record.py`); exits with pytest's code.
"""

import re
import subprocess
import sys
import time

import record

COMMAND = [sys.executable, "-m", "pytest", "-q", "tests"]


def main() -> int:
  start = time.perf_counter()
  result = subprocess.run(COMMAND, capture_output=True, text=True, check=False,
                          cwd=record.RESULTS.parent.parent)
  seconds = time.perf_counter() - start
  summary = next((line.strip("= ") for line in reversed(result.stdout.splitlines())
                  if re.search(r"\d+ (passed|failed)", line)), "no summary")
  print(result.stdout[-3000:])
  minutes, rest = divmod(round(seconds), 60)
  print("wrote", record.write("suite_time", "Test suite (python -m pytest -q tests)",
                              ("suite",),
                              [{"suite": "python -m pytest -q tests", "result": summary,
                                "wall_time": f"{minutes} min {rest:02d} s"}]))
  return result.returncode


if __name__ == "__main__":
  sys.exit(main())
