"""docs/benchmarks.md is generated from the JSON the benchmarks write, never edited by hand;
a new measurement replaces its own row and keeps the others."""

import json
import pathlib
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import precision_decision  # pylint: disable=g-import-not-at-top,wrong-import-position
import record  # pylint: disable=g-import-not-at-top,wrong-import-position
import render  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_the_committed_page_is_the_render_of_the_committed_json():
  assert (REPO_ROOT / "docs" / "benchmarks.md").read_text() == render.render()


def test_a_new_measurement_replaces_its_row_and_keeps_the_others(tmp_path):
  record.write("speed", "Speed", ("model",), [{"model": "vae", "rate": 1.0},
                                              {"model": "skip_vae", "rate": 2.0}], tmp_path)
  record.write("speed", "Speed", ("model",), [{"model": "vae", "rate": 3.0}], tmp_path)
  rows = json.loads((tmp_path / "speed.json").read_text())["rows"]
  assert [(r["model"], r["rate"]) for r in rows] == [("skip_vae", 2.0), ("vae", 3.0)]
  assert all(r["machine"]["cores"] and r["commit"] and r["command"] for r in rows)
  page = render.render(tmp_path)
  assert "| skip_vae | 2 | [1] |" in page and "| vae | 3 | [1] |" in page
  assert f"{rows[0]['machine']['cpu']}" in page


def test_a_recorded_command_names_paths_relative_to_where_it_ran_or_to_home(tmp_path,
                                                                            monkeypatch):
  monkeypatch.chdir(tmp_path)
  (tmp_path / "data").mkdir()
  run = tmp_path / "home" / "studies" / "run"
  run.mkdir(parents=True)
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  monkeypatch.setattr(sys, "argv", ["bench.py", f"--data_dir={tmp_path / 'data'}", "--n=3",
                                    f"--workdir={run}"])
  assert record.provenance()["command"] == (
      "python bench.py --data_dir=data --n=3 --workdir=$HOME/studies/run")


def _precision_report(intervals: dict, seeds: int = 5) -> dict:
  """A precision study's report.json with one comparison per model: {model: (low, high)}
  for MI, every other metric's interval straddling zero."""
  def spread(low, high):
    return {"mean": (low + high) / 2, "ci95": [low, high]}
  return {"study": "precision_image", "knob": "train.precision", "knob_comparisons": [
      {"model": model, "knob_label": "bf16", "baseline_label": "f32",
       "seeds": list(range(seeds)),
       "differences": {"iw_nll": spread(-0.5, 0.4), "mi_aggregate": spread(*interval)}}
      for model, interval in intervals.items()]}


def test_images_switch_precision_only_when_every_interval_holds_zero_at_five_seeds():
  decide = precision_decision.decide
  holds = {"vae": (-0.2, 0.3), "skip_vae": (-0.1, 0.1)}
  assert {r["image_default"] for r in decide(_precision_report(holds))} == {
      "mixed_bfloat16: every interval contains zero"}
  rows = decide(_precision_report({**holds, "skip_vae": (0.03, 0.21)}))
  assert [r["intervals_excluding_zero"] for r in rows] == ["none", "MI"]
  assert {r["image_default"] for r in rows} == {"float32: an interval excludes zero"}
  assert {r["image_default"] for r in decide(_precision_report(holds, seeds=3))} == {
      "float32: fewer than 5 seeds"}
