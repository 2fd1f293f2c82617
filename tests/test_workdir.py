"""Run-directory files: the newest intact checkpoint after a damaged one, and the scalar log
a killed and resumed run leaves."""

import json

import pytest
import tensorflow as tf

from skip_vae_tf import workdir as workdir_lib


def _saved_checkpoints(folder, values):
  variable = tf.Variable(0.0)
  checkpoint = tf.train.Checkpoint(variable=variable)
  manager = tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=5)
  for step, value in enumerate(values, start=1):
    variable.assign(value)
    manager.save(checkpoint_number=step)
  return checkpoint, variable, manager


def _truncate(path):
  data = f"{path}.data-00000-of-00001"
  with open(data, "r+b") as file:
    file.truncate(2)


def test_a_truncated_newest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path):
  checkpoint, variable, manager = _saved_checkpoints(tmp_path, [1.0, 2.0, 3.0])
  _truncate(manager.checkpoints[-1])
  variable.assign(0.0)
  path = workdir_lib.restore_newest_intact(checkpoint, tmp_path, tmp_path / "config.json")
  assert path == manager.checkpoints[-2] and float(variable.numpy()) == 2.0


def test_every_checkpoint_damaged_is_one_error_and_an_empty_folder_is_none(tmp_path):
  checkpoint, _, manager = _saved_checkpoints(tmp_path / "run", [1.0, 2.0])
  for path in manager.checkpoints:
    _truncate(path)
  with pytest.raises(workdir_lib.CheckpointDamagedError, match="every checkpoint in .* is "
                                                               "damaged.*start a new"):
    workdir_lib.restore_newest_intact(checkpoint, tmp_path / "run", tmp_path / "config.json")
  assert workdir_lib.restore_newest_intact(checkpoint, tmp_path, tmp_path / "c.json") is None


def test_the_scalar_log_keeps_the_last_record_of_each_step_and_skips_a_torn_line(tmp_path):
  run = workdir_lib.Workdir(tmp_path)
  run.append_scalars("train", 4, {"kl": 1.0})
  run.append_scalars("validation", 4, {"kl": 0.5})
  run.append_scalars("train", 4, {"kl": 2.0})  # The same step again, after a resume.
  with open(tmp_path / workdir_lib.SCALAR_LOG, "a", encoding="utf-8") as log:
    log.write('{"split": "train", "kl": 9.0}\n[1, 2]\n')  # Valid JSON, not records.
  with open(tmp_path / workdir_lib.SCALAR_LOG, "a", encoding="utf-8") as log:
    log.write(json.dumps({"split": "train", "step": 8, "kl": 3.0})[:12])  # Killed mid-line.
  assert run.read_scalar_log() == [{"split": "train", "step": 4, "kl": 2.0},
                                   {"split": "validation", "step": 4, "kl": 0.5}]


def test_a_failed_write_is_one_error_and_leaves_the_old_file_whole(tmp_path):
  run = workdir_lib.Workdir(tmp_path)
  run.write_text("metrics.json", "old")
  (tmp_path / "blocked").mkdir()  # A folder where the file should go: the rename fails.
  with pytest.raises(workdir_lib.WorkdirError, match=r"cannot write .*blocked"):
    run.write_text("blocked", "new")
  assert (tmp_path / "metrics.json").read_text() == "old"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked", "metrics.json"]  # No .tmp.


def test_a_first_checkpoint_on_a_full_disk_says_there_is_none_yet(tmp_path):
  _, _, manager = _saved_checkpoints(tmp_path / "empty", [])

  def full_disk(checkpoint_number):
    raise OSError(28, "No space left on device")

  manager.save = full_disk
  with pytest.raises(workdir_lib.CheckpointWriteError,
                     match=r"step-3 checkpoint .*No space left on device\); no checkpoint "
                           r"was written before it: free space"):
    workdir_lib.save(manager, 3)


def test_a_zeroed_newest_index_is_damage_and_falls_back(tmp_path):
  checkpoint, variable, manager = _saved_checkpoints(tmp_path, [1.0, 2.0])
  index = f"{manager.checkpoints[-1]}.index"
  with open(index, "r+b") as file:
    size = file.seek(0, 2)
    file.seek(0)
    file.write(b"\0" * size)
  variable.assign(0.0)
  path = workdir_lib.restore_newest_intact(checkpoint, tmp_path, tmp_path / "config.json")
  assert path == manager.checkpoints[-2] and float(variable.numpy()) == 1.0


def test_every_checkpoint_damaged_is_said_once(tmp_path, caplog):
  checkpoint, _, manager = _saved_checkpoints(tmp_path, [1.0, 2.0])
  for path in manager.checkpoints:
    _truncate(path)
  with pytest.raises(workdir_lib.CheckpointDamagedError, match=r"damaged \(2; the newest"):
    workdir_lib.restore_newest_intact(checkpoint, tmp_path, tmp_path / "config.json")
  assert not [r for r in caplog.records if "damaged" in r.getMessage()]
