"""The training loop: distributed steps, periodic evaluation, checkpoints, summaries.

One code path for one device (the default strategy) and several (MirroredStrategy).
Per-example losses are averaged with the global batch size; gradients are all-reduced,
clipped by their global norm, and applied by Adam. A step whose gradient norm is not
finite applies no update and is counted. SIGTERM/SIGINT stop the loop at the next step
boundary after a checkpoint (`TrainingInterrupted`). The KL weight lives in a tf.Variable set
before each step from the linear warm-up schedule.

Workdir layout:
  config.json            the config the run was started with (a resume must match it)
  checkpoints/           latest checkpoints (tf.train.CheckpointManager, atomic writes)
  best/                  the checkpoint with the best validation negative ELBO
  train/, validation/    TensorBoard event files (hparams session at the workdir root)
  metrics.json           final validation and test metrics
  vocabulary.txt         text runs: the vocabulary, `word id` per line
"""

import hashlib
import json
import math
import os
import pathlib
import shutil
import time

from absl import logging
import keras
import ml_collections
import numpy as np
import tensorflow as tf

from skip_vae_tf import config as config_lib
from skip_vae_tf import evaluation
from skip_vae_tf import metrics
from skip_vae_tf import objectives
from skip_vae_tf import stop_signals
from skip_vae_tf import summaries
from skip_vae_tf.data import datasets
from skip_vae_tf.data import files
from skip_vae_tf.data import text as text_data
from skip_vae_tf.models import vae as vae_lib

# Config sections that define what a checkpoint holds; a resume must not change them.
_CHECKPOINT_DEFINING = ("model", "data")
_SAMPLE_SEED_OFFSET = 7919
VOCABULARY_FILE = "vocabulary.txt"


class WorkdirMismatchError(RuntimeError):
  """The workdir holds a run whose model or data config differs from the requested one."""


class WorkdirError(RuntimeError):
  """The workdir cannot be used: not a folder, not readable and writable, corrupt config."""


class CheckpointWriteError(RuntimeError):
  """A checkpoint could not be written (full disk, lost permissions); earlier ones are intact."""


def _save(manager: tf.train.CheckpointManager, step: int) -> None:
  """manager.save(step), or a CheckpointWriteError naming the folder and the intact one.

  TF writes the checkpoint's files under a temporary name and records it in the folder's
  `checkpoint` state file only once they are complete, so a failed or killed write leaves
  the previous checkpoint as the latest.
  """
  try:
    manager.save(checkpoint_number=step)
  except (tf.errors.OpError, OSError) as error:
    reason = (error.message if isinstance(error, tf.errors.OpError) else str(error))
    raise CheckpointWriteError(
        f"cannot write the step-{step} checkpoint to {manager.directory} "
        f"({reason.strip().splitlines()[0][:200]}); the last complete checkpoint "
        f"{manager.latest_checkpoint} is intact: free space or fix permissions, then run the "
        "same command to resume") from error


def _prepare_workdir(workdir: pathlib.Path) -> None:
  """Creates the workdir or checks that an existing one is a readable, writable folder."""
  try:
    if workdir.exists() and not workdir.is_dir():
      raise WorkdirError(f"workdir {workdir} exists and is not a folder")
    workdir.mkdir(parents=True, exist_ok=True)
  except OSError as error:
    raise WorkdirError(f"cannot use workdir {workdir}: {error.strerror or error}") from error
  if not os.access(workdir, os.R_OK | os.W_OK | os.X_OK):
    raise WorkdirError(f"workdir {workdir} is not readable and writable by this user")


class NonFiniteLossError(RuntimeError):
  """Too many consecutive steps had a non-finite loss or gradient."""


class TrainingInterrupted(RuntimeError):
  """SIGTERM or SIGINT stopped the run after writing a checkpoint; `signal_number` says which."""

  def __init__(self, message: str, signal_number: int):
    super().__init__(message)
    self.signal_number = signal_number


def _cluster_size() -> int:
  """Tasks in the cluster that $TF_CONFIG describes (0 when it is unset)."""
  cluster = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("cluster", {})
  return sum(len(tasks) for name, tasks in cluster.items() if name in ("chief", "worker"))


