"""bin/study.py end to end on configs/studies/smoke_text.py (two models x two seeds of smoke
PTB runs): shards,
skipping finished runs, and a report whose numbers are the runs' own evaluations."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from skip_vae_tf import config as config_lib
from skip_vae_tf.studies import runner
from skip_vae_tf.studies import spec

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

SMOKE_STUDY = REPO_ROOT / "configs" / "studies" / "smoke_text.py"


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory, data_dir, cache_dir):
  """(study, folder, stdout of the full run, eval mtimes of the first shard's runs)."""
  folder = tmp_path_factory.mktemp("study")
  study = spec.load(str(SMOKE_STUDY), REPO_ROOT)  # As a file path; the binary by name.
  first_shard = spec.shard(study.runs(), 0, 2)
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("SKIP_VAE_DATA_DIR", str(data_dir))
    patch.setenv("SKIP_VAE_CACHE_DIR", str(cache_dir))
    runner.run_runs(study, folder, first_shard)  # In process: half of the grid.
    mtimes = {run.name: (runner.run_folder(folder, run) / runner.EVAL_FILE).stat().st_mtime_ns
              for run in first_shard}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bin" / "study.py"), "--study=smoke_text",
         f"--folder={folder}"], capture_output=True, text=True, timeout=600, check=False,
        env=dict(os.environ))
  assert done.returncode == 0, done.stderr[-3000:]
  return study, folder, done.stdout + done.stderr, mtimes


def _evaluation(folder, name):
  return json.loads((folder / "runs" / name / runner.EVAL_FILE).read_text())


def test_a_second_invocation_skips_the_finished_runs(tiny_study):
  study, folder, output, mtimes = tiny_study
  assert [r.name for r in spec.shard(study.runs(), 0, 2)] == ["vae_seed0", "vae_seed1"]
  for name, mtime in mtimes.items():
    assert (folder / "runs" / name / runner.EVAL_FILE).stat().st_mtime_ns == mtime
    assert f"{name}: finished before" in output
  assert "skip_vae_seed1: done in" in output
  assert f"Report: {folder / 'report.md'}" in output


def test_report_numbers_are_the_runs_own_evaluations(tiny_study):
  study, folder, _, _ = tiny_study
  report = json.loads((folder / "report.json").read_text())
  assert [g["group"] for g in report["groups"]] == ["vae", "skip_vae"]
  for group in report["groups"]:
    evaluations = [_evaluation(folder, f"{group['model']}_seed{s}") for s in (0, 1)]
    for name in ("iw_nll", "negative_elbo", "kl", "mi_aggregate", "active_units_cov_ge_0.01"):
      values = [e["metrics"][name] for e in evaluations]
      assert group["metrics"][name]["values"] == values
      assert group["metrics"][name]["mean"] == pytest.approx(np.mean(values))
      assert group["metrics"][name]["std"] == pytest.approx(np.std(values, ddof=1))
  (comparison,) = report["comparisons"]
  assert (comparison["skip"], comparison["baseline"], comparison["seeds"]) == (
      "skip_vae", "vae", [0, 1])
  for name, spread in comparison["differences"].items():
    assert spread["values"] == [_evaluation(folder, f"skip_vae_seed{s}")["metrics"][name]
                                - _evaluation(folder, f"vae_seed{s}")["metrics"][name]
                                for s in (0, 1)]
  markdown = (folder / "report.md").read_text()
  iw = report["groups"][0]["metrics"]["iw_nll"]
  assert f"{iw['mean']:.3f} ± {iw['std']:.3f}" in markdown
  assert "| skip_vae - vae | 2 |" in markdown and "![curves.png](curves.png)" in markdown
  assert "| test sentence | greedy decode from its posterior mean |" in markdown


def test_the_study_leaves_figures_curves_and_tensorboard_runs(tiny_study):
  _, folder, _, _ = tiny_study
  for name in ("curves.png", "kl_per_dim.png"):
    assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  for run in ("vae_seed0", "skip_vae_seed1"):
    workdir = folder / "runs" / run
    assert list((workdir / "validation").glob("events.out.tfevents.*"))
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in records} == {"train", "validation"}
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["model"]["skip"] == run.startswith("skip") and saved["seed"] == int(run[-1])


