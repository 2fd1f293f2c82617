"""bin/evaluate.py on a trained smoke run: reports, restored weights, batch-size independence."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from conftest import REPO_ROOT
from skip_vae_tf import evaluation


def _run(script, args, data_dir, cache_dir):
  env = dict(os.environ, SKIP_VAE_CACHE_DIR=str(cache_dir), TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("SKIP_VAE_DATA_DIR", None)
  if data_dir is not None:
    env["SKIP_VAE_DATA_DIR"] = str(data_dir)
  return subprocess.run([sys.executable, str(REPO_ROOT / "bin" / script), *args], env=env,
                        capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir, cache_dir):
  workdir = tmp_path_factory.mktemp("eval") / "run"
  result = _run("train.py", ["--smoke", "--config.train.epochs=1", f"--workdir={workdir}"],
                data_dir, cache_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def test_evaluate_writes_reports_and_tensorboard(trained, data_dir, cache_dir):
  result = _run("evaluate.py", [f"--workdir={trained}", "--split=test", "--iw_samples=10",
                                "--iw_chunk=4", "--batch_size=50"], data_dir, cache_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "| iw_nll |" in result.stdout
  report = json.loads((trained / "eval_test.json").read_text())
  scalars = report["metrics"]
  assert report["num_examples"] == 128 and report["checkpoint"].endswith("best/ckpt-8")
  for name in ("negative_elbo", "reconstruction_nll", "kl", "iw_nll", "mi_aggregate",
               "mi_minibatch_he2019", "active_units_cov_ge_0.01", "active_units_cov_gt_0.02",
               "linear_probe_accuracy"):
    assert name in scalars, name
  assert scalars["iw_nll"] < scalars["negative_elbo"]  # K = 10 tightens the K = 1 bound.
  assert scalars["mi_aggregate"] <= math.log(128) + 0.5
  assert 0.0 <= scalars["linear_probe_accuracy"] <= 1.0
  assert len(report["kl_per_dim"]) == 4
  assert (trained / "eval_test.md").read_text().count("|") > 20
  accumulator = event_accumulator.EventAccumulator(str(trained / "eval"))
  accumulator.Reload()
  assert {"eval/test/iw_nll", "eval/test/mi_aggregate"} <= set(accumulator.Tags()["tensors"])


def test_restored_weights_reproduce_the_training_metrics(trained, data_dir, cache_dir):
  """KL does not depend on the posterior sample: it must equal the value training reported."""
  report = evaluation.evaluate_run(str(trained), evaluation.EvaluationRequest(
      "validation", "best", iw_samples=0, batch_size=37, data_dir=str(data_dir)))
  training_metrics = json.loads((trained / "metrics.json").read_text())["validation"]
  assert report["metrics"]["kl"] == pytest.approx(training_metrics["kl"], rel=1e-5)
  assert (report["metrics"]["active_units_cov_ge_0.01"]
          == training_metrics["active_units_cov_ge_0.01"])


def test_results_do_not_depend_on_the_batch_size(trained, data_dir):
  reports = [evaluation.evaluate_run(str(trained), evaluation.EvaluationRequest(
      "test", iw_samples=6, iw_chunk=3, batch_size=size, data_dir=str(data_dir)))
             for size in (128, 50)]
  first, second = (r["metrics"] for r in reports)
  assert first["kl"] == pytest.approx(second["kl"], rel=1e-5)
  np.testing.assert_allclose(reports[0]["kl_per_dim"], reports[1]["kl_per_dim"], rtol=1e-5)
  for name in ("active_units_cov_ge_0.01", "active_units_cov_gt_0.02",
               "linear_probe_accuracy"):
    assert first[name] == second[name], name


def test_evaluate_finds_the_data_the_run_was_trained_on_without_the_environment(
    trained, data_dir, cache_dir):
  # The run was trained with the data folder given only by $SKIP_VAE_DATA_DIR.
  saved = json.loads((trained / "config.json").read_text())["data"]["data_dir"]
  assert saved == str(data_dir.resolve())
  result = _run("evaluate.py", [f"--workdir={trained}", "--split=validation", "--iw_samples=0"],
                None, cache_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads((trained / "eval_validation.json").read_text())
  training_metrics = json.loads((trained / "metrics.json").read_text())["validation"]
  assert report["data_source"] == json.loads((trained / "metrics.json").read_text())[
      "data_source"]
  assert report["metrics"]["kl"] == pytest.approx(training_metrics["kl"], rel=1e-5)


def test_missing_workdir_is_a_one_line_error(tmp_path, data_dir, cache_dir):
  result = _run("evaluate.py", [f"--workdir={tmp_path / 'nope'}"], data_dir, cache_dir)
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert "config.json not found" in result.stderr
