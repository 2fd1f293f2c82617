"""Surviving SIGKILL: runs killed mid-step, mid-evaluation and mid-checkpoint-write resume
from their last complete checkpoint and, with deterministic ops, end exactly where an
uninterrupted run ends."""

import json
import os
import pathlib
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT

TRAIN = str(REPO_ROOT / "bin" / "train.py")
# Smoke Omniglot: 16 steps (2 epochs of 8), validation at steps 8 and 16.
ARGS = ["--smoke", "--dataset=omniglot", "--skip=true", "--config.train.deterministic=true",
        "--config.train.checkpoint_every_steps=3"]
# Weights of the killed-and-resumed run may differ from the uninterrupted run's by at most
# this much (with deterministic ops on one CPU they are bitwise equal).
WEIGHT_TOLERANCE = 0.0


def _env(data_dir, cache_dir) -> dict[str, str]:
  return dict(os.environ, SKIP_VAE_DATA_DIR=str(data_dir), SKIP_VAE_CACHE_DIR=str(cache_dir),
              TF_CPP_MIN_LOG_LEVEL="2")


def _start(workdir: pathlib.Path, data_dir, cache_dir) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, TRAIN, *ARGS, f"--workdir={workdir}"],
                          env=_env(data_dir, cache_dir), stderr=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, text=True)


def _run_until(process: subprocess.Popen, kill_when, timeout: float = 300) -> bool:
  """Reads the run's log; SIGKILLs it as soon as `kill_when(line)` holds. True if killed."""
  deadline = time.time() + timeout
  try:
    for line in process.stderr:
      if kill_when(line):
        process.kill()
        process.wait()
        return True
      assert time.time() < deadline, "the run took too long"
    assert process.wait() == 0
    return False
  finally:
    if process.poll() is None:
      process.kill()
      process.wait()


def _kill_during_checkpoint_write(process: subprocess.Popen, workdir: pathlib.Path,
                                  timeout: float = 300) -> bool:
  """SIGKILLs the run while a checkpoint's temporary files exist (TF writes `ckpt-N_temp`
  first, then renames); True if it caught one. Drains the log meanwhile."""
  threading.Thread(target=process.stderr.read, daemon=True).start()
  deadline = time.time() + timeout
  try:
    while process.poll() is None and time.time() < deadline:
      for folder in (workdir / "checkpoints", workdir / "best"):
        if folder.is_dir() and any("_temp" in name for name in os.listdir(folder)):
          process.send_signal(signal.SIGKILL)
          process.wait()
          return True
      time.sleep(0.0005)
    return False
  finally:
    if process.poll() is None:
      process.kill()
      process.wait()


def _assert_checkpoints_complete(workdir: pathlib.Path) -> None:
  """Every checkpoint the state files name is complete and readable."""
  for folder in ("checkpoints", "best"):
    state = tf.train.get_checkpoint_state(str(workdir / folder))
    if state is None:
      continue
    for path in state.all_model_checkpoint_paths:
      reader = tf.train.load_checkpoint(path)
      assert reader.get_variable_to_shape_map()


def _model_weights(workdir: pathlib.Path) -> dict[str, np.ndarray]:
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(workdir / "checkpoints")))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
          if name.startswith(("model/", "optimizer/", "step", "kl_weight", "best_validation"))}


def _metrics(workdir: pathlib.Path) -> dict:
  result = json.loads((workdir / "metrics.json").read_text())
  return {key: result[key] for key in ("steps", "validation", "test")} | {
      "best": pathlib.Path(result["best_checkpoint"]).name}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_dir, cache_dir):
  workdir = tmp_path_factory.mktemp("uninterrupted") / "run"
  assert not _run_until(_start(workdir, data_dir, cache_dir), lambda line: False)
  return workdir


def test_sigkill_anywhere_then_resume_matches_an_uninterrupted_run(uninterrupted, tmp_path,
                                                                   data_dir, cache_dir):
  workdir = tmp_path / "run"
  kills = {
      # Between checkpoints (ckpt-3 exists), during the steps after the step-4 log line.
      "mid-step": lambda: _run_until(_start(workdir, data_dir, cache_dir),
                                     lambda line: "step 4/16" in line),
      # Step 8 ends epoch 1: validation runs right after its log line, before ckpt-8.
      "mid-evaluation": lambda: _run_until(_start(workdir, data_dir, cache_dir),
                                           lambda line: "step 8/16" in line),
      "mid-checkpoint-write": lambda: _kill_during_checkpoint_write(
          _start(workdir, data_dir, cache_dir), workdir),
  }
  resumed_from = []
  for phase, kill in kills.items():
    assert kill(), f"the run finished before it could be killed {phase}"
    _assert_checkpoints_complete(workdir)
    resumed_from.append(tf.train.latest_checkpoint(str(workdir / "checkpoints")))
  log = []
  assert not _run_until(_start(workdir, data_dir, cache_dir), lambda line: log.append(line))
  assert any("Resumed from step" in line for line in log)
  assert resumed_from[0].endswith("ckpt-3") and resumed_from[1].endswith(("ckpt-6", "ckpt-3"))
  expected, actual = _model_weights(uninterrupted), _model_weights(workdir)
  assert set(actual) == set(expected)
  for name, value in expected.items():
    np.testing.assert_allclose(actual[name], value, atol=WEIGHT_TOLERANCE, rtol=0, err_msg=name)
  assert _metrics(workdir) == _metrics(uninterrupted)