def make_strategy(name: str) -> tf.distribute.Strategy:
  """'default': one device; 'mirrored': all GPUs, else all logical CPUs;
  'multi_worker': MultiWorkerMirroredStrategy over the hosts of $TF_CONFIG; 'auto':
  multi_worker when $TF_CONFIG names several tasks, else mirrored when there are several
  GPUs, else default. Create it before any other TF op runs (collectives are configured
  at startup)."""
  if name == "multi_worker" or (name == "auto" and _cluster_size() > 1):
    return tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING))
  gpus = tf.config.list_logical_devices("GPU")
  if name == "default" or (name == "auto" and len(gpus) < 2):
    return tf.distribute.get_strategy()
  devices = gpus or tf.config.list_logical_devices("CPU")
  return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])


def make_optimizer(train_config: ml_collections.ConfigDict) -> keras.optimizers.Optimizer:
  """Adam or plain SGD at train.learning_rate (a variable: the decay on plateau sets it)."""
  if train_config.optimizer == "sgd":
    return keras.optimizers.SGD(train_config.learning_rate)
  return keras.optimizers.Adam(train_config.learning_rate)


def _set_vocab_size(config: ml_collections.ConfigDict, vocab_size: int) -> None:
  """Records the data's vocabulary size in the model config (0 there means 'from the data')."""
  if config.model.vocab_size not in (0, vocab_size):
    raise config_lib.ConfigError(
        f"model.vocab_size={config.model.vocab_size} but the {config.data.name} vocabulary "
        f"has {vocab_size} entries; leave model.vocab_size at 0")
  config.model.vocab_size = vocab_size


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes the run's files: the chief task, else worker 0 (a
  single-process strategy is always chief)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == "chief":
    return True
  return (resolver.task_type == "worker" and resolver.task_id == 0
          and "chief" not in resolver.cluster_spec().as_dict())


def _check_workdir_config(workdir: pathlib.Path, config: ml_collections.ConfigDict,
                          write: bool = True) -> None:
  """Writes config.json on the first run (if `write`); on a resume, refuses a changed model
  or data."""
  path = workdir / "config.json"
  current = json.loads(config.to_json_best_effort())
  if path.exists():
    try:
      saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
      raise WorkdirError(f"cannot read {path} ({error}): is {workdir} a training workdir? "
                         "Use another --workdir, or restore the file") from error
    for section in _CHECKPOINT_DEFINING:
      for key in sorted(set(saved.get(section, {})) | set(current[section])):
        if key in ("data_dir", "cache_dir"):
          continue
        old, new = saved.get(section, {}).get(key), current[section].get(key)
        if old != new:
          raise WorkdirMismatchError(
              f"workdir {workdir} holds a run with {section}.{key}={old!r}, but this run asks "
              f"for {new!r}; use another --workdir or the same config")
  elif write:
    files.write_text_atomically(path, json.dumps(current, indent=2, sort_keys=True))


def _drop_tensorflow_info(record) -> bool:
  """Logging filter: TF logs INFO lines per checkpoint save and per collective; drop those."""
  return record.levelno > 20 or f"{os.sep}tensorflow{os.sep}" not in record.pathname


def _format_rate(scalars: dict[str, float]) -> str:
  rate = f"{scalars['examples_per_sec']:.1f} examples/s"
  if "tokens_per_sec" in scalars:
    rate += f", {scalars['tokens_per_sec']:.0f} tokens/s, ppl bound {scalars['perplexity_bound']:.1f}"
  return rate


def _format_duration(seconds: float) -> str:
  seconds = int(seconds)
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


