r"""Images' default precision from the precision study, for docs/benchmarks.md.

  python benchmarks/precision_decision.py    # reads docs/results/precision_image/report.json

The rule, fixed before the study ran: images train in mixed bfloat16 by default only if, for
every model, every 95% t interval of bfloat16 minus float32 (paired by seed, each metric the
report compares) contains zero, at five seeds or more. Each row gives a model's paired
differences, the metrics whose interval excludes zero, the bfloat16 / float32 training
speed-up of docs/benchmarks.md's throughput rows, and the decision. Writes
benchmarks/results/precision_decision.json (`benchmarks/record.py`).
"""

import json
import pathlib
import sys

from absl import app
from absl import flags

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

# pylint: disable=g-import-not-at-top,wrong-import-position
import record
from skip_vae_tf import metric_table
from skip_vae_tf.studies import report as report_lib
# pylint: enable=g-import-not-at-top,wrong-import-position

_REPORT = flags.DEFINE_string(
    "report", "docs/results/precision_image/report.json",
    "report.json of a study whose knob is train.precision (relative to the repo root).")
_MIN_SEEDS = 5
_SHOWN = ("iw_nll", "kl", "mi_aggregate", "active_units_cov_gt_0.02")
_CONFIG = "configs/omniglot.py"


def _speedup(model: str) -> str:
  """bfloat16 / float32 examples/s of `model` in the throughput rows, or '-'."""
  path = record.RESULTS / "train_throughput.json"
  rows = json.loads(path.read_text())["rows"] if path.is_file() else []
  rate = {r["precision"]: r["examples_per_sec"] for r in rows
          if r["config"] == _CONFIG and r["model"] == model}
  if {"float32", "mixed_bfloat16"} <= set(rate):
    return f"{rate['mixed_bfloat16'] / rate['float32']:.2f}x"
  return "-"


def decide(report: dict) -> list[dict]:
  """One row per model of the report's precision comparisons, each with the decision."""
  if report.get("knob") != "train.precision":
    raise app.UsageError(f"{_REPORT.value} is not a precision study (its knob is "
                         f"{report.get('knob')!r})")
  comparisons = report["knob_comparisons"]
  enough = all(len(c["seeds"]) >= _MIN_SEEDS for c in comparisons)
  excluded = {c["model"]: [metric_table.METRICS[m].label for m, d in c["differences"].items()
                           if report_lib.sign(d)] for c in comparisons}
  switch = enough and not any(excluded.values())
  decision = ("mixed_bfloat16: every interval contains zero" if switch else
              "float32: " + ("an interval excludes zero" if enough
                             else f"fewer than {_MIN_SEEDS} seeds"))
  rows = []
  for comparison in comparisons:
    model, differences = comparison["model"], comparison["differences"]
    row = {"study": report["study"], "model": model,
           "compared": f"{comparison['knob_label']} - {comparison['baseline_label']}",
           "seeds": len(comparison["seeds"])}
    row.update((f"Δ {metric_table.METRICS[m].label}", report_lib.interval(differences[m]))
               for m in _SHOWN if m in differences)
    row["intervals_excluding_zero"] = ", ".join(excluded[model]) or "none"
    row["bf16_speedup"] = _speedup(model)
    row["image_default"] = decision
    rows.append(row)
  return rows


def main(argv):
  del argv
  report = json.loads((REPO_ROOT / _REPORT.value).read_text())
  rows = decide(report)
  for row in rows:
    print(row)
  print("wrote", record.write(
      "precision_decision", "Images' default precision (95% t intervals of bfloat16 - "
      "float32, paired by seed)", ("study", "model"), rows))


if __name__ == "__main__":
  app.run(main)
