"""The Trainer in-process: exact evaluation over partial batches, non-finite steps skipped."""

import numpy as np
import pytest
import tensorflow as tf

from skip_vae_tf import config as config_lib
from skip_vae_tf import training


@pytest.fixture(scope="module")
def trainer(tmp_path_factory, data_dir, cache_dir):
  config = config_lib.apply_smoke(config_lib.image_config())
  config.data.data_dir, config.data.cache_dir = str(data_dir), str(cache_dir)
  return training.Trainer(config, str(tmp_path_factory.mktemp("trainer")))


def test_evaluation_covers_every_example_whatever_the_batch_size(trainer):
  images = trainer.data.validation  # 128 examples: partial last batches below.
  results = []
  for batch_size in (100, 64, 7):
    trainer.config.train.eval_batch_size = batch_size
    results.append(trainer.evaluate("validation"))
  trainer.config.train.eval_batch_size = 64
  # KL and active units do not depend on the posterior sample: equal across batch sizes.
  for scalars, kl_per_dim in results[1:]:
    assert scalars["kl"] == pytest.approx(results[0][0]["kl"], rel=1e-6)
    assert scalars["active_units_cov_ge_0.01"] == results[0][0]["active_units_cov_ge_0.01"]
    np.testing.assert_allclose(kl_per_dim, results[0][1], rtol=1e-5)
  # The mean over examples, not over batches: recompute from the model directly.
  kl = trainer.model(images)["kl"].numpy().astype(np.float64).mean()
  assert results[0][0]["kl"] == pytest.approx(kl, rel=1e-5)


def test_non_finite_step_skips_the_update(trainer):
  batch = next(iter(trainer.train_input.epoch(0)))
  weights = [v.numpy() for v in trainer.model.trainable_variables]
  iterations = int(trainer.optimizer.iterations.numpy())
  poisoned = tf.tensor_scatter_nd_update(batch, [[0, 0, 0, 0]], [np.nan])
  skipped = int(trainer.skipped_steps.numpy())
  stats = trainer.train_step(poisoned)
  assert not bool(stats["finite"])
  assert int(trainer.skipped_steps.numpy()) == skipped + 1
  assert int(trainer.optimizer.iterations.numpy()) == iterations
  for before, variable in zip(weights, trainer.model.trainable_variables):
    np.testing.assert_array_equal(before, variable.numpy())
  stats = trainer.train_step(batch)
  assert bool(stats["finite"]) and int(trainer.optimizer.iterations.numpy()) == iterations + 1
  assert any(np.any(b != v.numpy()) for b, v in zip(weights, trainer.model.trainable_variables))
