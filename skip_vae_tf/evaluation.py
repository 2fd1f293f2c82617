"""Dataset-level evaluation of a VAE: the functions both training and bin/evaluate.py use.

- `make_eval_step` / `posterior_outputs`: one pass over a split giving per-example ELBO
  terms and posterior parameters (the last partial batch included, exactly once).
- `latent_metrics`: negative ELBO, reconstruction NLL, KL (nats per example; for text
  also per word and the perplexity bound), MI under both protocols, active units under
  both conventions, KL per dimension.
- `importance_weighted_nll`: -log p(x) estimates with K importance samples.
- `linear_probe_accuracy`: a logistic-regression probe on posterior means.
- `evaluate_run`: all of the above for a trained run's checkpoint.
Definitions and units: docs/metrics.md.
"""

import json
import logging as pylogging
import math
import pathlib
import time

from absl import logging
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from skip_vae_tf import config as config_lib
from skip_vae_tf import metrics
from skip_vae_tf.data import datasets
from skip_vae_tf.data import files
from skip_vae_tf.models import vae as vae_lib

# Per-example outputs of an evaluation pass; text models add "num_tokens".
OUTPUT_KEYS = ("negative_elbo", "reconstruction_nll", "kl", "kl_per_dim", "posterior_mean",
               "posterior_log_variance", "z", "num_tokens")
SPLITS = ("train", "validation", "test")


class CheckpointMismatchError(RuntimeError):
  """A run's checkpoint does not hold the variables its config.json describes."""


def distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
  """`strategy.experimental_distribute_dataset` with each global batch split by element
  across workers (DATA sharding: our inputs are in-memory arrays, not files)."""
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return strategy.experimental_distribute_dataset(dataset.with_options(options))


def make_eval_step(model: vae_lib.VAE, strategy: tf.distribute.Strategy, jit_compile: bool):
  """A tf.function: distributed batch -> {key: (B, ...)} of OUTPUT_KEYS, gathered."""

  # XLA cannot place the replicas' variables of a multi-device eval (TF known issue).
  @tf.function(jit_compile=jit_compile and strategy.num_replicas_in_sync == 1)
  def replica_outputs(batch):
    terms = model(batch, training=False)
    return {k: terms[k] for k in OUTPUT_KEYS if k in terms}

  @tf.function(reduce_retracing=True)  # One trace for every batch shape.
  def eval_step(x):
    outputs = strategy.run(replica_outputs, args=(x,))
    return {k: strategy.gather(v, axis=0) for k, v in outputs.items()}

  return eval_step


def _in_stored_order(values: np.ndarray, order: np.ndarray | None) -> np.ndarray:
  """Rows computed in `order` (None = stored order) put back in stored order."""
  if order is None:
    return values
  restored = np.empty_like(values)
  restored[order] = values
  return restored


def posterior_outputs(eval_step, strategy: tf.distribute.Strategy, data: datasets.Dataset,
                      split: str, batch_size: int) -> dict[str, np.ndarray]:
  """Per-example OUTPUT_KEYS over all N examples of `split`: {key: (N, ...)} arrays, in
  the split's stored order whatever order the batches visit them in."""
  dataset = distribute(strategy, data.evaluation_batches(split, batch_size))
  parts: dict[str, list[np.ndarray]] = {}
  for batch in dataset:
    for key, value in eval_step(batch).items():
      parts.setdefault(key, []).append(value.numpy())
  evaluated, expected = sum(len(p) for p in parts["negative_elbo"]), data.num_examples(split)
  if evaluated != expected:
    raise AssertionError(f"evaluated {evaluated} of {expected} examples")
  order = data.evaluation_order(split)
  return {key: _in_stored_order(np.concatenate(value), order) for key, value in parts.items()}


