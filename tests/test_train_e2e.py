"""bin/train.py end to end on real Omniglot: outputs, TensorBoard tags, resume, MirroredStrategy,
checkpoint on SIGTERM/SIGINT, and one-line errors for bad flags and data."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest
from tensorboard.backend.event_processing import event_accumulator

from conftest import REPO_ROOT
from skip_vae_tf import config as config_lib
from skip_vae_tf import errors
from skip_vae_tf import training

TRAIN = str(REPO_ROOT / "bin" / "train.py")


def _run(args, data_dir, cache_dir, timeout=300):
  env = dict(os.environ, SKIP_VAE_DATA_DIR=str(data_dir), SKIP_VAE_CACHE_DIR=str(cache_dir),
             TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, TRAIN, *args], env=env, capture_output=True, text=True,
                        timeout=timeout, check=False)


def _tags(run_dir: pathlib.Path) -> set[str]:
  accumulator = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
  accumulator.Reload()
  tags = accumulator.Tags()
  return set(tags["tensors"]) | set(tags["images"]) | set(tags["histograms"])


def _smoke_config(dataset: str, data_dir, cache_dir, monkeypatch, **overrides):
  """bin/train.py's config for `--smoke --dataset=<dataset>` and --config.* `overrides`."""
  monkeypatch.setenv("SKIP_VAE_CACHE_DIR", str(cache_dir))
  return config_lib.resolve(config_lib.default_config(dataset), data_dir=str(data_dir),
                            smoke=True, overrides=overrides)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, data_dir, cache_dir):
  workdir = tmp_path_factory.mktemp("run") / "omniglot"
  first = _run(["--smoke", "--dataset=omniglot", "--skip=true", f"--workdir={workdir}"],
               data_dir, cache_dir)
  assert first.returncode == 0, first.stderr[-3000:]
  return workdir, first


def test_smoke_run_writes_checkpoints_events_and_metrics(smoke_run):
  workdir, result = smoke_run
  assert "Starting a new run" in result.stderr
  assert "examples/s" in result.stderr and "ETA" in result.stderr
  assert list((workdir / "checkpoints").glob("ckpt-16.index"))
  assert list((workdir / "best").glob("ckpt-*.index"))
  metrics = json.loads((workdir / "metrics.json").read_text())
  assert metrics["steps"] == 16 and metrics["skip"] is True
  assert "npz" in metrics["data_source"]
  for split in ("validation", "test"):
    assert {"negative_elbo", "kl", "mi_aggregate", "mi_minibatch_he2019",
            "active_units_cov_ge_0.01", "active_units_cov_gt_0.02"} <= set(metrics[split])
    assert metrics[split]["negative_elbo"] == pytest.approx(
        metrics[split]["reconstruction_nll"] + metrics[split]["kl"], rel=1e-5)
  train_tags, validation_tags = _tags(workdir / "train"), _tags(workdir / "validation")
  assert {"negative_elbo", "reconstruction_nll", "kl", "kl_weight", "grad_norm",
          "examples_per_sec", "mi_minibatch_he2019", "skipped_steps"} <= train_tags
  assert {"negative_elbo", "kl", "mi_aggregate", "mi_minibatch_he2019", "active_units_cov_ge_0.01",
          "active_units_cov_gt_0.02", "kl_per_dim", "kl_per_dim/dim_00", "reconstructions",
          "prior_samples"} <= validation_tags
  assert {"_hparams_/experiment", "_hparams_/session_start_info", "data_source"} <= _tags(workdir)


