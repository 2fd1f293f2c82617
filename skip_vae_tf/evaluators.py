"""Dataset-level evaluators: each runs over one split and yields (name, value) pairs.

Which evaluators run is the config's (`config.evals`, built by `eval_registry`): training
validates with `PosteriorEvaluator`; bin/evaluate.py adds `LinearProbeEvaluator` and
`ImportanceWeightedEvaluator`. A new metric is a new evaluator, not a change to the loop
(big_vision's `evaluators/`).
Every example of a split counts exactly once, the last partial batch included.
Definitions and units: docs/metrics.md.
"""

import time
from collections.abc import Iterator

from absl import logging
import numpy as np
from sklearn import linear_model
from sklearn import pipeline
from sklearn import preprocessing
import tensorflow as tf

from skip_vae_tf import distribute
from skip_vae_tf import metrics
from skip_vae_tf import steps
from skip_vae_tf.models import layers
from skip_vae_tf.models import vae as vae_lib


def in_stored_order(values: np.ndarray, order: np.ndarray | None) -> np.ndarray:
  """Rows computed in `order` (None = stored order) put back in stored order."""
  if order is None:
    return values
  restored = np.empty_like(values)
  restored[order] = values
  return restored


def latent_metrics(outputs: dict[str, np.ndarray], minibatch_size: int,
                   tile_size: int = 2048) -> Iterator[tuple[str, float | np.ndarray]]:
  """Means over the whole set (nats per example), MI under both protocols with their
  standard errors (`*_stderr`: over examples for the aggregate form, over minibatch
  estimates for He et al.'s, given from two minibatches on), active units under both conventions,
  and `kl_per_dim`, the (D,) mean KL of each dimension.

  `minibatch_size` is the minibatch of the He et al. MI protocol.
  """
  for key in ("negative_elbo", "reconstruction_nll", "kl", "num_tokens"):
    if key in outputs:
      yield key, float(np.mean(outputs[key], dtype=np.float64))
  mean, log_variance, z = (tf.constant(outputs[k]) for k in
                           ("posterior_mean", "posterior_log_variance", "z"))
  terms = metrics.mutual_information_terms(mean, log_variance, z, tile_size).numpy()
  yield "mi_aggregate", float(np.mean(terms))
  yield "mi_aggregate_stderr", metrics.standard_error(terms)
  estimates, sizes = metrics.minibatch_mutual_information_estimates(mean, log_variance, z,
                                                                     minibatch_size)
  yield "mi_minibatch_he2019", float(np.sum(estimates * sizes) / np.sum(sizes))
  if len(estimates) > 1:
    yield "mi_minibatch_he2019_stderr", metrics.standard_error(estimates)
  yield "active_units_cov_ge_0.01", metrics.active_units(mean, 0.01)
  yield "active_units_cov_gt_0.02", metrics.active_units(mean, 0.02, strict=True)
  if "kl_per_dim" in outputs:
    yield "kl_per_dim", outputs["kl_per_dim"].mean(axis=0, dtype=np.float64)


def amortized_metrics(outputs: dict[str, np.ndarray], minibatch_size: int
                      ) -> Iterator[tuple[str, float]]:
  """For a semi-amortized model: `latent_metrics` of the encoder's own posterior, named
  amortized_*, and `amortization_gap`, its negative ELBO minus the refined one's (nats)."""
  prefix = "amortized_"
  amortized = {k[len(prefix):]: v for k, v in outputs.items() if k.startswith(prefix)}
  for name, value in latent_metrics(amortized, minibatch_size):
    yield prefix + name, value
  yield "amortization_gap", float(np.mean(amortized["negative_elbo"], dtype=np.float64)
                                  - np.mean(outputs["negative_elbo"], dtype=np.float64))


# Seconds between the progress lines of a long posterior pass.
_PROGRESS_SECONDS = 30.0


class PosteriorEvaluator:
  """One pass of the model over a split: ELBO terms and latent-usage metrics.

  Args:
    model: the VAE.
    strategy: the strategy whose replicas share the batches.
    batch_size: global evaluation batch.
    mi_minibatch_size: minibatch of the He et al. MI protocol.
    jit_compile: compile the per-replica pass with XLA.
  """

  def __init__(self, model: vae_lib.VAE, strategy: tf.distribute.Strategy, batch_size: int,
               mi_minibatch_size: int, jit_compile: bool):
    self.strategy = strategy
    self.batch_size = batch_size
    self.mi_minibatch_size = mi_minibatch_size
    self._step = steps.make_eval_step(model, strategy, jit_compile)

  def outputs(self, data, split: str) -> dict[str, np.ndarray]:
    """Per-example OUTPUT_KEYS over all N examples of `split`: {key: (N, ...)} arrays, in
    the split's stored order whatever order the batches visit them in."""
    expected = data.num_examples(split)
    outputs = self._gather(data.evaluation_batches(split, self.batch_size),
                           f"posterior pass over {split}", expected)
    evaluated = len(outputs["negative_elbo"])
    if evaluated != expected:
      raise AssertionError(f"evaluated {evaluated} of {expected} examples")
    order = data.evaluation_order(split)
    return {key: in_stored_order(value, order) for key, value in outputs.items()}

  def _gather(self, batches: tf.data.Dataset, label: str = "",
              total: int = 0) -> dict[str, np.ndarray]:
    """Per-example outputs of the eval step over `batches`, in batch order; with a
    `label`, a progress line every _PROGRESS_SECONDS (of `total` examples)."""
    parts: dict[str, list[np.ndarray]] = {}
    start = last_line = time.time()
    for batch in distribute.distribute(self.strategy, batches):
      for key, value in self._step(batch).items():
        parts.setdefault(key, []).append(value.numpy())
      if label and time.time() - last_line > _PROGRESS_SECONDS:
        last_line, done = time.time(), sum(len(p) for p in parts["negative_elbo"])
        rate = done / (last_line - start)
        logging.info("%s: %d/%d examples, %.1f examples/s, ETA %.0fs", label, done, total,
                     rate, (total - done) / rate)
    return {key: np.concatenate(value) for key, value in parts.items()}

  def run_on_examples(self, x: np.ndarray) -> Iterator[tuple[str, float | np.ndarray]]:
    """`latent_metrics` of the model inputs `x` (N, ...): e.g. the fixed validation
    subset of training's periodic check."""
    batches = tf.data.Dataset.from_tensor_slices(x).batch(self.batch_size)
    yield from latent_metrics(self._gather(batches), self.mi_minibatch_size)

  def run(self, data, split: str) -> Iterator[tuple[str, float | np.ndarray]]:
    outputs = self.outputs(data, split)
    yield from latent_metrics(outputs, self.mi_minibatch_size)
    if "amortized_negative_elbo" in outputs:
      yield from amortized_metrics(outputs, self.mi_minibatch_size)


