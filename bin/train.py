r"""Trains a VAE or Skip-VAE on binary images or text; resumes when the workdir holds a run.

  python bin/train.py --dataset=omniglot --skip=true
  python bin/train.py --dataset=yahoo_small --skip=true
  python bin/train.py --config=configs/omniglot_pixelcnn12.py --config.model.latent_dim=16
  python bin/train.py --dataset=ptb --skip=false --smoke --workdir=/tmp/run

Without --config, the config is configs/<dataset>.py (configs/omniglot.py without either).
Raw data come from --data_dir, else $SKIP_VAE_DATA_DIR, else (images) the TFDS download route.
"""

import os
import pathlib
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from skip_vae_tf import config as config_lib  # pylint: disable=g-import-not-at-top

_CONFIG_ERRORS = (OSError, KeyError, AttributeError, TypeError, ValueError)


def _default_config_file(argv: list[str]) -> str:
  """configs/<dataset>.py for the --dataset given on the command line, else omniglot's.

  Read before flag parsing because the config flag's default must exist at definition.
  """
  dataset = "omniglot"
  for index, arg in enumerate(argv[1:], start=1):
    if arg.startswith("--dataset="):
      dataset = arg.split("=", 1)[1]
    elif arg == "--dataset" and index + 1 < len(argv):
      dataset = argv[index + 1]
  path = REPO_ROOT / "configs" / f"{dataset}.py"
  return str(path if path.is_file() else REPO_ROOT / "configs" / "omniglot.py")


def _config_error(argv: list[str], error: Exception) -> str:
  """One line naming the --config arguments that could not be loaded or applied."""
  config_args = " ".join(a for a in argv[1:] if a.startswith("--config")) or "--config"
  detail = " ".join(line.strip() for line in str(error).splitlines())
  return f"train.py: error: cannot use {config_args}: {type(error).__name__}: {detail}"


try:  # ml_collections reads the --config.* overrides from sys.argv here, at definition.
  _CONFIG = config_flags.DEFINE_config_file(
      "config", _default_config_file(sys.argv),
      "Config file (default configs/<dataset>.py); override any field with "
      "--config.<path>=<value>.", lock_config=True)
except _CONFIG_ERRORS as definition_error:
  sys.exit(_config_error(sys.argv, definition_error))
_DATASET = flags.DEFINE_enum("dataset", None, list(config_lib.DATASETS),
                             "Dataset (overrides config.data.name).")
_SKIP = flags.DEFINE_bool("skip", None, "Skip-VAE (true) or plain VAE (false); "
                          "overrides config.model.skip.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default runs/<dataset>_<model>"
                               "[_smoke] under the current directory).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with the raw dataset files.")
_SMOKE = flags.DEFINE_bool("smoke", False, "Shrink the config so a run takes seconds.")
_STRATEGY = flags.DEFINE_enum("strategy", None, list(config_lib.STRATEGIES),
                              "tf.distribute strategy (overrides config.train.strategy).")
_CPU_DEVICES = flags.DEFINE_integer("cpu_devices", 1, "Split the CPU into this many logical "
                                    "devices (with --strategy=mirrored: multi-replica on CPU).",
                                    lower_bound=1)


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with every failure (config files included) as one line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as error:
    sys.exit(f"train.py: error: {error}")
  except _CONFIG_ERRORS as error:
    sys.exit(_config_error(argv, error))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.INFO)
  try:
    config = config_lib.resolve(
        _CONFIG.value, dataset=_DATASET.value, skip=_SKIP.value, data_dir=_DATA_DIR.value,
        strategy=_STRATEGY.value, smoke=_SMOKE.value,
        overrides=config_flags.get_override_values(flags.FLAGS["config"]))
  except config_lib.ConfigError as error:
    sys.exit(f"train.py: error: {error}")
  except _CONFIG_ERRORS as error:  # A config file that failed to load surfaces here.
    sys.exit(_config_error(sys.argv, error))
  workdir = _WORKDIR.value or os.path.join(
      "runs", f"{config.data.name}_{'skip_vae' if config.model.skip else 'vae'}"
      f"{'_smoke' if _SMOKE.value else ''}")

  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from skip_vae_tf import evaluation  # pylint: disable=g-import-not-at-top
  from skip_vae_tf import training  # pylint: disable=g-import-not-at-top
  from skip_vae_tf.data import files  # pylint: disable=g-import-not-at-top
  if _CPU_DEVICES.value > 1:
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * _CPU_DEVICES.value)
  try:
    training.train_and_evaluate(config, workdir)
  except training.TrainingInterrupted as interrupted:
    print(f"train.py: stopped: {interrupted}", file=sys.stderr)
    sys.exit(128 + interrupted.signal_number)
  except (config_lib.ConfigError, files.DataFileError, training.WorkdirMismatchError,
          training.WorkdirError, training.CheckpointWriteError,
          evaluation.CheckpointMismatchError, training.NonFiniteLossError) as error:
    evaluation.silence_tensorflow_warnings()
    sys.exit(f"train.py: error: {error}")
  print(f"Done: {workdir}/metrics.json; inspect with: tensorboard --logdir {workdir}")


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
