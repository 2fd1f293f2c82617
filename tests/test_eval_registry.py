"""Evaluators declared in the config: built by name in label order, checked before a run starts;
one `register` call adds an evaluator that training then runs at every validation."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import synthetic_image_data
from skip_vae_tf import config as config_lib
from skip_vae_tf import eval_registry
from skip_vae_tf import evaluators
from skip_vae_tf import tasks
from skip_vae_tf import training


def _mlp_config() -> config_lib.ml_collections.ConfigDict:
  config = config_lib.apply_smoke(config_lib.default_config("omniglot"))
  config.model.encoder, config.model.decoder = "mlp", "mlp"
  return config


def _context(config) -> eval_registry.EvalContext:
  task = tasks.ImageTask()
  return eval_registry.EvalContext(tasks.build_model(task, config), tf.distribute.get_strategy(),
                                   task, config, batch_size=16, jit_compile=False)


class _PixelMean:
  """A user's evaluator: the mean pixel of a split (not a model metric at all)."""

  def run(self, data, split):
    yield "mean_pixel", float(np.mean(getattr(data, split)))


eval_registry.register("mean_pixel", lambda context, entry: _PixelMean())


def test_the_default_evaluators_are_built_in_label_order_and_training_runs_the_posterior():
  config = _mlp_config()
  context = _context(config)
  built = eval_registry.build(config.evals, context)
  assert [type(e) for e in built] == [evaluators.ImportanceWeightedEvaluator,  # iw_nll
                                      evaluators.LinearProbeEvaluator,  # linear_probe
                                      evaluators.PosteriorEvaluator]  # posterior
  assert built[0].num_samples == config.evals.iw_nll.num_samples == 500
  during = eval_registry.build(config.evals, context, during_training=True)
  assert [type(e) for e in during] == [evaluators.PosteriorEvaluator]


@pytest.mark.parametrize("change, named", [
    (lambda evals: setattr(evals.iw_nll, "type", "importance"), "config.evals.iw_nll.type"),
    (lambda evals: setattr(evals.posterior, "during_training", False), "'posterior' entry"),
    (lambda evals: evals.__delitem__("posterior"), "'posterior' entry"),
])
def test_a_bad_declaration_is_refused_in_one_line(change, named):
  config = _mlp_config()
  change(config.evals)
  with pytest.raises(config_lib.ConfigError, match=named) as raised:
    eval_registry.check(config.evals)
  assert "\n" not in str(raised.value)


def test_a_name_is_registered_once():
  with pytest.raises(ValueError, match="mean_pixel"):
    eval_registry.register("mean_pixel", lambda context, entry: _PixelMean())


def test_a_registered_evaluator_runs_at_every_validation_of_training(tmp_path):
  config = _mlp_config()
  config.train.epochs, config.train.batch_size, config.train.num_logged_samples = 1, 16, 0
  config.evals.pixels = {"type": "mean_pixel", "during_training": True}
  data = synthetic_image_data()
  result = training.train_and_evaluate(config, str(tmp_path / "run"), data=data)
  for split in ("validation", "test"):
    assert result[split]["mean_pixel"] == pytest.approx(float(np.mean(getattr(data, split))))
    assert "negative_elbo" in result[split]  # The posterior evaluator still runs beside it.


def test_a_run_with_an_unknown_evaluator_writes_nothing(tmp_path):
  config = _mlp_config()
  config.evals.pixels = {"type": "no_such_evaluator", "during_training": True}
  with pytest.raises(config_lib.ConfigError, match="config.evals.pixels.type"):
    training.train_and_evaluate(config, str(tmp_path / "run"), data=synthetic_image_data())
  assert not (tmp_path / "run").exists()