def test_a_run_of_the_same_config_in_another_study_is_copied_not_trained(
    tiny_study, tmp_path, data_dir, cache_dir, monkeypatch):
  from skip_vae_tf.studies import report  # pylint: disable=g-import-not-at-top
  from skip_vae_tf.studies import reuse  # pylint: disable=g-import-not-at-top
  _, source_folder, _, _ = tiny_study
  monkeypatch.setenv("SKIP_VAE_DATA_DIR", str(data_dir))
  monkeypatch.setenv("SKIP_VAE_CACHE_DIR", str(cache_dir))
  config_file = tmp_path / "baseline_again.py"  # vae_seed0 again, evaluated with K=2.
  config_file.write_text(SMOKE_STUDY.read_text().replace('"smoke_text"', '"baseline_again"')
                         .replace('("vae", "skip_vae")', '("vae",)')
                         .replace("seeds=(0, 1)", "seeds=(0,)").replace("iw_samples=3",
                                                                          "iw_samples=2"))
  study = spec.load(str(config_file), REPO_ROOT)
  # A twin's test evaluation is copied only from a study that evaluates alike.
  assert runner._evaluated_alike(tiny_study[0], source_folder)  # pylint: disable=protected-access
  assert not runner._evaluated_alike(study, source_folder)  # pylint: disable=protected-access
  (run,) = study.runs()
  other_seed = study.run_config(run)
  other_seed.seed = 5
  assert reuse.twin(other_seed, [source_folder]) is None
  # A run recorded before a config field existed is still a twin (the field's default).
  older = tmp_path / "older_study" / "runs" / "vae_seed0"
  older.mkdir(parents=True)
  recorded = json.loads((source_folder / "runs" / "vae_seed0" / "config.json").read_text())
  del recorded["train"]["checkpoint_every_minutes"]
  (older / "config.json").write_text(json.dumps(recorded))
  (older / "metrics.json").write_text("{}")
  assert reuse.twin(study.run_config(run), [older.parents[1]]) == older
  folder = tmp_path / "study"
  lines = []
  monkeypatch.setattr(runner.logging, "info", lambda message, *args: lines.append(
      message % args))
  runner.run_runs(study, folder, study.runs(), reuse_from=(source_folder,))
  assert any("run 1/1 vae_seed0: copied from another study" in line for line in lines), lines
  copy, source = folder / "runs" / "vae_seed0", source_folder / "runs" / "vae_seed0"
  for name in ("config.json", "metrics.jsonl"):
    assert (copy / name).read_bytes() == (source / name).read_bytes()
  copied_metrics = json.loads((copy / "metrics.json").read_text())
  assert copied_metrics["best_checkpoint"].startswith(f"{copy}/best/ckpt-")  # Not the source's.
  assert copied_metrics == json.loads((source / "metrics.json").read_text().replace(
      str(source), str(copy)))
  assert sorted(p.name for p in (copy / "train").iterdir()) == sorted(
      p.name for p in (source / "train").iterdir())  # No training events of its own.
  assert _evaluation(folder, "vae_seed0")["iw_samples"] == 2  # Evaluated here, not copied.
  report.write(study, folder, lambda *_: [])
  assert ("Copied from another study's run of the same resolved config (not trained again): "
          f"vae_seed0 ({source_folder.name}/vae_seed0).") in (folder / "report.md").read_text()


def test_grid_names_shards_and_bad_studies(tmp_path):
  study = spec.load("collapse_quick_text", REPO_ROOT)
  names = [run.name for run in study.runs()]
  assert names[:2] == ["vae_seed0", "skip_vae_seed0"] and len(names) == 6
  shards = [spec.shard(study.runs(), i, 4) for i in range(4)]
  assert sorted(r.name for s in shards for r in s) == sorted(names)
  for bad in ("1/1", "2", "a/b", "-1/3"):
    with pytest.raises(config_lib.ConfigError, match="--shard must be i/n"):
      spec.parse_shard(bad)
  with pytest.raises(config_lib.ConfigError, match="no study 'nope'"):
    spec.load("nope", REPO_ROOT)
  bad_models = tmp_path / "bad.py"
  bad_models.write_text(SMOKE_STUDY.read_text().replace('("vae", "skip_vae")',
                                                         '("vae", "svae")'))
  with pytest.raises(config_lib.ConfigError, match="models must be some of"):
    spec.load(str(bad_models), REPO_ROOT)


def test_every_shipped_study_builds_valid_run_configs():
  for path in sorted((REPO_ROOT / "configs" / "studies").glob("*.py")):
    study = spec.load(path.stem, REPO_ROOT)
    for run in study.runs():
      config = study.run_config(run)  # Validated by config.resolve.
      assert config.seed == run.seed and config.model.skip == run.model.startswith("skip")