class Trainer:
  """Holds the model, optimizer, strategy and state of one training run in `workdir`."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    config_lib.validate(config)
    self.config = config
    self.workdir = pathlib.Path(workdir)
    _prepare_workdir(self.workdir)
    logging.get_absl_logger().addFilter(_drop_tensorflow_info)
    self.strategy = make_strategy(config.train.strategy)
    # Only the chief writes the run's files; other workers write their (identical)
    # checkpoints to a private WORKDIR/.worker<i> (emptied at start and removed at the end)
    # and no summaries.
    self.is_chief = is_chief(self.strategy)
    self.write_dir = self.workdir
    if not self.is_chief:
      self.write_dir = self.workdir / f".worker{self.strategy.cluster_resolver.task_id}"
      shutil.rmtree(self.write_dir, ignore_errors=True)
    self.data = datasets.load_configured(config.data, config.seed)
    if config_lib.is_text(config):
      _set_vocab_size(config, self.data.vocabulary.size)
    _check_workdir_config(self.workdir, config, write=self.is_chief)
    if config_lib.is_text(config) and self.is_chief:  # Exports read it with the weights.
      text_data.write_vocabulary_file(self.workdir / VOCABULARY_FILE, self.data.vocabulary)
    keras.utils.set_random_seed(config.seed)
    if config.train.deterministic:
      tf.config.experimental.enable_op_determinism()
    self.global_batch_size = config.train.batch_size
    if self.global_batch_size % self.strategy.num_replicas_in_sync:
      raise config_lib.ConfigError(
          f"train.batch_size={self.global_batch_size} is not divisible by the "
          f"{self.strategy.num_replicas_in_sync} replicas")
    self.train_input = self.data.training_batches(config.train.batch_size, config.seed)
    self.steps_per_epoch = self.train_input.steps_per_epoch
    total = config.train.epochs * self.steps_per_epoch
    self.total_steps = min(total, config.train.max_steps) if config.train.max_steps else total

    with self.strategy.scope():
      self.model = vae_lib.build_vae(config.model)
      self.optimizer = make_optimizer(config.train)
      self.optimizer.build(self.model.trainable_variables)
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
      self.kl_weight = tf.Variable(1.0, trainable=False, name="kl_weight")
      self.best_validation = tf.Variable(math.inf, trainable=False, name="best_validation")
      self.skipped_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_steps")
    self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                          step=self.step, kl_weight=self.kl_weight,
                                          best_validation=self.best_validation,
                                          skipped_steps=self.skipped_steps)
    self.latest_manager = tf.train.CheckpointManager(
        self.checkpoint, str(self.write_dir / "checkpoints"), config.train.checkpoints_to_keep)
    self.best_manager = tf.train.CheckpointManager(self.checkpoint, str(self.write_dir / "best"),
                                                   1)
    self.train_writer, self.validation_writer = (
        (tf.summary.create_file_writer(str(self.workdir / "train")),
         tf.summary.create_file_writer(str(self.workdir / "validation"))) if self.is_chief
        else (tf.summary.create_noop_writer(), tf.summary.create_noop_writer()))
    self._gradient_step, self._apply_step = self._make_train_step()
    self._moving_statistics = [v for v in self.model.non_trainable_variables
                               if v.dtype in ("float32", "float64")]
    self._eval_step = evaluation.make_eval_step(self.model, self.strategy,
                                                config.train.jit_compile)
    self._reconstruct_and_sample = tf.function(self.model.reconstruct_and_sample)

  # ---- distributed steps -------------------------------------------------------------

  def _make_train_step(self):
    """Returns (gradient_step, apply_step), two tf.functions.

    gradient_step(x) -> (stats, grads): mean loss terms over the global batch (nats per
    example; for text also the mean `num_tokens` per sentence), the He et al. minibatch MI of each replica's batch (averaged over replicas),
    the global gradient norm before clipping, whether it is finite, and each
    replica's share of the all-reduced, clipped gradient. apply_step(grads) applies Adam.
    They are separate so that a non-finite step skips the optimizer entirely (its moments
    and iteration count included): a synchronising optimizer update cannot sit inside a
    tf.cond under MirroredStrategy.
    """
    model, optimizer, strategy = self.model, self.optimizer, self.strategy
    clip_norm = self.config.train.grad_clip_norm
    global_batch = self.global_batch_size

    @tf.function(jit_compile=self.config.train.jit_compile)
    def local_gradients(x):
      with tf.GradientTape() as tape:
        terms = model(x, training=True)
        loss = tf.nn.compute_average_loss(objectives.weighted_loss(terms, self.kl_weight),
                                          global_batch_size=global_batch)
      sums = {name: tf.reduce_sum(terms[name]) for name in
              ("negative_elbo", "reconstruction_nll", "kl", "num_tokens") if name in terms}
      mutual_information = metrics.minibatch_mutual_information(
          terms["posterior_mean"], terms["posterior_log_variance"], terms["z"])
      grads = tape.gradient(loss, model.trainable_variables)
      # Embedding gradients come as IndexedSlices; the all-reduce, clip and 1/R share
      # below treat every gradient alike as a dense tensor.
      return sums, mutual_information, [tf.convert_to_tensor(g) for g in grads]

    def replica_gradients(x):
      sums, mutual_information, grads = local_gradients(x)
      context = tf.distribute.get_replica_context()
      grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
      grad_norm = tf.linalg.global_norm(grads)
      clipped, _ = tf.clip_by_global_norm(grads, clip_norm, use_norm=grad_norm)
      # The optimizer sums gradients over replicas again: hand each replica its share.
      replicas = strategy.num_replicas_in_sync
      share = [g / replicas for g in clipped] if replicas > 1 else clipped
      return sums, mutual_information, grad_norm, share

    # Text batches come in one shape per length bucket: trace once for all of them (XLA
    # still compiles local_gradients once per shape).
    @tf.function(reduce_retracing=True)
    def gradient_step(x):
      sums, mutual_information, grad_norm, share = strategy.run(replica_gradients, args=(x,))
      stats = {name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
               / global_batch for name, value in sums.items()}
      stats["mi_minibatch_he2019"] = strategy.reduce(tf.distribute.ReduceOp.MEAN,
                                                     mutual_information, axis=None)
      stats["grad_norm"] = strategy.reduce(tf.distribute.ReduceOp.MEAN, grad_norm, axis=None)
      stats["finite"] = tf.math.is_finite(stats["grad_norm"])
      return stats, share

    @tf.function
    def apply_step(share):
      # tf.identity places each gradient on the replica's device: with one replica per
      # worker (MultiWorkerMirroredStrategy) they arrive as plain tensors without one, and
      # the optimizer's all-reduce needs a destination.
      strategy.run(lambda g: optimizer.apply_gradients(
          zip([tf.identity(t) for t in g], model.trainable_variables)), args=(share,))

    return gradient_step, apply_step

  def train_step(self, batch) -> dict[str, tf.Tensor]:
    """One step on a distributed global batch; the update is skipped if not finite.

    Returns the mean negative ELBO, reconstruction NLL and KL over the batch (nats per
    example), the minibatch MI estimate, the gradient norm before clipping, and `finite`.
    A skipped step adds one to `skipped_steps` (checkpointed, logged as a train scalar) and
    leaves the weights, optimizer state and batch-norm statistics as they were.
    """
    # Batch-norm moving statistics change in the forward pass itself: a skipped step must
    # put them back, or one NaN batch poisons every later evaluation and checkpoint.
    statistics = [tf.identity(v.value) for v in self._moving_statistics]
    stats, grads = self._gradient_step(batch)
    if bool(stats["finite"]):
      self._apply_step(grads)
    else:
      self.skipped_steps.assign_add(1)
      for variable, value in zip(self._moving_statistics, statistics):
        variable.assign(value)
    return stats

  # ---- evaluation --------------------------------------------------------------------

  def evaluate(self, split: str) -> tuple[dict[str, float], np.ndarray]:
    """`evaluation.latent_metrics` of a data split: (scalars, KL per dim).

    Every example counts once (the last partial batch exactly); the He et al. MI uses
    minibatches of train.mi_minibatch_size.
    """
    outputs = evaluation.posterior_outputs(self._eval_step, self.strategy, self.data, split,
                                           self.config.train.eval_batch_size)
    return evaluation.latent_metrics(outputs, self.config.train.mi_minibatch_size)

  def _log_samples(self, step: int) -> None:
    count = self.config.train.num_logged_samples
    if not count:
      return
    originals = self.data.first_examples("validation", count)
    seed = tf.constant([self.config.seed, _SAMPLE_SEED_OFFSET], tf.int32)
    reconstructions, samples = self._reconstruct_and_sample(originals, count, seed)
    summaries.write_samples(self.validation_writer, self.data, originals,
                            reconstructions.numpy(), samples.numpy(), step)

  def _decay_learning_rate(self) -> None:
    """Multiplies the learning rate by train.lr_decay_factor (not below the minimum)."""
    config = self.config.train
    old = float(self.optimizer.learning_rate.numpy())
    new = max(old * config.lr_decay_factor, config.min_learning_rate)
    if new < old:
      self.optimizer.learning_rate.assign(new)
      logging.info("validation did not improve: learning rate %.4g -> %.4g", old, new)

  def _validate(self, step: int) -> dict[str, float]:
    start = time.time()
    scalars, kl_per_dim = self.evaluate("validation")
    summaries.write_scalars(self.validation_writer, scalars, step)
    summaries.write_kl_per_dim(self.validation_writer, kl_per_dim, step)
    self._log_samples(step)
    logging.info("validation at step %d: %s (%.1fs)", step,
                 ", ".join(f"{k} {v:.4g}" for k, v in scalars.items()), time.time() - start)
    if scalars["neg_elbo"] < float(self.best_validation.numpy()):
      self.best_validation.assign(scalars["neg_elbo"])
      _save(self.best_manager, step)
      logging.info("new best validation neg_elbo %.4f: saved %s", scalars["neg_elbo"],
                   self.best_manager.latest_checkpoint)
    else:
      self._decay_learning_rate()
    return scalars

  # ---- the loop ----------------------------------------------------------------------

  def _restore(self) -> int:
    # Every worker resumes from the chief's checkpoints (the workdir is shared).
    latest = tf.train.latest_checkpoint(str(self.workdir / "checkpoints"))
    if latest is None:
      logging.info("Starting a new run in %s", self.workdir)
      return 0
    evaluation.restore_checkpoint(self.checkpoint, latest, self.workdir / "config.json")
    step = int(self.step.numpy())
    logging.info("Resumed from step %d (epoch %d, checkpoint %s)", step,
                 step // self.steps_per_epoch, latest)
    return step

  def _write_run_info(self) -> None:
    model, train = self.config.model, self.config.train
    hparams = {"dataset": self.config.data.name, "skip": bool(model.skip),
               "latent_dim": model.latent_dim, "encoder": model.encoder,
               "decoder": model.decoder, "batch_size": train.batch_size,
               "optimizer": train.optimizer, "learning_rate": train.learning_rate,
               "kl_warmup_epochs": float(train.kl_warmup_epochs), "seed": self.config.seed}
    if config_lib.is_text(self.config):
      hparams.update(decoder_layers=len(model.decoder_hidden),
                     decoder_hidden=model.decoder_hidden[-1],
                     embedding_dim=model.embedding_dim,
                     decoder_dropout=float(model.decoder_dropout))
    else:
      hparams.update(decoder_layers=len(model.decoder_kernel_sizes),
                     decoder_channels=model.decoder_channels,
                     latent_feature_maps=model.latent_feature_maps)
    summaries.write_run_info(tf.summary.create_file_writer(str(self.workdir)), hparams,
                             {"data_source": self.data.source,
                              "config": "```\n" + self.config.to_json_best_effort(indent=2)
                                        + "\n```"})

  def train(self) -> dict:
    """Trains to `total_steps` (resuming if the workdir holds a checkpoint); returns metrics.

    Raises:
      TrainingInterrupted: SIGTERM/SIGINT arrived; a checkpoint of the last finished step
        was written first.
    """
    try:
      with stop_signals.StopRequests() as stop:
        return self._train(stop)
    finally:
      if not self.is_chief:
        shutil.rmtree(self.write_dir, ignore_errors=True)

  def _stop(self, stop: stop_signals.StopRequests, step: int) -> None:
    latest = self.latest_manager.latest_checkpoint
    if latest is None or not latest.endswith(f"-{step}"):
      _save(self.latest_manager, step)
    raise TrainingInterrupted(
        f"{stop.signal_name} received: saved {self.latest_manager.latest_checkpoint} at step "
        f"{step}; run the same command to resume", stop.signal_number)

  def _train(self, stop: stop_signals.StopRequests) -> dict:
    step = self._restore()
    if step == 0 and self.is_chief:
      self._write_run_info()
    logging.info("Data: %s", self.data.source)
    logging.info("%s: %d parameters; %d steps of batch %d (%d per epoch) on %d replica(s)",
                 self.model.name, self.model.count_params(), self.total_steps,
                 self.global_batch_size, self.steps_per_epoch,
                 self.strategy.num_replicas_in_sync)
    config = self.config.train
    window_start, window_steps, window_tokens, run_start = time.time(), 0, 0.0, time.time()
    consecutive_nonfinite = 0
    while step < self.total_steps:
      epoch, offset = divmod(step, self.steps_per_epoch)
      dataset = evaluation.distribute(self.strategy,
                                      self.train_input.epoch(epoch, skip_batches=offset))
      for batch in dataset:
        self.kl_weight.assign(objectives.linear_kl_weight(
            step, self.steps_per_epoch, config.kl_warmup_epochs, config.kl_start_weight))
        result = self.train_step(batch)
        step += 1
        self.step.assign(step)
        window_steps += 1
        if "num_tokens" in result:
          window_tokens += float(result["num_tokens"]) * self.global_batch_size
        if bool(result["finite"]):
          consecutive_nonfinite = 0
        else:
          consecutive_nonfinite += 1
          logging.warning("step %d: non-finite gradient norm, update skipped", step)
          if consecutive_nonfinite >= config.max_consecutive_nonfinite:
            raise NonFiniteLossError(
                f"{consecutive_nonfinite} consecutive steps had a non-finite loss or gradient "
                f"(last at step {step}); the last good checkpoint is "
                f"{self.latest_manager.latest_checkpoint}")
        if step % config.log_every_steps == 0 or step == self.total_steps:
          elapsed = max(time.time() - window_start, 1e-9)
          rate = window_steps * self.global_batch_size / elapsed
          scalars = {k: float(v) for k, v in result.items() if k != "finite"}
          scalars["neg_elbo"] = scalars.pop("negative_elbo")
          scalars = evaluation.per_word_scalars(scalars)
          scalars.update(kl_weight=float(self.kl_weight.numpy()),
                         learning_rate=float(self.optimizer.learning_rate.numpy()),
                         skipped_steps=float(self.skipped_steps.numpy()),
                         examples_per_sec=rate)
          if window_tokens:
            scalars["tokens_per_sec"] = window_tokens / elapsed
          summaries.write_scalars(self.train_writer, scalars, step)
          eta = (self.total_steps - step) * self.global_batch_size / max(rate, 1e-9)
          logging.info("step %d/%d epoch %d | neg_elbo %.3f recon %.3f kl %.3f grad_norm %.3g "
                       "| %s | ETA %s", step, self.total_steps, epoch + 1,
                       scalars["neg_elbo"], scalars["reconstruction_nll"], scalars["kl"],
                       scalars["grad_norm"], _format_rate(scalars), _format_duration(eta))
          window_start, window_steps, window_tokens = time.time(), 0, 0.0
        end_of_epoch = step % self.steps_per_epoch == 0
        validation_due = (end_of_epoch
                          and (step // self.steps_per_epoch) % config.eval_every_epochs == 0
                          or step == self.total_steps)
        if validation_due:
          # Before the checkpoint of this step: a run killed during validation resumes from
          # the previous checkpoint and validates again, as an uninterrupted run did.
          self._validate(step)
          window_start, window_steps, window_tokens = time.time(), 0, 0.0
        if validation_due or step % config.checkpoint_every_steps == 0:
          _save(self.latest_manager, step)
        if stop.requested:
          self._stop(stop, step)
        if step >= self.total_steps:
          break
    return self._final_metrics(step, time.time() - run_start)

  def _final_metrics(self, step: int, train_seconds: float) -> dict:
    """Validation and test metrics of the best checkpoint, written to metrics.json."""
    if self.latest_manager.latest_checkpoint is None or int(self.step.numpy()) != step:
      _save(self.latest_manager, step)
    # Decided on a value every worker holds, so that all run the same collectives.
    if not math.isfinite(float(self.best_validation.numpy())):
      self._validate(step)
    best = (self.best_manager.latest_checkpoint
            or tf.train.latest_checkpoint(str(self.workdir / "best")))
    self.checkpoint.restore(best).assert_existing_objects_matched()
    validation, validation_kl = self.evaluate("validation")
    test, test_kl = self.evaluate("test")
    result = {
        "dataset": self.config.data.name,
        "data_source": self.data.source,
        "seed": self.config.seed,
        "skip": bool(self.config.model.skip),
        "steps": step,
        "best_checkpoint": best,
        "train_seconds_this_invocation": round(train_seconds, 1),
        "validation": validation,
        "validation_kl_per_dim": validation_kl.tolist(),
        "test": test,
        "test_kl_per_dim": test_kl.tolist(),
        "units": evaluation.units_note(self.config),
    }
    path = self.workdir / "metrics.json"
    if self.is_chief:
      files.write_text_atomically(path, json.dumps(result, indent=2))
    self.checkpoint.restore(self.latest_manager.latest_checkpoint)
    logging.info("weights fingerprint at step %d: %s", step, self.weights_fingerprint())
    logging.info("test at best checkpoint: %s; wrote %s",
                 ", ".join(f"{k} {v:.4g}" for k, v in test.items()), path)
    return result

  def weights_fingerprint(self) -> str:
    """sha256 of the trainable weights: equal on all workers of a healthy run. (Batch-norm
    moving statistics are each replica's running estimate from its own batches, as in
    Keras; checkpoints hold the chief's.)"""
    digest = hashlib.sha256()
    for variable in self.model.trainable_variables:
      digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()[:16]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (or resumes) the run in `workdir` and returns the final metrics."""
  return Trainer(config, workdir).train()
