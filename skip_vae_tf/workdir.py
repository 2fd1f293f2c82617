"""The run directory: its layout, its saved config, its checkpoints and its small files.

Nothing else in the project spells a path inside a workdir. Layout:
  .skip_vae_run          marks a run of this project; its lock says which process uses it
  config.json            the config the run was started with (a resume must match it)
  checkpoints/           latest checkpoints (tf.train.CheckpointManager, atomic writes)
  best/                  the checkpoint with the best validation negative ELBO
  train/, validation/    TensorBoard event files (hparams session at the workdir root)
  validation_subset/     TensorBoard events of the periodic in-epoch check
  eval/                  TensorBoard scalars of bin/evaluate.py
  metrics.json           final validation and test metrics
  metrics.jsonl          every logged train and validation scalar, one JSON object a line
  eval_<split>.json|md   reports of bin/evaluate.py
  vocabulary.txt         text runs: the vocabulary, `word id` per line
  .worker<i>/            private checkpoints of non-chief workers (removed at the end)
"""

import json
import os
import pathlib
import re
import shutil

from absl import logging
import ml_collections
import tensorflow as tf

from skip_vae_tf import atomic
from skip_vae_tf import config as config_lib
from skip_vae_tf import errors
from skip_vae_tf import run_lock
from skip_vae_tf import vocabulary as vocab

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
SCALAR_LOG = "metrics.jsonl"
VOCABULARY_FILE = "vocabulary.txt"
CHECKPOINTS, BEST = "checkpoints", "best"
TRAIN_LOGS, VALIDATION_LOGS, EVAL_LOGS = "train", "validation", "eval"
CHECK_LOGS = "validation_subset"  # Training's periodic in-epoch check.
# Config sections that define what a checkpoint holds; a resume must not change them.
_CHECKPOINT_DEFINING = ("model", "data")
# Where the data are looked for, how many time steps of logits the text likelihood holds at
# once, and how SA-VAE training differentiates through its refinement may change between a
# run and its resume or evaluation: the weights are the same.
_FREE_FIELDS = ("data_dir", "cache_dir", "softmax_chunk", "svi_second_order")


class WorkdirError(errors.SkipVaeError):
  """The workdir cannot be used: not a folder, not readable and writable, corrupt config."""


class WorkdirMismatchError(errors.SkipVaeError):
  """The workdir holds a run whose model or data config differs from the requested one."""


class CheckpointWriteError(errors.SkipVaeError):
  """A checkpoint could not be written (full disk, lost permissions); earlier ones are intact."""


class CheckpointDamagedError(errors.SkipVaeError):
  """A checkpoint's files are truncated or corrupt."""


class CheckpointMismatchError(errors.SkipVaeError):
  """A run's checkpoint does not hold the variables its config.json describes."""


def default_path(config: ml_collections.ConfigDict, smoke: bool) -> str:
  """runs/<dataset>_<vae|skip_vae|sa_vae|skip_sa_vae>[_smoke], relative to the current
  directory."""
  return os.path.join("runs", f"{config.data.name}_{config_lib.model_name(config)}"
                              f"{'_smoke' if smoke else ''}")


def checkpoint_step(path: str) -> int:
  """The training step a checkpoint path ('.../ckpt-<step>') was written at."""
  return int(path.rsplit("-", 1)[-1])


