"""The Trainer in-process: exact evaluation over partial batches, non-finite steps skipped,
time-based checkpoints."""

import types

import numpy as np
import pytest
import tensorflow as tf

from skip_vae_tf import config as config_lib
from skip_vae_tf import progress
from skip_vae_tf import training
from skip_vae_tf import workdir as workdir_lib


@pytest.fixture(scope="module")
def trainer(tmp_path_factory, data_dir, cache_dir):
  config = config_lib.apply_smoke(config_lib.image_config())
  config.data.data_dir, config.data.cache_dir = str(data_dir), str(cache_dir)
  config.train.jit_compile = True  # The compiled (XLA) steps, which smoke runs skip.
  # float32, so that sums over batches of different sizes agree to float32 resolution (in
  # bfloat16 the kernels' blocking depends on the batch size) and XLA runs on a CPU too.
  config.train.precision = "float32"
  return training.Trainer(config, str(tmp_path_factory.mktemp("trainer")))


def test_evaluation_covers_every_example_whatever_the_batch_size(trainer):
  images = trainer.data.validation  # 128 examples: partial last batches below.
  results = []
  for batch_size in (100, 64, 7):
    trainer.evaluators[0].batch_size = batch_size
    results.append(trainer.evaluate("validation"))
  trainer.evaluators[0].batch_size = 64
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
  skipped = int(trainer.state.skipped_steps.numpy())
  statistics = [v.numpy() for v in trainer.model.non_trainable_variables]
  stats = trainer.train_step(poisoned)
  assert not bool(stats["finite"])
  for before, variable in zip(statistics, trainer.model.non_trainable_variables):
    if "moving" in variable.path:  # Batch-norm statistics: the forward pass updated them.
      np.testing.assert_array_equal(before, variable.numpy())
  assert int(trainer.state.skipped_steps.numpy()) == skipped + 1
  assert int(trainer.optimizer.iterations.numpy()) == iterations
  for before, variable in zip(weights, trainer.model.trainable_variables):
    np.testing.assert_array_equal(before, variable.numpy())
  stats = trainer.train_step(batch)
  assert bool(stats["finite"]) and int(trainer.optimizer.iterations.numpy()) == iterations + 1
  assert any(np.any(b != v.numpy()) for b, v in zip(weights, trainer.model.trainable_variables))


def test_a_checkpoint_is_written_when_its_minutes_are_due_between_step_checkpoints(trainer):
  """checkpoint_every_minutes: a run killed without warning loses at most that much."""
  now = [0.0]
  trainer.checkpoint_interval = progress.Interval(10.0, clock=lambda: now[0])
  step = 7  # Not a log, validation or checkpoint_every_steps step.
  assert step % trainer.config.train.checkpoint_every_steps and step < trainer.steps_per_epoch
  not_stopping = types.SimpleNamespace(requested=False)
  trainer._after_step(step, progress.Window(), not_stopping)  # pylint: disable=protected-access
  latest = trainer.state.latest.latest_checkpoint
  assert latest is None or workdir_lib.checkpoint_step(latest) != step
  now[0] += 600.0
  trainer._after_step(step, progress.Window(), not_stopping)  # pylint: disable=protected-access
  assert workdir_lib.checkpoint_step(trainer.state.latest.latest_checkpoint) == step
  assert not trainer.checkpoint_interval.due()  # Restarted by the save.


def _poisoned_trainer(workdir, data_dir, cache_dir, poisoned_steps):
  """A smoke Trainer whose training batches at the given (0-based) steps hold a NaN pixel."""
  config = config_lib.apply_smoke(config_lib.image_config())
  config.data.data_dir, config.data.cache_dir = str(data_dir), str(cache_dir)
  config.train.checkpoint_every_steps = 2
  config.train.max_consecutive_nonfinite = 3
  trainer = training.Trainer(config, str(workdir))
  clean_epoch, steps_per_epoch = trainer.train_input.epoch, trainer.steps_per_epoch
  poisoned = tf.constant(sorted(poisoned_steps), tf.int64)

  def epoch(index, skip_batches=0):
    batches = clean_epoch(index, skip_batches).enumerate(
        start=index * steps_per_epoch + skip_batches)
    return batches.map(lambda step, x: tf.where(
        tf.reduce_any(tf.equal(step, poisoned)), x + np.float32(np.nan), x))

  trainer.train_input.epoch = epoch
  return trainer


def test_consecutive_nan_batches_stop_the_run_with_the_last_good_checkpoint(tmp_path, data_dir,
                                                                           cache_dir):
  trainer = _poisoned_trainer(tmp_path / "run", data_dir, cache_dir, poisoned_steps=range(5, 16))
  with pytest.raises(training.NonFiniteLossError,
                     match=r"3 consecutive steps had a non-finite loss or gradient \(last at "
                           r"step 8\); the last good checkpoint is .*ckpt-6"):
    trainer.train()
  latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
  # Step 6 was skipped, so ckpt-6 holds the state after step 5: no NaN reached it.
  assert latest.endswith("ckpt-6")
  reader = tf.train.load_checkpoint(latest)
  for name in reader.get_variable_to_shape_map():
    value = reader.get_tensor(name)
    if np.issubdtype(np.asarray(value).dtype, np.floating):  # best_validation starts at inf.
      assert not np.any(np.isnan(value)), name


def test_a_diverging_semi_amortized_run_names_the_refinement_rates():
  from skip_vae_tf import nonfinite  # pylint: disable=g-import-not-at-top
  config = config_lib.default_config("omniglot")
  assert nonfinite.likely_rate(config) == "train.learning_rate (0.001)"
  config.model.inference, config.model.svi_learning_rates = "semi_amortized", (1e6, 1e6)
  assert nonfinite.likely_rate(config).startswith(
      "model.svi_learning_rates (the refinement's: 1e+06, 1e+06) or train.learning_rate")
  assert config_lib.apply_smoke(config).train.max_consecutive_nonfinite <= 5  # Can fire.