def _limit_file_size(max_bytes: int):
  """preexec_fn: files the run writes cannot grow past max_bytes (writes fail with EFBIG,
  as on a full disk; Python ignores the SIGXFSZ that comes with it)."""
  def limit():
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
  return limit


def _train(workdir, data_dir, cache_dir, *extra, preexec_fn=None, prefix=()):
  return subprocess.run([*prefix, sys.executable, TRAIN, *ARGS, f"--workdir={workdir}", *extra],
                        env=_env(data_dir, cache_dir), capture_output=True, text=True,
                        timeout=300, check=False, preexec_fn=preexec_fn)


def test_full_disk_at_a_checkpoint_is_one_error_and_leaves_the_last_checkpoint(
    uninterrupted, tmp_path, data_dir, cache_dir):
  workdir = tmp_path / "run"
  shutil.copytree(uninterrupted, workdir)
  before = {p.name: p.read_bytes() for p in (workdir / "checkpoints").iterdir()}
  # 100 kB: the event files still grow, the 150 kB checkpoint data file cannot be written.
  result = _train(workdir, data_dir, cache_dir, "--config.train.epochs=3",
                  preexec_fn=_limit_file_size(100_000))
  assert result.returncode == 1, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("train.py: error: cannot write the step-18 checkpoint to") and (
      "ckpt-16 is intact" in last), result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  assert tf.train.latest_checkpoint(str(workdir / "checkpoints")).endswith("ckpt-16")
  for name, content in before.items():
    assert (workdir / "checkpoints" / name).read_bytes() == content, name
  _assert_checkpoints_complete(workdir)
  # Space again: the same command resumes from step 16.
  result = _train(workdir, data_dir, cache_dir, "--config.train.epochs=3")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Resumed from step 16" in result.stderr


def test_full_disk_when_resuming_is_one_error_naming_the_event_file(uninterrupted, tmp_path,
                                                                     data_dir, cache_dir):
  workdir = tmp_path / "run"
  shutil.copytree(uninterrupted, workdir)
  # 10 bytes: Python and TF start, no new TensorBoard event file can be begun.
  result = _train(workdir, data_dir, cache_dir, "--config.train.epochs=3",
                  preexec_fn=_limit_file_size(10))
  assert result.returncode == 1, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f"train.py: error: cannot open a TensorBoard event file in "
                         f"{workdir / 'train'} (") and "{{function_node" not in last, last
  assert "Traceback" not in result.stderr
  assert tf.train.latest_checkpoint(str(workdir / "checkpoints")).endswith("ckpt-16")


@pytest.mark.parametrize("breakage, message", [
    ("file", "exists and is not a folder"),
    ("corrupt_config", "config.json (Expecting value"),
])
def test_unusable_workdir_is_one_error(breakage, message, tmp_path, data_dir, cache_dir):
  workdir = tmp_path / "run"
  if breakage == "file":
    workdir.write_text("not a folder")
  else:
    workdir.mkdir()
    (workdir / "config.json").write_text("")
  result = _train(workdir, data_dir, cache_dir)
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("train.py: error:") and message in last, result.stderr[-2000:]
  assert "Traceback" not in result.stderr


# Root reads any folder: as root, run without the capabilities that let it (util-linux setpriv).
_WITHOUT_ROOT_FILE_ACCESS = (
    ("setpriv", "--inh-caps=-dac_override,-dac_read_search",
     "--bounding-set=-dac_override,-dac_read_search") if os.geteuid() == 0 else ())


def test_unreadable_workdir_is_one_error(tmp_path, data_dir, cache_dir):
  if _WITHOUT_ROOT_FILE_ACCESS and shutil.which("setpriv") is None:
    pytest.skip("running as root without util-linux setpriv: root reads any folder")
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "config.json").write_text("{}")
  workdir.chmod(0o000)
  try:
    result = _train(workdir, data_dir, cache_dir, prefix=_WITHOUT_ROOT_FILE_ACCESS)
  finally:
    workdir.chmod(0o755)
  assert result.returncode == 1, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("train.py: error:") and str(workdir) in last, result.stderr[-2000:]
  assert ("Permission denied" in last or "not readable and writable" in last), last
  assert "Traceback" not in result.stderr
  assert (workdir / "config.json").read_text() == "{}"


def test_checkpoints_of_another_model_are_refused_not_partly_loaded(uninterrupted, tmp_path,
                                                                     data_dir, cache_dir):
  workdir = tmp_path / "run"
  shutil.copytree(uninterrupted, workdir)
  saved = json.loads((workdir / "config.json").read_text())
  saved["model"]["latent_dim"] = 6  # config.json now agrees with the run below; the weights not.
  (workdir / "config.json").write_text(json.dumps(saved))
  result = _train(workdir, data_dir, cache_dir, "--config.model.latent_dim=6")
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("train.py: error: checkpoint") and "does not hold the model" in last and (
      "shape" in last), result.stderr[-2000:]
  assert "Traceback" not in result.stderr
