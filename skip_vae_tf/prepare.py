"""One place prepares a run before anything is written: the config resolved (validated,
precision resolved from 'auto', the data folder made absolute, text's vocabulary size taken
from the data), its task and its data. From here on the config flows one way: into the
workdir's config.json and the Trainer.
"""

import dataclasses

import ml_collections

from skip_vae_tf import config as config_lib
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
  # config.json records the precision the run trains in, not 'auto'.
  config.train.precision = precision.resolve(config.train.precision)
  task = tasks.for_config(config)
  data = data or tasks.load_and_record_data(task, config)
  task.adapt_config(config, data)
  return PreparedRun(config, task, data)
