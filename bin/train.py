r"""Trains a VAE or Skip-VAE on binary images or text; resumes when the workdir holds a run.

  python bin/train.py --dataset=omniglot --skip=true
  python bin/train.py --dataset=yahoo_small --skip=true
  python bin/train.py --config=configs/omniglot_pixelcnn12.py --config.model.latent_dim=16
  python bin/train.py --dataset=ptb --skip=false --smoke --workdir=/tmp/run

Without --config, the config is configs/<dataset>.py (configs/omniglot.py without either).
Raw data come from --data_dir, else $SKIP_VAE_DATA_DIR, else (images) the TFDS download route.
"""

import pathlib

from absl import app
from absl import flags

from skip_vae_tf import cli
from skip_vae_tf import config as config_lib

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

_CONFIG = cli.define_config("train.py", REPO_ROOT / "configs", "omniglot")
_DATASET = flags.DEFINE_enum("dataset", None, list(config_lib.DATASETS),
                             "Dataset (overrides config.data.name).")
_SKIP = flags.DEFINE_bool("skip", None, "Skip-VAE (true) or plain VAE (false); "
                          "overrides config.model.skip.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default runs/<dataset>_<model>"
                               "[_smoke] under the current directory).")
_ALLOW_FOREIGN = flags.DEFINE_bool(
    "allow_foreign_workdir", False, "Train into a non-empty --workdir that holds no run of "
    "this project (its files may be overwritten); never the filesystem root or home folder.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with the raw dataset files.")
_SMOKE = flags.DEFINE_bool("smoke", False, "Shrink the config so a run takes seconds.")
_STRATEGY = flags.DEFINE_enum("strategy", None, list(config_lib.STRATEGIES),
                              "tf.distribute strategy (overrides config.train.strategy).")
_CPU_DEVICES = flags.DEFINE_integer("cpu_devices", 1, "Split the CPU into this many logical "
                                    "devices (with --strategy=mirrored: multi-replica on CPU).",
                                    lower_bound=1)


def train() -> str:
  config = cli.resolved_config(_CONFIG, dataset=_DATASET.value, skip=_SKIP.value,
                               data_dir=_DATA_DIR.value, strategy=_STRATEGY.value,
                               smoke=_SMOKE.value)
  from skip_vae_tf import distribute
  from skip_vae_tf import training
  from skip_vae_tf import workdir as workdir_lib
  workdir = _WORKDIR.value or workdir_lib.default_path(config, _SMOKE.value)
  distribute.split_cpu(_CPU_DEVICES.value)
  training.train_and_evaluate(config, workdir, allow_foreign_workdir=_ALLOW_FOREIGN.value)
  return f"Done: {workdir}/metrics.json; inspect with: tensorboard --logdir {workdir}"


if __name__ == "__main__":
  app.run(cli.main("train.py", train), flags_parser=cli.flags_parser("train.py"))
