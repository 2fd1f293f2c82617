r"""Where a training step's time goes: the TF profiler's trace of a few steps, by operation.

  python benchmarks/profile_step.py --data_dir=../shared/data
  python benchmarks/profile_step.py --config=configs/yahoo_small.py --data_dir=../shared/data
  python benchmarks/profile_step.py --config.train.precision=mixed_bfloat16 ...

Builds the config's Trainer, runs --warmup_steps untraced (compilation), traces --steps
steps with `tf.profiler.experimental`, reads the trace (the XPlane protobuf it writes) and
prints the operations that took the most time: XLA thunks (fusions, dots, convolutions,
named without their '.N' suffix) and TF kernels (by op type), summed over TF's compute threads
(those named tf_*), as seconds and as a share of all operation time. Executor and wrapper events
are left out, so that no time is counted twice. The trace folder is kept for TensorBoard's
profile plugin when --trace_dir is given.
"""

import collections
import pathlib
import re
import sys
import tempfile
import time

from absl import app
from absl import flags
from ml_collections import config_flags

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
import record  # pylint: disable=g-import-not-at-top,wrong-import-position

# pylint: disable=g-import-not-at-top
from skip_vae_tf import config as config_lib

_CONFIG = config_flags.DEFINE_config_file("config", str(REPO_ROOT / "configs" / "omniglot.py"),
                                          "Config to profile.", lock_config=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with the raw dataset files.")
_WARMUP = flags.DEFINE_integer("warmup_steps", 10, "Untraced steps first.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 10, "Traced steps.", lower_bound=1)
_TOP = flags.DEFINE_integer("top", 15, "Operations to print.", lower_bound=1)
_TRACE_DIR = flags.DEFINE_string("trace_dir", None, "Keep the trace here (default: a "
                                 "temporary folder, removed).")

# Events that contain other events (executors, thunk runners, the Python-side call).
_CONTAINERS = {"ThunkExecutor::Execute", "ExecutorState::Process",
               "ExecutorState::ProcessAsync::Start", "CpuExecutable::ExecuteAsyncOnStream",
               "BlockUntilReady", "ExecutorDoneCallback"}


def operation(name: str) -> str:
  """An event's operation: 'scope/dense/MatMul:MatMul' -> 'MatMul', 'dot.12' -> 'dot'."""
  if ":" in name and not name.startswith("__"):
    name = name.rsplit(":", 1)[1]
  return re.sub(r"\.\d+$", "", name)


def time_by_operation(trace_dir: str) -> collections.Counter:
  """Seconds per operation over the compute threads of the newest trace in `trace_dir`."""
  from tensorflow.tsl.profiler.protobuf import xplane_pb2
  path = sorted(pathlib.Path(trace_dir).glob("plugins/profile/*/*.xplane.pb"))[-1]
  space = xplane_pb2.XSpace()
  space.ParseFromString(path.read_bytes())
  seconds = collections.Counter()
  for plane in space.planes:
    for line in plane.lines:
      if not line.name.startswith("tf_"):  # Only TF's compute threads, not the caller's.
        continue
      for event in line.events:
        name = plane.event_metadata[event.metadata_id].name
        if name not in _CONTAINERS:
          seconds[operation(name)] += event.duration_ps * 1e-12
  return seconds


def main(argv):
  del argv
  import tensorflow as tf
  from skip_vae_tf import precision
  from skip_vae_tf import training
  config = config_lib.resolve(_CONFIG.value, data_dir=_DATA_DIR.value)
  with tempfile.TemporaryDirectory() as workdir, tempfile.TemporaryDirectory() as scratch:
    trainer = training.Trainer(config, workdir)
    batches, epoch = [], 0
    while len(batches) < _WARMUP.value + _STEPS.value:
      batches.extend(trainer.train_input.epoch(epoch))
      epoch += 1
    for batch in batches[:_WARMUP.value]:
      trainer.train_step(batch)
    trace_dir = _TRACE_DIR.value or scratch
    tf.profiler.experimental.start(trace_dir)
    start = time.perf_counter()
    for batch in batches[_WARMUP.value:_WARMUP.value + _STEPS.value]:
      float(trainer.train_step(batch)["negative_elbo"])
    wall = time.perf_counter() - start
    tf.profiler.experimental.stop()
    seconds = time_by_operation(trace_dir)
  total = sum(seconds.values())
  print(f"{_STEPS.value} steps of {config_lib.model_name(config)} ({config.data.name}, "
        f"{trainer.config.train.precision}, XLA {precision.use_xla(trainer.config.train)}): "
        f"{wall:.2f} s wall; {total:.2f} s of operations summed over threads")
  rows = []
  for name, value in seconds.most_common(_TOP.value):
    print(f"{value:8.3f} s {100 * value / total:5.1f}%  {name}")
    rows.append({"model": config_lib.model_name(config), "dataset": config.data.name,
                 "precision": trainer.config.train.precision, "operation": name,
                 "share_percent": round(100 * value / total, 1)})
  print("wrote", record.write("profile_step", "Where a training step's time goes (TF "
                              "profiler, share of operation time)",
                              ("model", "dataset", "precision", "operation"), rows))


if __name__ == "__main__":
  app.run(main)
