"""Evaluators in isolation: the linear probe separates what is separable and nothing else;
`collect` turns the pairs evaluators yield into scalars and the KL per dimension."""

import numpy as np
import pytest

from skip_vae_tf import evaluators
from skip_vae_tf import tasks


def _features(labels, signal, rng):
  """2-D features whose first coordinate is `signal` x the label plus unit noise."""
  return np.stack([signal * labels + rng.normal(size=len(labels)),
                   rng.normal(size=len(labels))], axis=1)


@pytest.mark.parametrize("signal, low, high", [(8.0, 0.99, 1.0), (0.0, 0.35, 0.65)])
def test_linear_probe_accuracy(signal, low, high):
  rng = np.random.default_rng(0)
  train_labels, eval_labels = rng.integers(0, 2, 2000), rng.integers(0, 2, 1000)
  accuracy = evaluators.linear_probe_accuracy(
      _features(train_labels, signal, rng), train_labels, _features(eval_labels, signal, rng),
      eval_labels)
  assert low <= accuracy <= high


class _Fixed:
  def __init__(self, pairs):
    self.pairs = pairs

  def run(self, data, split):
    del data, split
    yield from self.pairs


def test_collect_merges_evaluators_and_adds_the_tasks_per_word_figures():
  parts = [_Fixed([("negative_elbo", 60.0), ("reconstruction_nll", 50.0), ("kl", 10.0),
                   ("num_tokens", 20.0), ("kl_per_dim", np.array([4.0, 6.0]))]),
           _Fixed([("iw_nll", 55.0)])]
  scalars, kl_per_dim = evaluators.collect(parts, None, "test", tasks.TextTask())
  np.testing.assert_array_equal(kl_per_dim, [4.0, 6.0])
  assert scalars["negative_elbo_per_word"] == 3.0 and scalars["iw_nll_per_word"] == 2.75
  assert scalars["perplexity_iw"] == pytest.approx(np.exp(2.75))
  assert "num_tokens" not in scalars and scalars["words_per_sentence"] == 20.0
  image, _ = evaluators.collect(parts, None, "test", tasks.ImageTask())
  assert image["num_tokens"] == 20.0 and "negative_elbo_per_word" not in image