def test_second_invocation_resumes_and_continues_the_step_count(smoke_run, data_dir, cache_dir):
  workdir, _ = smoke_run
  result = _run(["--smoke", "--dataset=omniglot", "--skip=true", f"--workdir={workdir}",
                 "--config.train.epochs=3"], data_dir, cache_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Resumed from step 16" in result.stderr
  assert "step 20/24" in result.stderr and "step 4/" not in result.stderr
  assert json.loads((workdir / "metrics.json").read_text())["steps"] == 24


def test_resume_refuses_a_different_model(smoke_run, data_dir, cache_dir, monkeypatch):
  workdir, _ = smoke_run
  config = _smoke_config("omniglot", data_dir, cache_dir, monkeypatch, **{"model.skip": False})
  with pytest.raises(errors.SkipVaeError, match=r"model\.skip=True") as raised:
    training.Trainer(config, str(workdir))
  assert "\n" not in str(raised.value)


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, data_dir, cache_dir):
  result = _run(["--smoke", "--dataset=omniglot", "--strategy=mirrored", "--cpu_devices=2",
                 "--config.train.epochs=1", "--config.train.num_logged_samples=0",
                 f"--workdir={tmp_path}"], data_dir, cache_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "on 2 replica(s)" in result.stderr
  assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 8


@pytest.mark.parametrize("dataset", ["mnist", "binarized_mnist"])
def test_plain_vae_smoke_on_mnist_variants(dataset, tmp_path, data_dir, cache_dir, monkeypatch):
  """In process (the binary's path is the Omniglot runs above): both MNIST data routes."""
  config = _smoke_config(dataset, data_dir, cache_dir, monkeypatch, **{
      "model.skip": False, "train.epochs": 1, "train.num_logged_samples": 0})
  training.train_and_evaluate(config, str(tmp_path))
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  assert metrics["dataset"] == dataset and metrics["skip"] is False and metrics["steps"] == 8
  assert "TFDS" in metrics["data_source"]


@pytest.mark.parametrize("args,message", [
    (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    (["--config.model.no_such_field=1"], "cannot use --config.model.no_such_field=1"),
    (["--config=configs/no_such_config.py"], "No such file or directory"),
    (["--skip=maybe"], "flag --skip=maybe: Non-boolean argument to boolean flag 'maybe'"),
    (["--data_dir=/no/such/folder"], "data directory /no/such/folder (from --data_dir) does not"),
])
def test_bad_flags_stop_with_a_one_line_error(args, message, tmp_path, data_dir, cache_dir):
  """Through the binary: absl flags, overrides and the data folder (impossible config values
  are tests/test_config.py's, sizes below, in process)."""
  workdir = tmp_path / "run"
  result = _run(["--smoke", f"--workdir={workdir}", *args], data_dir, cache_dir, timeout=120)
  assert result.returncode != 0
  assert message in result.stderr and "Traceback" not in result.stderr
  assert not workdir.exists()  # Nothing is left behind.


@pytest.mark.parametrize("overrides,message", [
    ({"train.batch_size": 100000}, "train.batch_size=100000: 256 training examples"),
    ({"data.validation_size": 1000000},
     "data.validation_size=1000000: cannot hold out 1000000 of the 24345 examples"),
    ({"data.data_dir": "EMPTY"}, "missing data file omniglot/images_background.npz"),
])
def test_impossible_sizes_and_missing_data_stop_before_anything_is_written(
    overrides, message, tmp_path, data_dir, cache_dir, monkeypatch):
  """In process, on the real Omniglot files: the errors the binary prints in one line. An
  empty data folder comes with an empty cache (cached arrays would need no files)."""
  missing = "EMPTY" in overrides.values()
  (tmp_path / "empty").mkdir()
  overrides = {k: str(tmp_path / "empty") if v == "EMPTY" else v for k, v in overrides.items()}
  config = _smoke_config("omniglot", data_dir, tmp_path / "cache" if missing else cache_dir,
                         monkeypatch, **overrides)
  with pytest.raises(errors.SkipVaeError, match=re.escape(message)) as raised:
    training.Trainer(config, str(tmp_path / "run"))
  assert "\n" not in str(raised.value)
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("body,message", [
    ("def get_config(:\n", "SyntaxError: invalid syntax"),
    ("def get_config():\n  return None\n", "Unexpected None value for flag config"),
    ("import no_such_module_here\n", "No module named 'no_such_module_here'"),
    ("x\x00y\n", "cannot contain null bytes"),
])
def test_a_broken_config_file_stops_with_a_one_line_error(body, message, tmp_path, data_dir,
                                                          cache_dir):
  config = tmp_path / "broken.py"
  config.write_text(body)
  result = _run(["--smoke", f"--workdir={tmp_path / 'run'}", f"--config={config}"], data_dir,
                cache_dir, timeout=120)
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert f"train.py: error: cannot use --config={config}" in result.stderr
  assert message in result.stderr


# SIGTERM through the binary (what schedulers and `kill` send); SIGINT (Ctrl-C) takes the same
# path, its handler tested in process (tests/test_stop_signals.py).
@pytest.mark.parametrize("signal_number", [signal.SIGTERM])
def test_a_stop_signal_writes_a_checkpoint_and_the_run_resumes(signal_number, tmp_path,
                                                               data_dir, cache_dir):
  args = ["--smoke", "--dataset=omniglot", "--config.train.epochs=50",
          "--config.train.log_every_steps=1", "--config.train.num_logged_samples=0",
          f"--workdir={tmp_path}"]
  env = dict(os.environ, SKIP_VAE_DATA_DIR=str(data_dir), SKIP_VAE_CACHE_DIR=str(cache_dir),
             TF_CPP_MIN_LOG_LEVEL="2")
  process = subprocess.Popen([sys.executable, TRAIN, *args], env=env, stderr=subprocess.PIPE,
                             text=True)
  try:
    deadline = time.time() + 300
    for line in process.stderr:  # Wait until training runs (step 3 logged), then signal.
      if "step 3/" in line or time.time() > deadline:
        break
    process.send_signal(signal_number)
    rest = process.communicate(timeout=120)[1]
  finally:
    process.kill()
  assert process.returncode == 128 + signal_number
  stopped = next(l for l in rest.splitlines() if l.startswith("train.py: stopped:"))
  step = int(stopped.split(" at step ")[1].split(";")[0])
  assert step >= 3 and (tmp_path / "checkpoints" / f"ckpt-{step}.index").exists()
  assert "Traceback" not in rest
  # One more step after the resume is enough to show it continues from the checkpoint.
  resumed = _run([*args, f"--config.train.max_steps={step + 1}"], data_dir, cache_dir)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"Resumed from step {step}" in resumed.stderr
  assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == step + 1
