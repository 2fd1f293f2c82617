"""Config defaults, the smoke shrink, overrides and one-line errors for impossible values."""

import json
import pathlib
import re

import pytest

from skip_vae_tf import config as config_lib

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_image_defaults_match_the_official_code():
  config = config_lib.image_config()
  assert config.model.latent_dim == 20
  assert tuple(config.model.decoder_kernel_sizes) == (3,) * 8
  assert config.model.decoder_channels == 32 and config.model.latent_feature_maps == 1
  assert config.train.batch_size == 50 and config.train.learning_rate == 1e-3
  assert config.train.grad_clip_norm == 5.0 and config.train.epochs == 100
  assert config.train.kl_warmup_epochs == 0
  config_lib.validate(config)


def test_text_defaults_match_the_reference():
  config = config_lib.default_config("ptb")
  assert config.data.name == "ptb" and config_lib.modality(config) == "text"
  assert config.model.embedding_dim == 512 and config.model.latent_dim == 32
  assert tuple(config.model.encoder_hidden) == tuple(config.model.decoder_hidden) == (1024,)
  assert config.model.decoder_dropout == 0.5 and config.model.init_scale == 0.1
  assert config.train.batch_size == 32 and config.train.optimizer == "sgd"
  assert config.train.learning_rate == 1.0 and config.train.grad_clip_norm == 5.0
  assert config.train.kl_start_weight == 0.1 and config.train.kl_warmup_epochs == 10
  assert config.train.lr_decay_factor == 0.5
  config_lib.validate(config)
  smoke = config_lib.apply_smoke(config)
  assert smoke.model.decoder_hidden == (32,) and smoke.data.max_train_examples == 256
  config_lib.validate(smoke)


def test_a_dataset_of_the_other_modality_is_refused():
  config = config_lib.image_config()
  config.data.name = "yahoo_small"
  with pytest.raises(config_lib.ConfigError, match="text dataset but the config is for image"):
    config_lib.validate(config)
  config = config_lib.text_config()
  config.data.name = "omniglot"
  with pytest.raises(config_lib.ConfigError, match="configs/omniglot.py"):
    config_lib.validate(config)


def test_resolve_applies_flags_then_smoke_then_explicit_overrides():
  config = config_lib.resolve(config_lib.image_config(), dataset="mnist", skip=False,
                              data_dir="/data", smoke=True,
                              overrides={"model.latent_dim": 7, "train.epochs": 1})
  assert config.data.name == "mnist" and not config.model.skip
  assert config.data.data_dir == "/data"
  assert config.model.latent_dim == 7 and config.train.epochs == 1
  assert config.data.max_train_examples == 256  # From the smoke shrink.


@pytest.mark.parametrize("path,value,message", [
    ("model.latent_dim", -1, "model.latent_dim must be positive"),
    ("train.batch_size", 0, "train.batch_size must be positive"),
    ("data.name", "cifar", "unknown dataset 'cifar'"),
    ("model.decoder_kernel_sizes", (3, 4), "odd"),
    ("train.kl_start_weight", 2.0, "kl_start_weight"),
    ("train.strategy", "tpu", "unknown train.strategy"),
    ("train.optimizer", "rmsprop", "unknown train.optimizer"),
    ("train.lr_decay_factor", 0.0, "lr_decay_factor must be in"),
    ("train.learning_rate", float("inf"), "train.learning_rate must be positive and finite"),
    ("train.learning_rate", float("nan"), "train.learning_rate must be positive and finite"),
    ("train.min_learning_rate", float("nan"), "must be >= 0 and finite"),
    ("train.checkpoint_every_minutes", -1.0, "train.checkpoint_every_minutes must be >= 0"),
    ("model.inference", "svi", "unknown model.inference"),
    ("model.svi_learning_rates", (1.0,), "two positive rates"),
    ("model.svi_momentum", 1.0, "svi_momentum must be in"),
    ("model.svi_second_order", "forward", "unknown model.svi_second_order"),
])
def test_impossible_values_raise_config_error(path, value, message):
  """Every impossible value is one ConfigError (bin/train.py prints it as one line)."""
  config = config_lib.image_config()
  section, key = path.split(".")
  config[section][key] = value
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.validate(config)


def test_a_negative_seed_and_latent_size_are_refused():
  config = config_lib.image_config()
  config.seed = -1
  with pytest.raises(config_lib.ConfigError, match="seed must be an integer >= 0, got -1"):
    config_lib.validate(config)
  config = config_lib.image_config()
  config.model.latent_dim = -3
  with pytest.raises(config_lib.ConfigError, match="model.latent_dim must be positive and "
                                                  "finite, got -3"):
    config_lib.validate(config)


def test_a_saved_config_loads_over_todays_defaults():
  saved = json.loads(config_lib.image_config().to_json_best_effort())
  del saved["train"]["mi_minibatch_size"]  # As in a run started before the field existed.
  saved["model"]["latent_dim"] = 7
  config = config_lib.from_saved(saved)
  assert config.model.latent_dim == 7 and config.train.mi_minibatch_size == 500
  assert config.model.decoder_kernel_sizes == (3,) * 8
  config_lib.validate(config)
  text = json.loads(config_lib.default_config("yahoo_small").to_json_best_effort())
  restored = config_lib.from_saved(text)
  assert config_lib.modality(restored) == "text" and restored.model.decoder_hidden == (1024,)


@pytest.mark.parametrize("path, value, message", [
    ("train.kl_schedule", "sawtooth", "unknown train.kl_schedule"),
    ("train.free_bits_mode", "bits", "unknown train.free_bits_mode"),
    ("train.free_bits", -1.0, "train.free_bits must be >= 0"),
    ("train.beta", 0.0, "train.beta must be positive"),
    ("train.kl_cycle_ratio", 0.0, "train.kl_cycle_ratio must be in (0, 1]"),
    ("train.kl_cycles", 0, "train.kl_cycles must be an integer >= 1"),
])
def test_impossible_remedy_values_raise_config_error(path, value, message):
  config = config_lib.image_config()
  config_lib.apply_overrides(config, {path: value})
  with pytest.raises(config_lib.ConfigError, match=re.escape(message)):
    config_lib.validate(config)


def test_an_override_of_a_missing_field_names_it():
  with pytest.raises(config_lib.ConfigError, match="no field train.bta"):
    config_lib.apply_overrides(config_lib.image_config(), {"train.bta": 0.5})


@pytest.mark.parametrize("body, message", [
    ("def get_config(:\n", "SyntaxError"),
    ("def get_config():\n  return undefined_name\n", "NameError"),
    ("import no_such_module_here\n", "ModuleNotFoundError"),
    ("def get_config():\n  return None\n", "returned NoneType"),
])
def test_a_broken_config_file_is_one_config_error(tmp_path, body, message):
  path = tmp_path / "broken.py"
  path.write_text(body)
  with pytest.raises(config_lib.ConfigError, match=message) as raised:
    config_lib.load_file(path)
  assert "\n" not in str(raised.value)


def test_load_file_passes_the_argument_after_the_colon():
  config = config_lib.load_file("configs/savae.py:ptb", REPO_ROOT)
  assert config.data.name == "ptb" and config.model.inference == "semi_amortized"
