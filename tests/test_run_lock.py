"""One process per workdir, with real processes: a live holder refuses training, evaluation,
export and a study's run; a SIGKILLed holder leaves no stale lock; study children end with
their parent; a folder that holds no run, the root and the home folder are never written."""

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from skip_vae_tf import config as config_lib
from skip_vae_tf import evaluation
from skip_vae_tf import export
from skip_vae_tf import run_lock
from skip_vae_tf import training
from skip_vae_tf import workdir as workdir_lib
from skip_vae_tf.studies import runner
from skip_vae_tf.studies import spec

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
# Another process holding a folder (run_lock alone: no TensorFlow to import).
_HOLD = textwrap.dedent("""
    import pathlib, sys, time
    sys.path.insert(0, {root!r})
    from skip_vae_tf import run_lock
    folder = pathlib.Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    run_lock.claim(folder)
    print("held", flush=True)
    time.sleep(600)
""")


@pytest.fixture
def holder(tmp_path):
  """A separate live process holding tmp_path/run (yielded: (folder, process))."""
  folder = tmp_path / "run"
  process = subprocess.Popen(
      [sys.executable, "-c", _HOLD.format(root=str(REPO_ROOT)), str(folder)],
      stdout=subprocess.PIPE, text=True)
  assert process.stdout.readline().strip() == "held"
  yield folder, process
  process.kill()
  process.wait()


def _write_config(folder: pathlib.Path) -> None:
  config = config_lib.resolve(config_lib.load_file("configs/omniglot.py", REPO_ROOT),
                              smoke=True)
  workdir_lib.Workdir(folder).write_text(workdir_lib.CONFIG_FILE,
                                         config.to_json_best_effort())


def test_a_live_holder_refuses_a_second_claim_naming_its_pid(holder):
  folder, process = holder
  with pytest.raises(run_lock.RunBusyError, match=f"in use by .*pid {process.pid} "):
    workdir_lib.Workdir(folder).prepare()


def test_a_killed_holder_leaves_no_stale_lock(holder):
  folder, process = holder
  process.send_signal(signal.SIGKILL)
  process.wait()
  run = workdir_lib.Workdir(folder)
  run.prepare()
  assert f"pid {os.getpid()} " in run_lock.holder(folder)
  run.release()


def test_claims_in_one_process_nest_and_release_to_other_processes(tmp_path):
  outer, inner = workdir_lib.Workdir(tmp_path), workdir_lib.Workdir(tmp_path)
  outer.prepare()
  inner.prepare()  # A study's run, claimed again by its training: the same process.
  inner.release()
  probe = [sys.executable, "-c", textwrap.dedent(f"""
      import pathlib, sys; sys.path.insert(0, {str(REPO_ROOT)!r})
      from skip_vae_tf import run_lock
      try:
        run_lock.claim(pathlib.Path({str(tmp_path)!r}))
      except run_lock.RunBusyError:
        sys.exit(3)
  """)]
  assert subprocess.run(probe, check=False).returncode == 3  # The outer claim still holds.
  outer.release()
  assert subprocess.run(probe, check=False).returncode == 0


def test_training_evaluation_and_export_refuse_a_held_run(holder):
  folder, _ = holder
  _write_config(folder)
  config = config_lib.resolve(config_lib.load_file("configs/omniglot.py", REPO_ROOT),
                              smoke=True)
  from conftest import synthetic_image_data  # pylint: disable=g-import-not-at-top
  with pytest.raises(run_lock.RunBusyError):
    training.Trainer(config, str(folder), synthetic_image_data())
  with pytest.raises(run_lock.RunBusyError):
    evaluation.evaluate_run(str(folder))
  with pytest.raises(run_lock.RunBusyError):
    export.export_run(str(folder), str(folder.parent / "export"))
  assert not (folder / "checkpoints").exists() and not (folder.parent / "export").exists()