def per_word_scalars(scalars: dict[str, float]) -> dict[str, float]:
  """Adds the per-word figures of text runs to per-sentence means (else unchanged).

  `num_tokens` (mean predicted tokens per sentence: words and `</s>`, not `<s>`) is
  replaced by `words_per_sentence`; ratios of means are ratios of sums over the set:
  reconstruction_nll_per_word, neg_elbo_per_word (nats per word),
  perplexity_bound = exp(neg_elbo_per_word), and with `iw_nll` also iw_nll_per_word and
  perplexity_iw = exp(iw_nll_per_word).
  """
  scalars = dict(scalars)
  if "num_tokens" in scalars:
    words = scalars.pop("num_tokens")
    scalars["words_per_sentence"] = words
    scalars["reconstruction_nll_per_word"] = scalars["reconstruction_nll"] / words
    scalars["neg_elbo_per_word"] = scalars["neg_elbo"] / words
    scalars["perplexity_bound"] = math.exp(scalars["neg_elbo_per_word"])
  if "words_per_sentence" in scalars and "iw_nll" in scalars:
    scalars["iw_nll_per_word"] = scalars["iw_nll"] / scalars["words_per_sentence"]
    scalars["perplexity_iw"] = math.exp(scalars["iw_nll_per_word"])
  return scalars


def units_note(config: ml_collections.ConfigDict) -> str:
  """What the numbers of a run's reports are measured in."""
  note = ("nats per example; definitions in docs/metrics.md (mi_minibatch_he2019 uses "
          f"minibatches of {config.train.mi_minibatch_size})")
  if config_lib.is_text(config):
    note = ("nats per sentence, *_per_word in nats per word; a word is every token the "
            "decoder predicts (the words of the sentence and </s>, not <s>; <unk> counts); "
            "perplexities are exp(nats per word). " + note.split("; ", 1)[1])
  return note


def latent_metrics(outputs: dict[str, np.ndarray], minibatch_size: int,
                   tile_size: int = 2048) -> tuple[dict[str, float], np.ndarray]:
  """Scalars over the whole set (nats per example) and the (D,) mean KL per dimension.

  `minibatch_size` is the minibatch of the He et al. MI protocol.
  """
  scalars = {name: float(np.mean(outputs[key], dtype=np.float64)) for name, key in
             (("neg_elbo", "negative_elbo"), ("reconstruction_nll", "reconstruction_nll"),
              ("kl", "kl"), ("num_tokens", "num_tokens")) if key in outputs}
  mean, log_variance, z = (tf.constant(outputs[k]) for k in
                           ("posterior_mean", "posterior_log_variance", "z"))
  scalars["mi_aggregate"] = metrics.mutual_information(mean, log_variance, z, tile_size)
  scalars["mi_minibatch_he2019"] = metrics.mean_minibatch_mutual_information(
      mean, log_variance, z, minibatch_size)
  scalars["active_units_cov_ge_0.01"] = metrics.active_units(mean, 0.01)
  scalars["active_units_cov_gt_0.02"] = metrics.active_units(mean, 0.02, strict=True)
  return per_word_scalars(scalars), outputs["kl_per_dim"].mean(axis=0, dtype=np.float64)


def importance_weighted_nll(model: vae_lib.VAE, data: datasets.Dataset, split: str,
                            num_samples: int, chunk_size: int, batch_size: int, seed: int = 0,
                            progress_every: int = 0, jit_compile: bool = True) -> np.ndarray:
  """(N,) importance-weighted estimates of -log p(x) with K = num_samples for the N
  examples of `split`, in stored order; nats per example (per sentence for text).

  Memory is O(chunk_size * batch_size) decoder inputs; the estimate depends on neither.
  """
  prior = model.prior()
  # One compiled decoder call per chunk shape; the loop over chunks stays in Python so
  # that compilation does not grow with num_samples / chunk_size.
  log_likelihood = tf.function(model.decoder.log_likelihood, jit_compile=jit_compile)

  def batch_nll(x, batch_seed):
    posterior = model.encoder(x, training=False)
    return -metrics.importance_weighted_log_likelihood(
        x, posterior, prior, log_likelihood, num_samples, chunk_size, batch_seed)

  results, start, total = [], time.time(), data.num_examples(split)
  for index, x in enumerate(data.evaluation_batches(split, batch_size)):
    results.append(batch_nll(x, tf.constant([seed, index], tf.int32)).numpy())
    done = sum(len(r) for r in results)
    if progress_every and (index + 1) % progress_every == 0:
      rate = done / (time.time() - start)
      logging.info("IW-NLL (K=%d): %d/%d examples, %.1f examples/s, ETA %.0fs", num_samples,
                   done, total, rate, (total - done) / rate)
  return _in_stored_order(np.concatenate(results), data.evaluation_order(split))


