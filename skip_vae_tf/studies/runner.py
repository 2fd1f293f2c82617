"""Running a study's grid: train, then evaluate, each run that has not been; resumably.

Each run is an ordinary training workdir (STUDY_FOLDER/runs/<name>), claimed by the process
that trains it (`run_lock`: shards, children and a second study process on the same folder
skip a claimed run, and child processes end with their parent): a run with
metrics.json has finished training, one with an eval_test.json of the study's K has been
evaluated; anything else is (re)started, and training resumes from its last checkpoint, so
killing a study loses at most a checkpoint interval. `--shard=i/n` takes every n-th run;
`--parallel=N` starts N child processes, each with a shard of this one's runs (and, on a
machine with GPUs, one GPU). `reuse_from` names other study folders whose finished runs of
the same resolved config are copied instead of trained (studies/reuse.py).
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

from absl import logging
import keras
import tensorflow as tf

from skip_vae_tf import atomic
from skip_vae_tf import errors
from skip_vae_tf import evaluation
from skip_vae_tf import progress
from skip_vae_tf import run_lock
from skip_vae_tf import stop_signals
from skip_vae_tf import training
from skip_vae_tf import workdir as workdir_lib
from skip_vae_tf.studies import reuse
from skip_vae_tf.studies import spec as spec_lib

EVAL_FILE = "eval_test.json"
STUDY_FILE = "study.json"


class StudyError(errors.SkipVaeError):
  """Runs of a study failed; the others finished (run the same command to retry)."""


def run_folder(folder: pathlib.Path, run: spec_lib.Run) -> pathlib.Path:
  return folder / spec_lib.RUNS_FOLDER / run.name


def is_trained(folder: pathlib.Path, run: spec_lib.Run) -> bool:
  return (run_folder(folder, run) / workdir_lib.METRICS_FILE).is_file()


def is_evaluated(study: spec_lib.Study, folder: pathlib.Path, run: spec_lib.Run) -> bool:
  """Whether the run's test evaluation exists with the study's K and sample count."""
  path = run_folder(folder, run) / EVAL_FILE
  try:
    result = json.loads(path.read_text())
  except (OSError, json.JSONDecodeError):
    return False
  return (result.get("iw_samples") == study.evaluation.iw_samples
          and len(result.get("samples", {}).get("originals", ()))
          == study.evaluation.num_samples)


def pending_runs(study: spec_lib.Study, folder: pathlib.Path) -> list[str]:
  """Names of the study's runs not yet trained and evaluated (by any shard)."""
  return [run.name for run in study.runs()
          if not (is_trained(folder, run) and is_evaluated(study, folder, run))]


def _record_study(study: spec_lib.Study, folder: pathlib.Path) -> None:
  folder.mkdir(parents=True, exist_ok=True)
  atomic.write_text(folder / STUDY_FILE, json.dumps(
      {"study": study.source, "config": json.loads(study.config.to_json_best_effort()),
       "runs": [run.name for run in study.runs()]}, indent=2))


class _Progress:
  """One line per phase of each run, with the study's elapsed time and an ETA from the
  runs this process finished (runs found finished are not counted)."""

  def __init__(self, name: str, total: int):
    self.name, self.total, self.start, self.durations = name, total, time.time(), []

  def line(self, index: int, run: spec_lib.Run, phase: str, done: bool = False) -> None:
    elapsed = time.time() - self.start
    eta = "unknown"
    if self.durations:
      remaining = self.total - index - int(done)
      eta = progress.format_duration(remaining * sum(self.durations) / len(self.durations))
    logging.info("study %s: run %d/%d %s: %s (elapsed %s, ETA %s)", self.name, index + 1,
                 self.total, run.name, phase, progress.format_duration(elapsed), eta)


def _evaluated_alike(study: spec_lib.Study, study_folder: pathlib.Path) -> bool:
  """Whether the study in `study_folder` evaluates its runs as `study` does."""
  try:
    recorded = json.loads((study_folder / STUDY_FILE).read_text())["config"]["evaluation"]
  except (OSError, json.JSONDecodeError, KeyError):
    return False
  return recorded == study.evaluation.to_dict()


def _train_or_copy(study: spec_lib.Study, workdir: pathlib.Path, run: spec_lib.Run,
                   reuse_from: tuple[pathlib.Path, ...]) -> bool:
  """Trains `run`, or copies its twin from a `reuse_from` study folder when it has one and
  this run has not started training (its test evaluation too, if evaluated alike); True
  when copied."""
  config = study.run_config(run)
  source = None
  if reuse_from and not (workdir / workdir_lib.CONFIG_FILE).is_file():
    source = reuse.twin(config, reuse_from)
  if source is None:
    training.train_and_evaluate(config, str(workdir))
    return False
  logging.info("study %s: run %s has the config of %s: copied, not trained", study.name,
               run.name, source)
  reuse.copy_run(source, workdir, leave_out=() if _evaluated_alike(study, source.parents[1])
                 else (EVAL_FILE,))
  return True