class Workdir:
  """One run directory (see the module docstring for its layout)."""

  def __init__(self, path: str | os.PathLike):
    self.path = pathlib.Path(path)
    self._claim = None

  def __truediv__(self, name: str) -> pathlib.Path:
    return self.path / name

  def is_run(self) -> bool:
    """Whether the folder holds a run of this project: its marker, or (runs written before
    the marker existed, damaged ones) a config.json, which `saved_config` checks."""
    return (self.path / run_lock.MARKER).is_file() or (self.path / CONFIG_FILE).is_file()

  def prepare(self, allow_foreign: bool = False, claim: bool = True) -> None:
    """Creates the workdir, or checks that an existing one is a readable, writable run
    folder, and (if `claim`) claims it for this process (`run_lock`) until `release()`.

    A non-empty folder that holds no run of this project is refused unless
    `allow_foreign`; the filesystem root and the home folder always are.

    Raises:
      WorkdirError: the folder cannot or must not be used (one line saying why).
      RunBusyError: another live process holds the run.
    """
    path = self.path
    resolved = path.resolve()
    if resolved in (pathlib.Path(path.anchor or "/").resolve(), pathlib.Path.home().resolve()):
      raise WorkdirError(f"workdir {path} is the filesystem root or the home folder; give a "
                         "folder of its own, e.g. --workdir=runs/my_run")
    if path.is_symlink() and not path.exists():
      raise WorkdirError(f"workdir {path} is a symbolic link to {os.readlink(path)}, which "
                         "does not exist; create that folder or give another --workdir")
    if path.exists() and not path.is_dir():
      raise WorkdirError(f"workdir {path} exists and is not a folder")
    if path.is_dir() and not os.access(path, os.R_OK | os.W_OK | os.X_OK):
      raise WorkdirError(f"workdir {path} is not readable and writable by this user")
    if (path.is_dir() and not allow_foreign and not self.is_run()
        and any(True for _ in _listing(path))):
      raise WorkdirError(
          f"workdir {path} is not empty and holds no run of this project (no "
          f"{run_lock.MARKER} or config.json): give a new or empty folder, or pass "
          "--allow_foreign_workdir to write into it anyway")
    try:
      path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
      raise WorkdirError(f"cannot use workdir {path}: {error.strerror or error}") from error
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
      raise WorkdirError(f"workdir {path} is not readable and writable by this user")
    if claim:
      self._take()

  def claim(self) -> None:
    """Claims an existing run for this process until `release()` (evaluation, export).

    Raises:
      WorkdirError: the folder holds no run, or its marker cannot be opened.
      RunBusyError: another live process holds the run.
    """
    if not self.path.is_dir() or not self.is_run():
      raise WorkdirError(f"{self.path / CONFIG_FILE} not found: is {self.path} a training "
                         "workdir?")
    if not os.access(self.path, os.W_OK) and not (self.path / run_lock.MARKER).exists():
      return  # A read-only run without a marker: no process can write into it.
    self._take()

  def _take(self) -> None:
    try:
      self._claim = run_lock.claim(self.path)
    except OSError as error:
      raise WorkdirError(f"cannot open {self.path / run_lock.MARKER} "
                         f"({error.strerror or error})") from error

  def release(self) -> None:
    """Gives up this object's claim of the run (nothing when it holds none)."""
    claim, self._claim = self._claim, None
    if claim is not None:
      claim.release()

  def check_writable(self) -> None:
    """WorkdirError when files cannot be written into the workdir (before long work)."""
    if not os.access(self.path, os.W_OK | os.X_OK):
      raise WorkdirError(f"workdir {self.path} is not writable by this user: fix its "
                         "permissions or copy the run to a writable folder")

  def clear_worker_dir(self, task_id: int) -> pathlib.Path:
    """Removes the private folder of non-chief worker `task_id` (its checkpoints; cleared
    at the start of a run and removed at its end); returns its path."""
    path = self.path / f".worker{task_id}"
    shutil.rmtree(path, ignore_errors=True)
    return path

  def saved_config(self) -> dict | None:
    """config.json as a dict, None when absent; WorkdirError when unreadable."""
    path = self.path / CONFIG_FILE
    if not path.exists():
      return None
    try:
      saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
      raise WorkdirError(f"cannot read {path} ({error}): is {self.path} a training workdir? "
                         "Use another --workdir, or restore the file") from error
    if not (isinstance(saved, dict)
            and all(isinstance(saved.get(k), dict) for k in _CHECKPOINT_DEFINING)):
      raise WorkdirError(f"{path} is not a config of this project (no model and data "
                         f"sections): is {self.path} a training workdir? Use another "
                         "--workdir, or restore the file")
    return saved

  def load_config(self) -> ml_collections.ConfigDict:
    """The run's config (config.json over today's defaults)."""
    saved = self.saved_config()
    if saved is None:
      raise WorkdirError(f"{self.path / CONFIG_FILE} not found: is {self.path} a training "
                         "workdir?")
    return config_lib.from_saved(saved)

  def check_config(self, config: ml_collections.ConfigDict, write: bool = True) -> None:
    """Writes config.json on the first run (if `write`); on a resume, refuses a changed
    model or data section (WorkdirMismatchError naming the first difference)."""
    current = json.loads(config.to_json_best_effort())
    saved = self.saved_config()
    if saved is None:
      if write:
        self.write_text(CONFIG_FILE, json.dumps(current, indent=2, sort_keys=True))
      return
    for section in _CHECKPOINT_DEFINING:
      for key in sorted(set(saved.get(section, {})) | set(current[section])):
        old, new = saved.get(section, {}).get(key), current[section].get(key)
        if key not in _FREE_FIELDS and old != new:
          raise WorkdirMismatchError(
              f"workdir {self.path} holds a run with {section}.{key}={old!r}, but this run "
              f"asks for {new!r}; use another --workdir or the same config")

  def write_text(self, name: str, text: str) -> pathlib.Path:
    """Writes WORKDIR/name atomically (the old file stays whole when the write fails: a
    WorkdirError naming it); returns its path."""
    path = self.path / name
    try:
      atomic.write_text(path, text)
    except OSError as error:
      raise WorkdirError(f"cannot write {path} ({error.strerror or error}): free space or "
                         "fix permissions, then run the same command again") from error
    return path

  def append_scalars(self, split: str, step: int, scalars: dict) -> None:
    """Appends {"split", "step", **scalars} as one line of metrics.jsonl (flushed at once:
    a killed run loses at most a torn last line, which `read_scalar_log` skips)."""
    line = json.dumps({"split": split, "step": step, **scalars})
    try:
      with open(self.path / SCALAR_LOG, "a", encoding="utf-8") as log:
        log.write(line + "\n")
    except OSError as error:
      raise WorkdirError(f"cannot append to {self.path / SCALAR_LOG} "
                         f"({error.strerror or error}): free space or fix permissions, then "
                         "run the same command to resume") from error

  def read_scalar_log(self) -> list[dict]:
    """metrics.jsonl's records in step order, the last one of each (split, step) kept: a
    resumed run logs again the steps after its checkpoint. Lines that are not records (a
    torn last line, an edit without split or step) are skipped. [] when there is no log."""
    path = self.path / SCALAR_LOG
    if not path.is_file():
      return []
    records = {}
    for line in path.read_text(encoding="utf-8").splitlines():
      try:
        record = json.loads(line)
      except json.JSONDecodeError:  # The torn last line of a killed run.
        continue
      if not (isinstance(record, dict) and isinstance(record.get("split"), str)
              and isinstance(record.get("step"), int)):
        logging.warning("%s: skipped a line that is not a scalar record: %.80s", path, line)
        continue
      records[(record["split"], record["step"])] = record
    return sorted(records.values(), key=lambda r: (r["step"], r["split"]))

  def summary_writer(self, name: str = "") -> tf.summary.SummaryWriter:
    """A TensorBoard writer for WORKDIR/name (WORKDIR itself for ""); a WorkdirError when
    its event file cannot be created (a full disk, no permission)."""
    folder = self.path / name
    try:
      return tf.summary.create_file_writer(str(folder))
    except (tf.errors.OpError, OSError) as error:
      raise WorkdirError(f"cannot open a TensorBoard event file in {folder} "
                         f"({_reason(error)}): free space or fix permissions, then run the "
                         "same command again") from error

  def write_vocabulary(self, vocabulary: vocab.Vocabulary) -> None:
    vocab.write_vocabulary_file(self.path / VOCABULARY_FILE, vocabulary)

  def read_vocabulary(self, expected_size: int) -> vocab.Vocabulary:
    """The vocabulary a text run was trained with (training writes it before step 1);
    WorkdirError when it is missing or its size is not the model's `expected_size`."""
    path = self.path / VOCABULARY_FILE
    if not path.is_file():
      raise WorkdirError(f"{path} not found: a text run's workdir holds the vocabulary it was "
                         "trained with")
    vocabulary = vocab.read_vocabulary_file(path)
    if vocabulary.size != expected_size:
      raise WorkdirError(f"the vocabulary ({vocabulary.size} entries, from {path}) does not "
                         f"match the model's vocab_size {expected_size}")
    return vocabulary

  def checkpoint_folder(self, which: str) -> pathlib.Path:
    """The folder of the 'best' or 'latest' checkpoints."""
    return self.path / (BEST if which == "best" else CHECKPOINTS)

  def checkpoint_path(self, which: str) -> str:
    """The newest 'best' or 'latest' checkpoint, or a WorkdirError naming the folder."""
    folder = self.checkpoint_folder(which)
    path = tf.train.latest_checkpoint(str(folder))
    if path is None:
      hint = "; try --checkpoint=latest" if which == "best" else ""
      raise WorkdirError(f"no {which} checkpoint in {folder}{hint}")
    return path


