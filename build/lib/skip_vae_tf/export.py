"""Exports a training run as a versioned SavedModel for TF Serving (signatures: `serving`).

Layout, as TF Serving's file-system source watches it:
  EXPORT_DIR/<version>/saved_model.pb, variables/   version = 1 + the largest existing one
  EXPORT_DIR/<version>/assets.extra/export_info.json where the model came from

A version is written under a hidden temporary name (TF Serving ignores names that are not
integers), checked by loading it back and running every signature against the in-process
model, flushed to disk, and only then renamed to its number: a server never sees a
half-written or unverified version.
"""

import dataclasses
import datetime
import json
import os
import pathlib
import shutil
import socket

from absl import logging
import numpy as np
import tensorflow as tf

from skip_vae_tf import errors
from skip_vae_tf import evaluation
from skip_vae_tf import serving
from skip_vae_tf import workdir as workdir_lib

EXPORT_INFO = "export_info.json"
# Float outputs of the reloaded SavedModel must match the in-process model within
# VERIFY_ATOL plus VERIFY_ULPS units in the last place of float32 at the expected value:
# a score of ~500 nats is only resolved to 6e-5 in float32, and graphs traced twice may
# round differently.
VERIFY_ATOL = 1e-5
VERIFY_ULPS = 8


class ExportError(errors.SkipVaeError):
  """The run cannot be exported (missing vocabulary, failed verification, ...)."""


def next_version(export_dir: pathlib.Path) -> int:
  """1 + the largest integer-named folder in `export_dir` (1 when there is none)."""
  versions = [int(p.name) for p in export_dir.iterdir() if p.name.isdigit() and p.is_dir()]
  return max(versions, default=0) + 1


def _fsync_tree(root: pathlib.Path) -> None:
  for folder, _, names in os.walk(root):
    for name in names:
      with open(os.path.join(folder, name), "rb") as f:
        os.fsync(f.fileno())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
      os.fsync(descriptor)
    finally:
      os.close(descriptor)


def outputs_agree(expected: np.ndarray, actual: np.ndarray) -> bool:
  """Floats: |actual - expected| <= VERIFY_ATOL + VERIFY_ULPS float32 ulps of expected;
  anything else exactly equal."""
  if expected.dtype.kind != "f":
    return np.array_equal(expected, actual)
  ulp = np.spacing(np.abs(expected).astype(np.float32)).astype(np.float64)
  difference = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))
  return bool(np.all(difference <= VERIFY_ATOL + VERIFY_ULPS * ulp))


def _compare(name: str, key: str, expected: np.ndarray, actual: np.ndarray) -> None:
  if not outputs_agree(expected, actual):
    raise ExportError(f"verification failed: signature {name!r} output {key!r} of the "
                      "reloaded SavedModel differs from the in-process model's")


def verify(path: pathlib.Path, signatures: serving.Signatures,
           functions: dict | None = None) -> None:
  """Loads the SavedModel at `path` and checks every signature's outputs on
  `serving.example_inputs` against the same functions run in process (`functions`: the
  archive's traced endpoints, `serving.export_archive`; default: `signatures`' traced anew).

  Raises:
    ExportError: a signature is missing, or an output differs (`outputs_agree`).
  """
  loaded = tf.saved_model.load(str(path))
  functions = functions or {name: tf.function(fn) for name, fn in
                            signatures.functions().items()}
  for name, inputs in serving.example_inputs(signatures).items():
    if name not in loaded.signatures:
      raise ExportError(f"verification failed: signature {name!r} missing from {path}")
    tensors = {key: tf.constant(value) for key, value in inputs.items()}
    expected = functions[name](*tensors.values())
    actual = loaded.signatures[name](**tensors)
    for key, value in expected.items():
      _compare(name, key, value.numpy(), actual[key].numpy())


_STAGING_PREFIX = ".export-"


def _is_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Alive, another user's.
    return True
  return True