def test_paired_differences_carry_a_t_interval_and_a_computed_verdict():
  from skip_vae_tf.studies import report  # pylint: disable=g-import-not-at-top
  spread = report._spread([1.0, 2.0, 3.0])  # pylint: disable=protected-access
  half = 4.302652729911275 / np.sqrt(3)  # t_{0.975, 2} * std 1 / sqrt(3), from t tables.
  np.testing.assert_allclose(spread["ci95"], [2.0 - half, 2.0 + half], rtol=1e-9)

  def comparison(mi, nll):
    return {"skip": "skip_vae", "baseline": "vae", "knob_label": None, "seeds": [0, 1, 2],
            "differences": {"mi_aggregate": report._spread(mi),  # pylint: disable=protected-access
                            "iw_nll": report._spread(nll)}}  # pylint: disable=protected-access

  assert ("**skips keep more information in z, likelihood no different**"
          in report.verdict(comparison([0.3, 0.4, 0.5], [-1.0, 0.5, 0.1])))
  assert ("**no difference in information shown, at a worse likelihood**"
          in report.verdict(comparison([-0.5, 0.4, 0.2], [1.0, 1.2, 1.1])))
  assert "MI lower: -0.40 [" in report.verdict(comparison([-0.3, -0.4, -0.5], [0, 1, 2]))
  one_seed = {**comparison([0.3], [0.1]), "seeds": [0]}
  assert report.verdict(one_seed).endswith("one seed, no interval, no verdict")


def test_a_registered_metric_reaches_the_report_and_a_verdict_reads_the_table():
  from skip_vae_tf import metric_table  # pylint: disable=g-import-not-at-top
  from skip_vae_tf.studies import report  # pylint: disable=g-import-not-at-top
  toy = metric_table.register(metric_table.Metric(
      "toy_bits", "toy", "a toy metric, nats", "nats", "higher", role="information",
      compared=True))
  try:
    assert "toy_bits" in report._compared()  # pylint: disable=protected-access
    comparison = {"skip": "skip_vae", "baseline": "vae", "knob_label": None,
                  "seeds": [0, 1, 2], "differences": {
                      "toy_bits": report._spread([1.0, 1.1, 1.2])}}  # pylint: disable=protected-access
    assert "toy higher: +1.10 [" in report.verdict(comparison)
  finally:
    del metric_table.METRICS[toy.name]


def _knob_records() -> list[dict]:
  """Synthetic evaluated runs of precision_quick_image's grid (knob labels f32, bf16)."""
  rng = np.random.default_rng(0)
  return [{"model": model, "group": f"{model}_{label}", "knob_label": label, "seed": seed,
           "metrics": {"kl": float(rng.normal()), "mi_aggregate": float(rng.normal()),
                       "active_units_cov_ge_0.01": 3.0, "iw_nll": 100.0 + float(rng.normal())}}
          for model in ("vae", "skip_vae") for label in ("f32", "bf16") for seed in (0, 1, 2)]


def test_knob_comparisons_pair_each_value_with_the_first_by_seed():
  from skip_vae_tf.studies import report  # pylint: disable=g-import-not-at-top
  study = spec.load("precision_quick_image", REPO_ROOT)
  records = [r for r in _knob_records()
             if (r["model"], r["knob_label"], r["seed"]) != ("vae", "f32", 2)]
  summary = report.summarize(study, records)
  by_key = {(c["model"], c["knob_label"]): c for c in summary["knob_comparisons"]}
  assert set(by_key) == {("vae", "bf16"), ("skip_vae", "bf16")}
  assert by_key["vae", "bf16"]["seeds"] == [0, 1]  # Seed 2 has no float32 run to pair.
  run = {(r["model"], r["knob_label"], r["seed"]): r["metrics"] for r in records}
  expected = [run["skip_vae", "bf16", s]["kl"] - run["skip_vae", "f32", s]["kl"]
              for s in (0, 1, 2)]
  np.testing.assert_allclose(by_key["skip_vae", "bf16"]["differences"]["kl"]["values"],
                             expected)
  comparison = {"model": "vae", "knob_label": "bf16", "baseline_label": "f32",
                "seeds": [0, 1, 2], "differences": {
                    "kl": report._spread([0.1, -0.2, 0.05]),  # pylint: disable=protected-access
                    "iw_nll": report._spread([1.0, 1.1, 1.2])}}  # pylint: disable=protected-access
  assert ("vae: bf16 - f32, 3 seeds, 95% t intervals: **differs in IW-NLL higher: +1.10 ["
          in report.knob_verdict(comparison))
  comparison["differences"].pop("iw_nll")
  assert report.knob_verdict(comparison).endswith(
      "**every interval contains zero** (KL -0.02 [-0.42, +0.38])")  # t_{.975,2} * 0.161 / sqrt 3.


def test_the_knob_figure_of_a_partial_study_plots_the_values_it_has(tmp_path):
  from skip_vae_tf.studies import figures  # pylint: disable=g-import-not-at-top
  from skip_vae_tf.studies import report  # pylint: disable=g-import-not-at-top
  study = spec.load("precision_quick_image", REPO_ROOT)
  records = [r for r in _knob_records() if r["model"] == "skip_vae" or r["knob_label"] == "f32"]
  name = figures.knob(study, report.summarize(study, records), tmp_path)  # No vae bf16 yet.
  assert (tmp_path / name).stat().st_size > 1000
