"""bin/train.py under MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 (TF_CONFIG),
killed and restarted; identical weights, and only the chief writes the run's files."""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time

from conftest import REPO_ROOT

TRAIN = str(REPO_ROOT / "bin" / "train.py")
ARGS = ["--smoke", "--dataset=omniglot", "--skip=true", "--config.train.max_steps=8",
        "--config.train.checkpoint_every_steps=2"]
TIMEOUT = 300  # Seconds any one phase may take; processes are killed after it.


def _free_ports(count: int) -> list[int]:
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _start_workers(workdir: pathlib.Path, data_dir, cache_dir, logs: pathlib.Path,
                   attempt: str) -> list[subprocess.Popen]:
  ports = _free_ports(2)
  workers = []
  for index in range(2):
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                 "task": {"type": "worker", "index": index}}
    env = dict(os.environ, SKIP_VAE_DATA_DIR=str(data_dir), SKIP_VAE_CACHE_DIR=str(cache_dir),
               TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(tf_config))
    log = open(logs / f"{attempt}_worker{index}.log", "w")  # pylint: disable=consider-using-with
    workers.append(subprocess.Popen([sys.executable, TRAIN, *ARGS, f"--workdir={workdir}"],
                                    env=env, stdout=log, stderr=subprocess.STDOUT))
  return workers


def _kill(processes: list[subprocess.Popen]) -> None:
  for process in processes:
    if process.poll() is None:
      process.kill()
    process.wait()


def _wait_for(predicate, what: str) -> None:
  deadline = time.time() + TIMEOUT
  while not predicate():
    assert time.time() < deadline, f"timed out waiting for {what}"
    time.sleep(0.2)


def _latest_checkpoint_step(workdir: pathlib.Path) -> int:
  """The step of the newest checkpoint the chief has recorded, or -1 before the first."""
  try:
    record = (workdir / "checkpoints" / "checkpoint").read_text()
  except FileNotFoundError:
    return -1
  match = re.search(r'model_checkpoint_path: "ckpt-(\d+)"', record)
  return int(match.group(1)) if match else -1


def test_two_workers_survive_a_kill_train_identically_and_only_the_chief_writes(
    tmp_path, data_dir, cache_dir):
  workdir, logs = tmp_path / "run", tmp_path / "logs"
  logs.mkdir()
  workers = _start_workers(workdir, data_dir, cache_dir, logs, "first")
  other_pids = [workers[1].pid]
  try:
    def at_step_4():
      for index, worker in enumerate(workers):
        assert worker.poll() is None, (logs / f"first_worker{index}.log").read_text()[-3000:]
      return _latest_checkpoint_step(workdir) >= 4
    _wait_for(at_step_4, "step 4 on the chief")
    workers[1].kill()  # One worker dies; the chief cannot go on alone: restart both.
    workers[1].wait()
    _kill(workers)
    workers = _start_workers(workdir, data_dir, cache_dir, logs, "second")
    other_pids.append(workers[1].pid)
    _wait_for(lambda: all(w.poll() is not None for w in workers), "the restarted run")
  finally:
    _kill(workers)
  outputs = [(logs / f"second_worker{i}.log").read_text() for i in range(2)]
  for output, worker in zip(outputs, workers):
    assert worker.returncode == 0, output[-3000:]
    resumed = re.search(r"Resumed from step (\d+)", output)
    assert resumed and int(resumed.group(1)) >= 4, output[-3000:]
    assert "on 2 replica(s)" in output
  fingerprints = [re.search(r"weights fingerprint at step 8: (\w+)", o).group(1)
                  for o in outputs]
  assert fingerprints[0] == fingerprints[1]
  # Only the chief (worker 0) wrote summaries and metrics: event files carry the writer's pid.
  event_names = [e.name for e in workdir.rglob("events.out.tfevents.*")]
  assert any(f".{workers[0].pid}." in name for name in event_names)
  assert not any(f".{pid}." in name for name in event_names for pid in other_pids)
  assert json.loads((workdir / "metrics.json").read_text())["steps"] == 8
  assert not (workdir / ".worker1").exists()  # Worker 1's private checkpoints are gone.
