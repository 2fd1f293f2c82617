"""The datasets a config can name (`data.name`): modality, loader, default validation size.

Adding a dataset is one `register` call and its loader: `config` reads the names and
modalities here (which config a dataset defaults to, what `data.name` accepts), and
`tasks` loads through the loader. Loaders are named as "module:function" and imported when
first used, so this table stays importable without TensorFlow. A loader takes the config's
`data` section and the seed and returns a dataset with the interface of
`skip_vae_tf.data.datasets`.
"""

import dataclasses
import importlib


@dataclasses.dataclass(frozen=True)
class Dataset:
  """One dataset: `modality` 'image' (28x28 binary) or 'text'; `loader` 'module:function'
  or a callable; `validation_size` examples held out of train for validation when the
  dataset has no validation split of its own (0 = it has one)."""
  name: str
  modality: str
  loader: object
  validation_size: int = 0


DATASETS: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
  """Adds `dataset` to the table (ValueError when its name is taken or its modality is not
  'image' or 'text'); returns it."""
  if dataset.name in DATASETS:
    raise ValueError(f"dataset {dataset.name!r} is already registered")
  if dataset.modality not in ("image", "text"):
    raise ValueError(f"dataset {dataset.name}: modality must be 'image' or 'text', got "
                     f"{dataset.modality!r}")
  DATASETS[dataset.name] = dataset
  return dataset


def names(modality: str = "") -> tuple[str, ...]:
  return tuple(n for n, d in DATASETS.items() if not modality or d.modality == modality)


def load(data_config, seed: int):
  """The dataset of a config's `data` section (its registered loader)."""
  loader = DATASETS[data_config.name].loader
  if isinstance(loader, str):
    module, _, function = loader.partition(":")
    loader = getattr(importlib.import_module(module), function)
  return loader(data_config, seed)


_IMAGES, _TEXT = "skip_vae_tf.data.images:load_configured", "skip_vae_tf.data.text:load_configured"
for _dataset in (Dataset("mnist", "image", _IMAGES, validation_size=10000),
                 Dataset("binarized_mnist", "image", _IMAGES),
                 Dataset("omniglot", "image", _IMAGES, validation_size=2000),
                 Dataset("yahoo", "text", _TEXT),
                 Dataset("yahoo_small", "text", _TEXT, validation_size=1000),
                 Dataset("ptb", "text", _TEXT)):
  register(_dataset)
