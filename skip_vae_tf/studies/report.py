"""A study's report: every run's test evaluation, summarized over seeds, and the paper's
comparison (with skips minus without) spelled out per seed.

report.json holds the per-seed values behind every mean; report.md the tables, the
figures (`skip_vae_tf.studies.figures`) and, for text, decoded sentences. Standard
deviations are over seeds (ddof=1; '-' with one seed). Paired differences carry a 95%
Student t interval over seeds (mean ± t_{0.975, n-1} std / sqrt(n)), and each comparison a
verdict computed from those intervals (`verdict`): a difference is called only when its
interval excludes zero.
"""

import json
import os
import pathlib

import numpy as np
from scipy import stats

from skip_vae_tf import atomic
from skip_vae_tf import metric_table
from skip_vae_tf import metrics
from skip_vae_tf import workdir as workdir_lib
from skip_vae_tf.studies import reuse
from skip_vae_tf.studies import runner
from skip_vae_tf.studies import spec as spec_lib

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def _compared() -> tuple[str, ...]:
  """The paper's comparison: what skips change (metric_table's `compared`)."""
  return metric_table.named(compared=True)


def _columns() -> tuple[str, ...]:
  """The group table's columns: the compared metrics, the perplexity and (semi-amortized
  models) the amortization gap."""
  return (*_compared(), "perplexity_iw", "amortization_gap")


def _label(name: str) -> str:
  return metric_table.METRICS[name].label


def run_records(study: spec_lib.Study, folder: pathlib.Path) -> list[dict]:
  """Each evaluated run's evaluation (eval_test.json), curves (metrics.jsonl) and
  identity; StudyError when no run is evaluated."""
  records = []
  for run in study.runs():
    if not (runner.is_trained(folder, run) and runner.is_evaluated(study, folder, run)):
      continue
    workdir = workdir_lib.Workdir(runner.run_folder(folder, run))
    evaluation = json.loads((workdir / runner.EVAL_FILE).read_text())
    records.append({"name": run.name, "group": run.group, "model": run.model,
                    "seed": run.seed, "knob_label": run.knob_label,
                    # Relative to the study folder, so that the report moves with it.
                    "checkpoint": os.path.relpath(evaluation["checkpoint"], folder),
                    "num_examples": evaluation["num_examples"],
                    "copied_from": reuse.reused_from(workdir.path),
                    "metrics": evaluation["metrics"], "kl_per_dim": evaluation["kl_per_dim"],
                    "samples": evaluation.get("samples"), "units": evaluation["units"],
                    "curves": [r for r in workdir.read_scalar_log()
                               if r["split"] == "validation"]})
  if not records:
    raise runner.StudyError(f"no run of study {study.name} in {folder} is evaluated yet")
  return records