class LinearProbeEvaluator:
  """`linear_probe_accuracy`: how well the posterior means (from `posterior`, a
  `PosteriorEvaluator`) predict the labels, fit on the train split's; nothing for a split
  without labels (text) or for the train split itself."""

  def __init__(self, posterior: PosteriorEvaluator):
    self.posterior = posterior

  def run(self, data, split: str) -> Iterator[tuple[str, float]]:
    labels = data.labels(split)
    if labels is None or split == "train":
      return
    yield "linear_probe_accuracy", linear_probe_accuracy(
        self.posterior.outputs(data, "train")["posterior_mean"], data.labels("train"),
        self.posterior.outputs(data, split)["posterior_mean"], labels)


class ImportanceWeightedEvaluator:
  """`iw_nll`: the mean importance-weighted estimate of -log p(x) with K = num_samples
  (nats per example; per sentence for text).

  Decoder memory is O(chunk_size * batch_size) inputs; the estimate depends on neither.
  """

  def __init__(self, model: vae_lib.VAE, num_samples: int, chunk_size: int, batch_size: int,
               seed: int = 0, progress_every: int = 0, jit_compile: bool = True):
    self.model, self.num_samples, self.chunk_size = model, num_samples, chunk_size
    self.batch_size, self.seed, self.progress_every = batch_size, seed, progress_every
    # One compiled decoder call per chunk shape; the loop over chunks stays in Python so
    # that compilation does not grow with num_samples / chunk_size.
    self._compiled_log_likelihood = tf.function(model.decoder.log_likelihood,
                                                jit_compile=jit_compile)

  def _log_likelihood(self, x, z):
    """log p(x|z) of the compiled decoder call, traced forward-only (fused kernels)."""
    with layers.forward_only():
      return self._compiled_log_likelihood(x, z)

  def per_example(self, data, split: str) -> np.ndarray:
    """(N,) estimates of -log p(x) for the N examples of `split`, in stored order."""
    prior = self.model.prior()
    results, start, total = [], time.time(), data.num_examples(split)
    for index, x in enumerate(data.evaluation_batches(split, self.batch_size)):
      posterior = self.model.posterior(x)  # Refined when the model is semi-amortized.
      log_px = metrics.importance_weighted_log_likelihood(
          x, posterior, prior, self._log_likelihood, self.num_samples, self.chunk_size,
          tf.constant([self.seed, index], tf.int32))
      results.append(-log_px.numpy())
      done = sum(len(r) for r in results)
      if self.progress_every and (index + 1) % self.progress_every == 0:
        rate = done / (time.time() - start)
        logging.info("IW-NLL (K=%d): %d/%d examples, %.1f examples/s, ETA %.0fs",
                     self.num_samples, done, total, rate, (total - done) / rate)
    return in_stored_order(np.concatenate(results), data.evaluation_order(split))

  def run(self, data, split: str) -> Iterator[tuple[str, float]]:
    yield "iw_nll", float(np.mean(self.per_example(data, split), dtype=np.float64))


def linear_probe_accuracy(train_features: np.ndarray, train_labels: np.ndarray,
                          eval_features: np.ndarray, eval_labels: np.ndarray,
                          l2: float = 1e-4, max_iterations: int = 1000) -> float:
  """Accuracy on the eval set of multinomial logistic regression fit on the train set.

  scikit-learn's LogisticRegression (L-BFGS) on features standardised with the train
  statistics, minimising mean cross-entropy + l2 * |W|^2 (C = 1 / (2 N l2)).
  """
  classifier = pipeline.make_pipeline(
      preprocessing.StandardScaler(),
      linear_model.LogisticRegression(C=1.0 / (2.0 * len(train_labels) * l2),
                                      max_iter=max_iterations))
  classifier.fit(train_features, train_labels)
  return float(classifier.score(eval_features, eval_labels))


def collect(evaluators, data, split: str, task) -> tuple[dict[str, float], np.ndarray]:
  """Runs `evaluators` over `split`: (scalars with the task's derived figures, the (D,)
  KL per dimension)."""
  return summarize((pair for evaluator in evaluators for pair in evaluator.run(data, split)),
                   task)


def summarize(pairs, task) -> tuple[dict[str, float], np.ndarray]:
  """(scalars with the task's derived figures, the (D,) KL per dimension, empty when no
  evaluator gives it) of evaluators' (name, value) pairs."""
  results = dict(pairs)
  kl_per_dim = np.asarray(results.pop("kl_per_dim", ()), np.float64)
  return task.derived_scalars(results), kl_per_dim
