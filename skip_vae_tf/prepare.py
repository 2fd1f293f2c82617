"""One place prepares a run before anything is written: the config resolved (validated,
precision and SA-VAE's second order resolved from 'auto', the data folder made absolute,
text's vocabulary size taken from the data), its task and its data. From here on the config
flows one way: into the workdir's config.json and the Trainer.
"""

import dataclasses

import ml_collections

from skip_vae_tf import config as config_lib
from skip_vae_tf import eval_registry
from skip_vae_tf import precision
from skip_vae_tf import tasks


@dataclasses.dataclass
class PreparedRun:
  """A resolved config, the task of its modality and its loaded data."""
  config: ml_collections.ConfigDict
  task: tasks.Task
  data: object


def prepare_run(config: ml_collections.ConfigDict, data=None) -> PreparedRun:
  """Resolves `config` in place and loads its data (`data`: an in-memory dataset to use
  instead). Raises ConfigError or DataFileError (one line) before any file is written."""
  config_lib.validate(config)
  eval_registry.check(config.evals)
  # config.json records the precision (and SA-VAE second order) the run trains in, not
  # 'auto'.
  config.train.precision = precision.resolve(config.train.precision)
  config_lib.resolve_svi_second_order(config)
  task = tasks.for_config(config)
  data = data or tasks.load_and_record_data(task, config)
  task.adapt_config(config, data)
  return PreparedRun(config, task, data)


def training_batches(config: ml_collections.ConfigDict, data, replicas: int):
  """The training batches of `data` for `replicas` replicas (`data.training_batches`);
  ConfigError when train.batch_size does not divide among them or exceeds the split."""
  batch_size = config.train.batch_size
  if batch_size % replicas:
    raise config_lib.ConfigError(
        f"train.batch_size={batch_size} is not divisible by the {replicas} replicas")
  try:
    return data.training_batches(batch_size, config.seed)
  except ValueError as error:  # A batch larger than the training split.
    raise config_lib.ConfigError(f"train.batch_size={batch_size}: {error}") from error


def total_steps(train_config: ml_collections.ConfigDict, steps_per_epoch: int) -> int:
  """The run's length in steps: train.epochs epochs, capped by train.max_steps (0 = none)."""
  total = train_config.epochs * steps_per_epoch
  return min(total, train_config.max_steps) if train_config.max_steps else total