def test_a_study_skips_a_run_another_process_holds(tmp_path):
  study = spec.Study("tiny", spec.study_config(
      "tiny", "configs/omniglot.py", models=("vae",), seeds=(0,), smoke=True), REPO_ROOT)
  (run,) = study.runs()
  folder = runner.run_folder(tmp_path, run)
  process = subprocess.Popen(
      [sys.executable, "-c", _HOLD.format(root=str(REPO_ROOT)), str(folder)],
      stdout=subprocess.PIPE, text=True)
  try:
    assert process.stdout.readline().strip() == "held"
    runner.run_runs(study, tmp_path, [run])  # Skipped at once, nothing trained.
    assert sorted(p.name for p in folder.iterdir()) == [run_lock.MARKER]
    assert runner.pending_runs(study, tmp_path) == [run.name]
  finally:
    process.kill()
    process.wait()


def test_study_children_stop_when_their_parent_is_killed(tmp_path):
  pid_file = tmp_path / "child.pid"
  parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
      import os, subprocess, sys, time
      sys.path.insert(0, {str(REPO_ROOT)!r})
      from skip_vae_tf import stop_signals
      child = subprocess.Popen(
          [sys.executable, "-c", "import os, time; open({str(pid_file)!r}, 'w').write("
           "str(os.getpid())); time.sleep(600)"],
          preexec_fn=stop_signals.stop_with_parent(os.getpid()))
      child.wait()
  """)])
  deadline = time.time() + 60
  while not (pid_file.is_file() and pid_file.read_text()) and time.time() < deadline:
    time.sleep(0.1)
  child = int(pid_file.read_text())
  parent.send_signal(signal.SIGKILL)
  parent.wait()
  deadline = time.time() + 10
  while _alive(child) and time.time() < deadline:
    time.sleep(0.1)
  assert not _alive(child)


def _alive(pid: int) -> bool:
  """Whether `pid` runs (a zombie, reaped by init soon, counts as ended)."""
  try:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
      return stat.read().split(") ", 1)[1][0] != "Z"
  except FileNotFoundError:
    return False


def test_a_folder_that_holds_no_run_is_refused_unless_allowed(tmp_path):
  (tmp_path / "metrics.json").write_text("keep")
  with pytest.raises(workdir_lib.WorkdirError, match="not empty and holds no run.*"
                                                     "--allow_foreign_workdir"):
    workdir_lib.Workdir(tmp_path).prepare()
  assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
  workdir_lib.Workdir(tmp_path).prepare(allow_foreign=True)
  assert (tmp_path / run_lock.MARKER).is_file()


def test_a_run_written_before_the_marker_is_still_a_run(tmp_path):
  _write_config(tmp_path)
  run = workdir_lib.Workdir(tmp_path)
  assert run.is_run()
  run.prepare()
  run.release()


def test_a_foreign_config_json_is_named_as_such(tmp_path):
  (tmp_path / "config.json").write_text('{"name": "another project"}')
  with pytest.raises(workdir_lib.WorkdirError, match="not a config of this project"):
    workdir_lib.Workdir(tmp_path).saved_config()


@pytest.mark.parametrize("folder", ["/", str(pathlib.Path.home())])
def test_the_root_and_home_folders_are_never_workdirs(folder):
  with pytest.raises(workdir_lib.WorkdirError, match="filesystem root or the home folder"):
    workdir_lib.Workdir(folder).prepare(allow_foreign=True)


def test_a_dangling_symlink_workdir_names_its_target(tmp_path):
  (tmp_path / "link").symlink_to(tmp_path / "gone")
  with pytest.raises(workdir_lib.WorkdirError, match="symbolic link to .*gone.*does not exist"):
    workdir_lib.Workdir(tmp_path / "link").prepare()


def test_a_refused_resume_gives_the_run_back_to_other_processes(tmp_path):
  config = config_lib.resolve(config_lib.load_file("configs/omniglot.py", REPO_ROOT),
                              smoke=True)
  config.model.encoder, config.model.decoder = "mlp", "mlp"
  _write_config(tmp_path)  # Another model's run (the official networks).
  from conftest import synthetic_image_data  # pylint: disable=g-import-not-at-top
  with pytest.raises(workdir_lib.WorkdirMismatchError):
    training.Trainer(config, str(tmp_path), synthetic_image_data())
  probe = subprocess.run([sys.executable, "-c", _HOLD.format(root=str(REPO_ROOT)).replace(
      "time.sleep(600)", ""), str(tmp_path)], capture_output=True, text=True, check=False)
  assert probe.returncode == 0, probe.stderr[-500:]