def remove_stale_staging(export_path: pathlib.Path) -> list[pathlib.Path]:
  """Removes the hidden staging folders (.export-<host>-<pid>-<time>) that exports killed
  on this host left behind (their process is gone); returns them. Those of live exports,
  and of other hosts sharing the folder, are left alone."""
  removed = []
  host = socket.gethostname()
  for folder in export_path.glob(f"{_STAGING_PREFIX}*"):
    owner, _, rest = folder.name[len(_STAGING_PREFIX):].rpartition("-")[0].rpartition("-")
    if owner == host and rest.isdigit() and not _is_alive(int(rest)):
      logging.warning("removing %s, left by an export that was killed", folder)
      shutil.rmtree(folder, ignore_errors=True)
      removed.append(folder)
  return removed


def export_run(workdir: str, export_dir: str, checkpoint: str = "best", iw_samples: int = 10,
               score_seed: int = 0, limits: serving.Limits = serving.Limits()) -> pathlib.Path:
  """Exports the 'best' or 'latest' weights of the run in `workdir` as the next version
  under `export_dir`; returns the version's folder.

  Args:
    workdir: a training workdir (config.json, checkpoints/, best/).
    export_dir: the folder TF Serving watches (created if absent).
    checkpoint: 'best' or 'latest'.
    iw_samples: K of the `score` signature's importance-weighted NLL.
    score_seed: seeds the K draws `score` shares across examples.
    limits: what one request may ask for (`serving.Limits`).
  """
  run, export_path = workdir_lib.Workdir(workdir), pathlib.Path(export_dir)
  run.claim()  # No training or evaluation writes into the run while it is read.
  try:
    return _export(run, export_path, checkpoint, iw_samples, score_seed, limits)
  finally:
    run.release()


def _export(run: workdir_lib.Workdir, export_path: pathlib.Path, checkpoint: str,
            iw_samples: int, score_seed: int, limits: serving.Limits) -> pathlib.Path:
  config, task, model, checkpoint_path = evaluation.restore_model(run, checkpoint)
  signatures = serving.Signatures(model, task, iw_samples, score_seed, limits)
  staging = export_path / (f"{_STAGING_PREFIX}{socket.gethostname()}-{os.getpid()}-"
                           f"{datetime.datetime.now():%Y%m%d%H%M%S%f}")
  try:
    export_path.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(export_path)
    logging.info("Writing the SavedModel of %s to %s", checkpoint_path, staging)
    archive, endpoints = serving.export_archive(signatures)
    archive.write_out(str(staging), verbose=False)
    info = {"workdir": str(run.path.resolve()), "checkpoint": checkpoint_path,
            "step": workdir_lib.checkpoint_step(checkpoint_path), "dataset": config.data.name,
            "skip": bool(config.model.skip), "iw_samples": iw_samples, "score_seed": score_seed,
            "limits": dataclasses.asdict(limits),
            "signatures": list(serving.SIGNATURES), "tensorflow": tf.__version__,
            "created": datetime.datetime.now().isoformat(timespec="seconds"),
            "model": json.loads(config.model.to_json_best_effort())}
    (staging / "assets.extra").mkdir(exist_ok=True)
    (staging / "assets.extra" / EXPORT_INFO).write_text(json.dumps(info, indent=2))
    logging.info("Verifying the reloaded SavedModel against the in-process model")
    verify(staging, signatures, endpoints)
    _fsync_tree(staging)
    version_path = export_path / str(next_version(export_path))
    staging.rename(version_path)
  except (OSError, tf.errors.OpError) as error:  # TF's writes fail with OpErrors.
    reason = (error.message.strip().splitlines()[0][:200] if isinstance(error, tf.errors.OpError)
              else error.strerror or error)
    raise ExportError(f"cannot write the export under {export_path}: {reason}; free space "
                      "or fix permissions, then run the same command again") from error
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  logging.info("Exported version %s", version_path)
  return version_path