def _listing(folder: pathlib.Path):
  """The entries of `folder`, the run marker aside."""
  return (entry for entry in folder.iterdir() if entry.name != run_lock.MARKER)


def checkpoint_managers(checkpoint: tf.train.Checkpoint, folder: pathlib.Path, keep: int):
  """(latest, best) CheckpointManagers writing under `folder`."""
  return (tf.train.CheckpointManager(checkpoint, str(folder / CHECKPOINTS), keep),
          tf.train.CheckpointManager(checkpoint, str(folder / BEST), 1))


def save(manager: tf.train.CheckpointManager, step: int) -> None:
  """manager.save(step), or a CheckpointWriteError naming the folder and the intact one.

  TF writes the checkpoint's files under a temporary name and records it in the folder's
  `checkpoint` state file only once they are complete, so a failed or killed write leaves
  the previous checkpoint as the latest.
  """
  try:
    manager.save(checkpoint_number=step)
  except (tf.errors.OpError, OSError) as error:
    earlier = (f"the last complete checkpoint {manager.latest_checkpoint} is intact"
               if manager.latest_checkpoint else "no checkpoint was written before it")
    raise CheckpointWriteError(
        f"cannot write the step-{step} checkpoint to {manager.directory} "
        f"({_reason(error)}); {earlier}: free space or fix permissions, "
        "then run the same command to resume") from error


