"""tf.data pipelines: seeded order and binarization, resume position, exact last batch."""

import numpy as np

from skip_vae_tf.data import pipelines


def _intensities(n=103):
  return np.random.default_rng(0).random((n, 28, 28, 1)).astype(np.float32)


def _batches(dataset):
  return [b.numpy() for b in dataset]


def test_training_epoch_is_a_seeded_function_of_epoch_and_resumes_mid_epoch():
  source = pipelines.TrainingBatches(_intensities(), 10, seed=3, dynamic_binarization=True)
  assert source.steps_per_epoch == 10
  epoch0 = _batches(source.epoch(0))
  assert len(epoch0) == 10 and all(b.shape == (10, 28, 28, 1) for b in epoch0)
  assert all(set(np.unique(b)) <= {0.0, 1.0} for b in epoch0)
  np.testing.assert_array_equal(np.stack(epoch0), np.stack(_batches(source.epoch(0))))
  np.testing.assert_array_equal(np.stack(epoch0[4:]), np.stack(_batches(source.epoch(0, 4))))
  assert not np.array_equal(np.stack(epoch0), np.stack(_batches(source.epoch(1))))


def test_dynamic_binarization_draws_bernoulli_of_the_intensities():
  images = np.full((1000, 28, 28, 1), 0.25, np.float32)
  source = pipelines.TrainingBatches(images, 100, seed=0, dynamic_binarization=True)
  first, second = np.stack(_batches(source.epoch(0))), np.stack(_batches(source.epoch(1)))
  assert abs(first.mean() - 0.25) < 0.003
  assert not np.array_equal(first, second)


def test_static_training_images_pass_through_in_permuted_order():
  images = (_intensities(50) < 0.5).astype(np.float32)
  source = pipelines.TrainingBatches(images, 5, seed=1, dynamic_binarization=False)
  seen = np.concatenate(_batches(source.epoch(2)))
  order = pipelines.epoch_permutation(50, 1, 2)
  np.testing.assert_array_equal(seen, images[order])


def test_evaluation_batches_keep_the_partial_batch_in_order():
  images = _intensities(23)
  batches = _batches(pipelines.evaluation_batches(images, 10))
  assert [len(b) for b in batches] == [10, 10, 3]
  np.testing.assert_array_equal(np.concatenate(batches), images)
  # Autotuning off: its end-of-data wait cost 8 s per IW-NLL pass (pipelines.py).
  assert pipelines.evaluation_batches(images, 10).options().autotune.enabled is False