def _run_one(study: spec_lib.Study, folder: pathlib.Path, run: spec_lib.Run,
             reuse_from: tuple[pathlib.Path, ...]) -> bool:
  """Trains (or copies) and evaluates `run` as needed; True when it was copied."""
  workdir = run_folder(folder, run)
  copied = False
  if not is_trained(folder, run):
    copied = _train_or_copy(study, workdir, run, reuse_from)
    keras.backend.clear_session()
  if not is_evaluated(study, folder, run):
    evaluation.evaluate_run(str(workdir), evaluation.EvaluationRequest(
        iw_samples=study.evaluation.iw_samples, max_examples=study.evaluation.max_examples,
        num_samples=study.evaluation.num_samples))
    keras.backend.clear_session()
  return copied


def run_runs(study: spec_lib.Study, folder: pathlib.Path, runs: list[spec_lib.Run],
             reuse_from: tuple[pathlib.Path, ...] = ()) -> None:
  """Trains (or copies from the study folders `reuse_from`) and evaluates `runs` in this
  process, one after another.

  Raises:
    TrainingInterrupted: SIGINT/SIGTERM (the run's checkpoint is written first).
    StudyError: some runs failed with one of the project's errors; the others went on.
  """
  _record_study(study, folder)
  meter, failed = _Progress(study.name, len(runs)), []
  for index, run in enumerate(runs):
    if is_trained(folder, run) and is_evaluated(study, folder, run):
      meter.line(index, run, "finished before", done=True)
      continue
    workdir = workdir_lib.Workdir(run_folder(folder, run))
    try:
      workdir.prepare()  # The run is this process's until it is trained and evaluated.
    except run_lock.RunBusyError as busy:
      meter.line(index, run, f"skipped: {busy}", done=True)
      continue
    meter.line(index, run, "training" if not is_trained(folder, run) else "evaluating")
    start = time.time()
    try:
      copied = _run_one(study, folder, run, reuse_from)
    except training.TrainingInterrupted:
      raise
    except errors.SkipVaeError as error:
      logging.error("study %s: run %s failed: %s", study.name, run.name, error)
      failed.append(f"{run.name} ({error})")
      continue
    finally:
      workdir.release()
    if copied:  # Not a training run's duration: left out of the ETA.
      meter.line(index, run, "copied from another study", done=True)
      continue
    meter.durations.append(time.time() - start)
    meter.line(index, run, f"done in {progress.format_duration(meter.durations[-1])}",
               done=True)
  if failed:
    raise StudyError(f"{len(failed)} of {len(runs)} runs failed: {'; '.join(failed)}; run "
                     "the same command to retry them (finished runs are kept)")


def _child_environment(child: int) -> dict[str, str]:
  """The environment of child number `child`: on a machine with GPUs, one GPU each (round
  robin, through CUDA_VISIBLE_DEVICES); on CPUs, the parent's."""
  environment = dict(os.environ)
  gpus = len(tf.config.list_physical_devices("GPU"))
  if gpus:
    environment["CUDA_VISIBLE_DEVICES"] = str(child % gpus)
  return environment


def run_in_children(argv_of_shard, shards: list[tuple[int, int]]) -> None:
  """Starts one `bin/study.py` child per shard ((index, count)), each on its own GPU where
  there are GPUs, and waits for all; Ctrl-C (or SIGTERM) is passed on, and every child
  checkpoints and stops.

  `argv_of_shard(index, count)` is a child's command line.
  """
  children = [subprocess.Popen(argv_of_shard(i, n), env=_child_environment(child),
                               preexec_fn=stop_signals.stop_with_parent(os.getpid()))
              for child, (i, n) in enumerate(shards)]

  def forward(signal_number, _):
    for child in children:
      child.send_signal(signal_number)

  previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    codes = [child.wait() for child in children]
  finally:
    for signal_number, handler in previous.items():
      signal.signal(signal_number, handler)
  if any(codes):
    raise StudyError(f"child processes exited with {codes} (their errors are above); run "
                     "the same command to resume")


def child_argv(study_source: str, folder: pathlib.Path, index: int, count: int,
               reuse_from: tuple[pathlib.Path, ...] = ()) -> list[str]:
  """The command line of a child running shard index/count without a report."""
  script = pathlib.Path(__file__).resolve().parents[2] / "bin" / "study.py"
  return [sys.executable, str(script), f"--study={study_source}", f"--folder={folder}",
          f"--shard={index}/{count}", "--parallel=1", "--noreport",
          f"--reuse_runs_from={','.join(str(f) for f in reuse_from)}"]