def linear_probe_accuracy(train_features: np.ndarray, train_labels: np.ndarray,
                          eval_features: np.ndarray, eval_labels: np.ndarray,
                          l2: float = 1e-4, max_iterations: int = 100) -> float:
  """Accuracy on the eval set of multinomial logistic regression fit on the train set.

  Features are standardised with the train statistics; the fit minimises mean
  cross-entropy + l2 * |W|^2 with L-BFGS (tfp.optimizer.lbfgs_minimize).
  """
  center, scale = train_features.mean(0), train_features.std(0) + 1e-8
  x_train = tf.constant((train_features - center) / scale, tf.float32)
  x_eval = tf.constant((eval_features - center) / scale, tf.float32)
  num_classes = int(max(train_labels.max(), eval_labels.max())) + 1
  dim = x_train.shape[1]
  labels = tf.constant(train_labels, tf.int64)

  def unpack(params):
    return tf.reshape(params[:dim * num_classes], [dim, num_classes]), params[dim * num_classes:]

  @tf.function
  def loss_and_gradient(params):
    with tf.GradientTape() as tape:
      tape.watch(params)
      weights, bias = unpack(params)
      logits = tf.matmul(x_train, weights) + bias
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
      loss += l2 * tf.reduce_sum(weights ** 2)
    return loss, tape.gradient(loss, params)

  result = tfp.optimizer.lbfgs_minimize(
      loss_and_gradient, tf.zeros([(dim + 1) * num_classes], tf.float32),
      max_iterations=max_iterations)
  weights, bias = unpack(result.position)
  predictions = tf.argmax(tf.matmul(x_eval, weights) + bias, axis=1).numpy()
  return float(np.mean(predictions == eval_labels))


