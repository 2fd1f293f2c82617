"""A dataset is one registry entry away from training: a toy image dataset registered with
an in-memory loader trains, validates and evaluates through the ordinary config path."""

import pytest

from conftest import synthetic_image_data
from skip_vae_tf import config as config_lib
from skip_vae_tf import dataset_registry
from skip_vae_tf import training


@pytest.fixture
def toy_blocks():
  calls = []

  def load(data_config, seed):
    calls.append((data_config.name, seed))
    return synthetic_image_data()

  dataset_registry.register(dataset_registry.Dataset("toy_blocks", "image", load))
  yield calls
  del dataset_registry.DATASETS["toy_blocks"]


def test_a_registered_toy_dataset_trains_through_the_config(toy_blocks, tmp_path):
  config = config_lib.apply_smoke(config_lib.default_config("toy_blocks"))
  config.model.encoder, config.model.decoder = "mlp", "mlp"
  assert config_lib.modality(config) == "image"
  result = training.train_and_evaluate(config, str(tmp_path / "run"))
  assert toy_blocks == [("toy_blocks", config.seed)]
  assert result["dataset"] == "toy_blocks" and result["test"]["negative_elbo"] > 0


def test_an_unregistered_dataset_names_the_registered_ones():
  config = config_lib.default_config("omniglot")
  config.data.name = "no_such_data"
  with pytest.raises(config_lib.ConfigError, match="unknown dataset 'no_such_data'; choose "
                                                  "one of mnist, binarized_mnist, omniglot"):
    config_lib.validate(config)
  with pytest.raises(ValueError, match="modality"):
    dataset_registry.register(dataset_registry.Dataset("sound", "audio", "x:y"))
