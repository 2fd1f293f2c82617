"""The modality seams: both tasks implement the `Task` protocol, each has its serving
adapter, and a model config's inference becomes the model's inference object."""

import pytest

from skip_vae_tf import config as config_lib
from skip_vae_tf import serving_adapters
from skip_vae_tf import tasks
from skip_vae_tf.models import inference


def test_both_tasks_implement_the_protocol_and_an_incomplete_one_does_not():
  assert isinstance(tasks.ImageTask(), tasks.Task) and isinstance(tasks.TextTask(), tasks.Task)

  class NoModel:  # Everything but build_model.
    iw_examples_per_call = 1
    load_data = adapt_config = write_run_files = restore_run_files = lambda self, *a: None
    derived_scalars = units_note = hparams = write_samples = samples_record = load_data

  assert not isinstance(NoModel(), tasks.Task)


def test_each_task_has_its_serving_adapter():
  image, text = tasks.ImageTask(), tasks.TextTask()
  assert isinstance(serving_adapters.for_task(image), serving_adapters.ImageServing)
  assert serving_adapters.for_task(text).task is text
  assert serving_adapters.for_task(image).input_spec().name == "x"
  assert serving_adapters.for_task(text).input_spec().name == "text"


@pytest.mark.parametrize("name, kind, suffix", [
    ("amortized", inference.Amortized, "vae"),
    ("semi_amortized", inference.SemiAmortized, "sa_vae")])
def test_the_config_picks_the_models_inference(name, kind, suffix):
  config = config_lib.apply_smoke(config_lib.default_config("omniglot"))
  config.model.encoder, config.model.decoder = "mlp", "mlp"
  config.model.inference, config.model.svi_steps, config.model.skip = name, 3, True
  model = tasks.build_model(tasks.ImageTask(), config)
  assert type(model.inference) is kind and model.name == f"skip_{suffix}"
  assert model.inference.compiles_with_xla == (name == "amortized")
  if name == "semi_amortized":
    assert model.inference.refinement.steps == 3 and model.inference.needs_second_derivative