def _spread(values: list[float]) -> dict:
  """Mean, std over seeds and the 95% t interval of the mean (None with one value)."""
  spread = {"mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "ci95": None, "values": values}
  if len(values) > 1:
    half = stats.t.ppf(0.975, len(values) - 1) * spread["std"] / np.sqrt(len(values))
    spread["ci95"] = [spread["mean"] - half, spread["mean"] + half]
  return spread


def sign(spread: dict) -> int:
  """+1 / -1 when the 95% interval lies above / below zero, else 0 (not shown)."""
  if spread.get("ci95") is None:
    return 0
  low, high = spread["ci95"]
  return 1 if low > 0 else -1 if high < 0 else 0


def interval(spread: dict) -> str:
  low, high = spread["ci95"] if spread.get("ci95") else (float("nan"),) * 2
  return f"{spread['mean']:+.2f} [{low:+.2f}, {high:+.2f}]"


def _no_interval(pair: str) -> str:
  return f"{pair}: one seed, no interval, no verdict"


def verdict(comparison: dict) -> str:
  """One line, computed from the paired differences' 95% t intervals: whether skips keep
  more information in z (MI, paper protocol) and whether the likelihood is no worse."""
  differences = comparison["differences"]
  pair = f"{comparison['skip']} - {comparison['baseline']}"
  if comparison.get("knob_label") is not None:
    pair += f" ({comparison['knob_label']})"
  if len(comparison["seeds"]) < 2:
    return _no_interval(pair)
  words = {1: "higher", -1: "lower", 0: "no difference shown"}
  likelihood_name = metric_table.named(role="likelihood")[0]
  details = [f"{_label(m)} {words[sign(differences[m])]}: {interval(differences[m])}"
             for m in (*metric_table.named(role="information"), likelihood_name)
             if m in differences]
  information = sign(differences["mi_aggregate"]) if "mi_aggregate" in differences else 0
  likelihood = sign(differences[likelihood_name]) if likelihood_name in differences else 0
  claim = {1: "skips keep more information in z", 0: "no difference in information shown",
           -1: "skips keep less information in z"}[information]
  cost = {1: "at a worse likelihood", 0: "likelihood no different",
          -1: "at a better likelihood"}[likelihood]
  return (f"{pair}, {len(comparison['seeds'])} seeds, 95% t intervals: **{claim}, {cost}** "
          f"({'; '.join(details)})")


def _paired(records_a: dict, records_b: dict, seeds: list) -> dict:
  """Per compared metric present in every run: the spread of a - b over `seeds` (records by
  seed)."""
  return {name: _spread([records_a[s]["metrics"][name] - records_b[s]["metrics"][name]
                         for s in seeds])
          for name in _compared()
          if all(name in r[s]["metrics"] for r in (records_a, records_b) for s in seeds)}


def knob_verdict(comparison: dict) -> str:
  """One line, computed from the 95% t intervals of a knob comparison (one model, a knob
  value minus the first): which compared metrics differ, or that every interval contains
  zero."""
  pair = (f"{comparison['model']}: {comparison['knob_label']} - "
          f"{comparison['baseline_label']}")
  if len(comparison["seeds"]) < 2:
    return _no_interval(pair)
  words = {1: "higher", -1: "lower"}
  differences = comparison["differences"]
  differing = [f"{_label(m)} {words[sign(d)]}: {interval(d)}"
               for m, d in differences.items() if sign(d)]
  head = f"{pair}, {len(comparison['seeds'])} seeds, 95% t intervals"
  if differing:
    return f"{head}: **differs in {'; '.join(differing)}**"
  headline = (*metric_table.named(role="information"), *metric_table.named(role="likelihood"))
  shown = "; ".join(f"{_label(m)} {interval(differences[m])}"
                    for m in headline if m in differences)
  return f"{head}: **every interval contains zero** ({shown})"


def summarize(study: spec_lib.Study, records: list[dict]) -> dict:
  """{'groups': per (model, knob) mean/std/values of every metric; 'comparisons': per skip
  pair and knob value, the per-seed differences (skip minus no skip); 'knob_comparisons':
  per model and knob value after the first, the per-seed differences (that value minus the
  first; empty without a knob)}."""
  groups = []
  for label in study.knob_labels:
    for model in study.config.models:
      members = [r for r in records if r["model"] == model and r["knob_label"] == label]
      if not members:
        continue
      names = [m for m in members[0]["metrics"] if all(m in r["metrics"] for r in members)]
      groups.append({"group": members[0]["group"], "model": model, "knob_label": label,
                     "seeds": [r["seed"] for r in members],
                     "metrics": {name: _spread([r["metrics"][name] for r in members])
                                 for name in names}})
  by_run = {(r["model"], r["knob_label"], r["seed"]): r for r in records}

  def by_seed(model, label):
    return {s: by_run[model, label, s] for s in study.config.seeds
            if (model, label, s) in by_run}

  comparisons = []
  for label in study.knob_labels:
    for skip, baseline in study.pairs():
      skip_runs, baseline_runs = by_seed(skip, label), by_seed(baseline, label)
      seeds = [s for s in skip_runs if s in baseline_runs]
      if not seeds:
        continue
      comparison = {"skip": skip, "baseline": baseline, "knob_label": label, "seeds": seeds,
                    "differences": _paired(skip_runs, baseline_runs, seeds)}
      comparisons.append({**comparison, "verdict": verdict(comparison)})
  knob_comparisons = []
  first, *others = study.knob_labels if study.knob else (None,)
  for label in others:
    for model in study.config.models:
      runs, baseline_runs = by_seed(model, label), by_seed(model, first)
      seeds = [s for s in runs if s in baseline_runs]
      if not seeds:
        continue
      comparison = {"model": model, "knob_label": label, "baseline_label": first,
                    "seeds": seeds, "differences": _paired(runs, baseline_runs, seeds)}
      knob_comparisons.append({**comparison, "verdict": knob_verdict(comparison)})
  return {"groups": groups, "comparisons": comparisons, "knob_comparisons": knob_comparisons}


def _cell(spread: dict | None, signed: bool = False) -> str:
  if spread is None:
    return ""
  mean = f"{spread['mean']:+.3f}" if signed else f"{spread['mean']:.3f}"
  std = "-" if spread["std"] is None else f"{spread['std']:.3f}"
  return f"{mean} ± {std}"


def _knob_column(study: spec_lib.Study) -> list[str]:
  return [study.knob] if study.knob else []


def _group_table(study: spec_lib.Study, summary: dict) -> list[str]:
  present = [m for m in _columns() if any(m in g["metrics"] for g in summary["groups"])]
  header = ["model", *_knob_column(study), "seeds", *(_label(m) for m in present)]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for group in summary["groups"]:
    knob = [group["knob_label"]] if study.knob else []
    cells = [group["model"], *knob, str(len(group["seeds"])),
             *(_cell(group["metrics"].get(m)) for m in present)]
    lines.append("| " + " | ".join(cells) + " |")
  return lines


def _comparison_table(study: spec_lib.Study, summary: dict) -> list[str]:
  if not summary["comparisons"]:
    return ["(no model pair with and without skips in this study)"]
  present = [m for m in _compared()
             if any(m in c["differences"] for c in summary["comparisons"])]
  header = ["skip - no skip", *_knob_column(study), "seeds",
            *(f"Δ {_label(m)}" for m in present)]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for comparison in summary["comparisons"]:
    knob = [comparison["knob_label"]] if study.knob else []
    cells = [f"{comparison['skip']} - {comparison['baseline']}", *knob,
             str(len(comparison["seeds"])),
             *(_cell(comparison["differences"].get(m), signed=True) for m in present)]
    lines.append("| " + " | ".join(cells) + " |")
  return lines


def _knob_section(study: spec_lib.Study, summary: dict) -> list[str]:
  """The knob comparisons' table and verdicts (nothing without a knob)."""
  if not summary["knob_comparisons"]:
    return []
  present = [m for m in _compared()
             if any(m in c["differences"] for c in summary["knob_comparisons"])]
  header = ["model", f"{study.knob} - {summary['knob_comparisons'][0]['baseline_label']}",
            "seeds", *(f"Δ {_label(m)}" for m in present)]
  lines = [f"## Each {study.knob} value minus the first, paired by seed (mean ± std of the "
           "differences)", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for comparison in summary["knob_comparisons"]:
    cells = [comparison["model"], comparison["knob_label"], str(len(comparison["seeds"])),
             *(_cell(comparison["differences"].get(m), signed=True) for m in present)]
    lines.append("| " + " | ".join(cells) + " |")
  return [*lines, "", "Verdicts (95% t intervals of the paired differences):", "",
          *(f"- {c['verdict']}" for c in summary["knob_comparisons"]), ""]


def _markdown_cell(text: str) -> str:
  return text.replace("|", "\\|") or "(empty)"


def _sentences(records: list[dict]) -> list[str]:
  """For text studies: each group's first run's test sentences, decodes, prior samples."""
  lines = []
  for record in records:
    samples = record["samples"]
    if not samples or not isinstance(samples["originals"][0], str):
      continue
    if any(line == f"### {record['group']}" for line in lines):
      continue
    lines += [f"### {record['group']}", "", f"Run {record['name']}.", "",
              "| test sentence | greedy decode from its posterior mean |", "|---|---|"]
    lines += [f"| {_markdown_cell(a)} | {_markdown_cell(b)} |"
              for a, b in zip(samples["originals"], samples["reconstructions"])]
    lines += ["", "| sampled with z ~ p(z) |", "|---|"]
    lines += [f"| {_markdown_cell(s)} |" for s in samples["prior_samples"]] + [""]
  return lines


def markdown(study: spec_lib.Study, folder: pathlib.Path, records: list[dict], summary: dict,
             figures: list[str]) -> str:
  """report.md: the study, its tables, figures and (text) sentences."""
  units = records[0]["units"]
  lines = [f"# Study {study.name}", "",
           f"Command: `python bin/study.py --study={study.source} --folder=FOLDER` (FOLDER: "
           "the folder holding this report); "
           f"base config `{study.config.base}`{' (smoke)' if study.config.smoke else ''}, "
           f"{len(records)} of {len(study.runs())} runs, test split "
           f"({records[0]['num_examples']} examples), "
           f"IW-NLL with K={study.evaluation.iw_samples}. Units: {units}.", "",
           "## Test metrics at each run's best validation checkpoint (mean ± std over seeds)",
           "", *_group_table(study, summary), "", metrics.MI_NOTE, "",
           "## With skips minus without, paired by seed (mean ± std of the differences)", "",
           *_comparison_table(study, summary), "",
           "Verdicts (from the 95% t intervals of the paired differences; a difference is "
           "called only when its interval excludes zero):", "",
           *(f"- {c['verdict']}" for c in summary["comparisons"]), "",
           *_knob_section(study, summary),
           f"TensorBoard over every run: `tensorboard --logdir FOLDER/{spec_lib.RUNS_FOLDER}`."]
  copied = [f"{r['name']} ({r['copied_from']})" for r in records if r["copied_from"]]
  if copied:
    lines += ["", "Copied from another study's run of the same resolved config (not trained "
              f"again): {', '.join(copied)}."]
  if figures:
    lines += ["", "## Figures", ""] + [f"![{name}]({name})" for name in figures]
  sentences = _sentences(records)
  if sentences:
    lines += ["", "## Decoded test sentences and prior samples", "", *sentences]
  return "\n".join(lines) + "\n"


def write(study: spec_lib.Study, folder: pathlib.Path, figures_fn) -> pathlib.Path:
  """Writes report.json, the figures (`figures_fn(study, records, summary, folder)` returns
  their file names) and report.md into `folder`; returns report.md's path."""
  records = run_records(study, folder)
  summary = summarize(study, records)
  figures = figures_fn(study, records, summary, folder)
  runs = [{k: v for k, v in r.items() if k not in ("curves", "samples")} for r in records]
  atomic.write_text(folder / REPORT_JSON, json.dumps(
      {"study": study.source, "knob": study.knob, "iw_samples": study.evaluation.iw_samples,
       "runs": runs, **summary}, indent=2))
  path = folder / REPORT_MD
  atomic.write_text(path, markdown(study, folder, records, summary, figures))
  return path