def _reason(error: Exception) -> str:
  """The first line of a TF or OS error's message, without TF's '{{function_node ...}}'."""
  message = error.message if isinstance(error, tf.errors.OpError) else str(error)
  first_line = re.sub(r"^\{\{[^}]*\}\}\s*", "", message.strip()).splitlines()[0]
  return first_line[:200]


def named(checkpoint: str | None) -> str:
  """A checkpoint path for a message, or what it means that there is none."""
  return checkpoint or "none (no checkpoint was written yet)"


# What TF's errors say about a damaged checkpoint file (a zeroed or garbled index raises a
# plain OpError: "not an sstable (bad magic number)").
_DAMAGE = re.compile(r"sstable|bad magic|corrupt|truncated|checksum", re.IGNORECASE)


def restore(checkpoint: tf.train.Checkpoint, path: str, config_path: pathlib.Path,
            partial: bool = False) -> None:
  """Restores `path` into `checkpoint`, every object of which must be in it (`partial`:
  the checkpoint may hold more, e.g. the optimizer).

  Raises:
    CheckpointDamagedError: a file of the checkpoint is truncated or corrupt.
    CheckpointMismatchError: a variable is missing or has another shape; one line naming
      the checkpoint, the config it should match, and the first difference.
  """
  try:
    status = checkpoint.restore(path)
    if partial:
      status = status.expect_partial()
    status.assert_existing_objects_matched()
    return
  except (AssertionError, ValueError, IndexError, tf.errors.OpError) as error:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, (IndexError, tf.errors.DataLossError)) or (
        isinstance(error, tf.errors.OpError) and _DAMAGE.search(first_line)):
      raise CheckpointDamagedError(f"checkpoint {path} is damaged ({type(error).__name__}: "
                                   f"{first_line[:200]})") from error
    message = (f"checkpoint {path} does not hold the model that {config_path} describes "
               f"({first_line[:300]})")
  raise CheckpointMismatchError(message)


def restore_newest_intact(checkpoint: tf.train.Checkpoint, folder: pathlib.Path,
                          config_path: pathlib.Path, partial: bool = False) -> str | None:
  """Restores the newest checkpoint of `folder` (a CheckpointManager's) that is intact,
  warning about each damaged newer one (a truncated data file, a garbled index); returns
  its path, None when the folder holds none.

  Raises:
    CheckpointDamagedError: every checkpoint of the folder is damaged.
    CheckpointMismatchError: as `restore`.
  """
  state = tf.train.get_checkpoint_state(str(folder))
  if state is None:
    return None
  paths = list(dict.fromkeys([state.model_checkpoint_path,
                              *reversed(state.all_model_checkpoint_paths)]))
  damaged = []
  for path in paths:
    try:
      restore(checkpoint, path, config_path, partial)
    except CheckpointDamagedError as error:
      damaged.append(str(error))
      continue
    for message in damaged:  # Said once an intact one is found; otherwise the error says it.
      logging.warning("%s; skipped it", message)
    if damaged:
      logging.warning("restored %s, the newest intact checkpoint of %s", path, folder)
    return path
  raise CheckpointDamagedError(f"every checkpoint in {folder} is damaged ({len(damaged)}; "
                               f"the newest: {damaged[0]}); start a new --workdir")