def default_iw_chunk(config: ml_collections.ConfigDict, batch_size: int) -> int:
  """Importance samples per decoder call so that a call sees about 500 images or 64
  sentences (a sentence's logits hold length x vocabulary floats: 64 Yahoo documents of
  200 tokens are 1 GB)."""
  return max(1, (64 if config_lib.is_text(config) else 500) // batch_size)


def restore_model(workdir: pathlib.Path, checkpoint: str) -> tuple[
    ml_collections.ConfigDict, vae_lib.VAE, str]:
  """(config, model, checkpoint path) of a run, with the 'best' or 'latest' weights."""
  config_path = workdir / "config.json"
  if not config_path.is_file():
    raise FileNotFoundError(f"{config_path} not found: is {workdir} a training workdir?")
  config = config_lib.from_saved(json.loads(config_path.read_text()))
  folder = workdir / ("best" if checkpoint == "best" else "checkpoints")
  path = tf.train.latest_checkpoint(str(folder))
  if path is None:
    raise FileNotFoundError(f"no {checkpoint} checkpoint in {folder}")
  model = vae_lib.build_vae(config.model)
  restore_checkpoint(tf.train.Checkpoint(model=model), path, config_path, partial=True)
  return config, model, path


def restore_checkpoint(checkpoint: tf.train.Checkpoint, path: str,
                       config_path: pathlib.Path, partial: bool = False) -> None:
  """Restores `path` into `checkpoint`, every object of which must be in it (`partial`:
  the checkpoint may hold more, e.g. the optimizer).

  Raises:
    CheckpointMismatchError: a variable is missing or has another shape; one line naming
      the checkpoint, the config it should match, and the first difference.
  """
  try:
    status = checkpoint.restore(path)
    if partial:
      status = status.expect_partial()
    status.assert_existing_objects_matched()
    return
  except (AssertionError, ValueError, tf.errors.OpError) as error:
    message = (f"checkpoint {path} does not hold the model that {config_path} describes "
               f"({str(error).strip().splitlines()[0][:300]})")
  raise CheckpointMismatchError(message)


def silence_tensorflow_warnings() -> None:
  """For binaries exiting on an error: the objects of a failed checkpoint restore log a page
  of warnings when collected at exit, after the one-line error."""
  pylogging.getLogger("tensorflow").setLevel(pylogging.ERROR)


def evaluate_run(workdir: str, split: str = "test", checkpoint: str = "best",
                 iw_samples: int = 500, iw_chunk: int = 0, batch_size: int = 0,
                 data_dir: str | None = None, max_examples: int = 0) -> dict:
  """Every metric of docs/metrics.md for one split of a trained run.

  `batch_size` 0 means the run's train.eval_batch_size; `iw_chunk` 0 means decoder calls
  of about 500 images or 64 sentences (`default_iw_chunk`); `max_examples` (0 = all) caps
  the evaluated split.

  Writes eval_<split>.json and eval_<split>.md into `workdir` and TensorBoard scalars
  under `eval/<split>/` in workdir/eval; returns the json content.
  """
  workdir_path = pathlib.Path(workdir)
  config, model, path = restore_model(workdir_path, checkpoint)
  if data_dir is not None:
    config.data.data_dir = data_dir
  if max_examples:
    config.data["max_train_examples" if split == "train" else "max_eval_examples"] = max_examples
  batch_size = batch_size or config.train.eval_batch_size
  iw_chunk = iw_chunk or default_iw_chunk(config, batch_size)
  data = datasets.load_configured(config.data, config.seed)
  logging.info("Evaluating %s (%s) on %d %s examples", path, config.model.decoder,
               data.num_examples(split), split)
  strategy = tf.distribute.get_strategy()
  eval_step = make_eval_step(model, strategy, config.train.jit_compile)
  start = time.time()
  outputs = posterior_outputs(eval_step, strategy, data, split, batch_size)
  scalars, kl_per_dim = latent_metrics(outputs, config.train.mi_minibatch_size)
  timings = {"elbo_pass_seconds": time.time() - start}
  if iw_samples:
    start = time.time()
    nll = importance_weighted_nll(model, data, split, iw_samples, iw_chunk, batch_size,
                                  seed=config.seed, progress_every=10,
                                  jit_compile=config.train.jit_compile)
    scalars["iw_nll"] = float(np.mean(nll, dtype=np.float64))
    scalars = per_word_scalars(scalars)
    timings["iw_nll_seconds"] = time.time() - start
  labels = data.labels(split)
  if labels is not None and split != "train":
    train_outputs = posterior_outputs(eval_step, strategy, data, "train", batch_size)
    scalars["linear_probe_accuracy"] = linear_probe_accuracy(
        train_outputs["posterior_mean"], data.labels("train"), outputs["posterior_mean"],
        labels)
  result = {"workdir": str(workdir_path), "checkpoint": path, "split": split,
            "num_examples": data.num_examples(split), "dataset": config.data.name,
            "data_source": data.source, "seed": config.seed, "skip": bool(config.model.skip),
            "iw_samples": iw_samples, "metrics": scalars,
            "kl_per_dim": kl_per_dim.tolist(), "timings": timings,
            "units": units_note(config)}
  _write_reports(workdir_path, split, result)
  return result


def markdown_table(result: dict) -> str:
  """The metrics of an `evaluate_run` result as a Markdown table."""
  lines = [f"Evaluation of `{result['checkpoint']}` on {result['num_examples']} "
           f"{result['split']} examples ({result['dataset']}, skip={result['skip']}); "
           f"{result['units']}.", "",
           "| metric | value |", "|---|---|"]
  lines += [f"| {name} | {value:.4f} |" if isinstance(value, float) else f"| {name} | {value} |"
            for name, value in result["metrics"].items()]
  return "\n".join(lines) + "\n"


def _write_reports(workdir: pathlib.Path, split: str, result: dict) -> None:
  for suffix, text in (("json", json.dumps(result, indent=2)), ("md", markdown_table(result))):
    files.write_text_atomically(workdir / f"eval_{split}.{suffix}", text)
  step = int(pathlib.Path(result["checkpoint"]).name.split("-")[-1])
  writer = tf.summary.create_file_writer(str(workdir / "eval"))
  with writer.as_default(step=step):
    for name, value in result["metrics"].items():
      tf.summary.scalar(f"eval/{split}/{name}", value)
    tf.summary.histogram(f"eval/{split}/kl_per_dim", result["kl_per_dim"])
  writer.flush()
