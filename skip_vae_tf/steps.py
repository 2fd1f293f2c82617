"""The compiled per-batch steps: training (gradients, then the update) and evaluation.

Each step runs under a tf.distribute strategy: `strategy.run` on every replica, losses
averaged with the global batch size, gradients all-reduced and clipped by their global
norm. The training step is two tf.functions so that a non-finite step skips the optimizer
entirely (its moments and iteration count included): a synchronising optimizer update
cannot sit inside a tf.cond under MirroredStrategy.
"""

from collections.abc import Callable

import keras
import ml_collections
import tensorflow as tf

from skip_vae_tf import metrics
from skip_vae_tf import objectives

# (terms, kl_weight) -> (B,) training loss, nats per example (objectives.weighted_loss).
LossFn = Callable[[dict, tf.Tensor], tf.Tensor]
# Per-example terms whose batch means the training step reports.
_STEP_TERMS = ("negative_elbo", "reconstruction_nll", "kl", "num_tokens")
# Per-example outputs of an evaluation pass; text models add "num_tokens", semi-amortized
# ones the encoder's own posterior ("amortized_*").
_POSTERIOR_OUTPUTS = ("negative_elbo", "reconstruction_nll", "kl", "posterior_mean",
                      "posterior_log_variance", "z")
EVAL_OUTPUTS = (*_POSTERIOR_OUTPUTS, "kl_per_dim", "num_tokens",
                *(f"amortized_{name}" for name in _POSTERIOR_OUTPUTS))


def make_optimizer(train_config: ml_collections.ConfigDict) -> keras.optimizers.Optimizer:
  """Adam or plain SGD at train.learning_rate (a variable: the decay on plateau sets it)."""
  if train_config.optimizer == "sgd":
    return keras.optimizers.SGD(train_config.learning_rate)
  return keras.optimizers.Adam(train_config.learning_rate, epsilon=train_config.adam_epsilon)


def _replica_gradients(model: keras.Model, kl_weight: tf.Variable, global_batch: int,
                       jit_compile: bool, loss_fn: LossFn):
  """A per-replica function x -> (term sums, minibatch MI, global grad norm, the
  all-reduced gradient)."""

  # The model's inference says how its gradients are computed and whether XLA may
  # compile them (models/inference.py).
  @tf.function(jit_compile=jit_compile and model.inference.compiles_with_xla)
  def local_gradients(x):
    terms, grads = model.terms_and_gradients(x, kl_weight, 1.0 / global_batch, loss_fn)
    sums = {name: tf.reduce_sum(terms[name]) for name in _STEP_TERMS if name in terms}
    mutual_information = metrics.minibatch_mutual_information(
        terms["posterior_mean"], terms["posterior_log_variance"], terms["z"])
    # Embedding gradients come as IndexedSlices; the all-reduce, clip and 1/R share
    # below treat every gradient alike as a dense tensor.
    return sums, mutual_information, [tf.convert_to_tensor(g) for g in grads]

  def replica_gradients(x):
    sums, mutual_information, grads = local_gradients(x)
    context = tf.distribute.get_replica_context()
    grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    return sums, mutual_information, tf.linalg.global_norm(grads), grads

  return replica_gradients


def make_apply_step(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                    strategy: tf.distribute.Strategy, clip_norm: float,
                    variables: list | None = None):
  """apply_step(grads), a tf.function: the all-reduced gradients (aligned with the model's
  trainable variables) of `variables` (default all of them), clipped by their global
  norm, applied by `optimizer` to those variables alone (He et al.'s encoder-only and
  decoder-only updates take a subset)."""
  trainable = model.trainable_variables
  chosen = trainable if variables is None else variables
  indices = [next(i for i, v in enumerate(trainable) if v is w) for w in chosen]
  replicas = strategy.num_replicas_in_sync

  def replica_apply(grads):
    clipped, _ = tf.clip_by_global_norm([grads[i] for i in indices], clip_norm)
    # The optimizer sums gradients over replicas again: hand each replica its share.
    share = [g / replicas for g in clipped] if replicas > 1 else clipped
    # tf.identity places each gradient on the replica's device: with one replica per
    # worker (MultiWorkerMirroredStrategy) they arrive as plain tensors without one, and
    # the optimizer's all-reduce needs a destination.
    optimizer.apply_gradients(zip([tf.identity(t) for t in share], chosen))

  @tf.function
  def apply_step(grads):
    strategy.run(replica_apply, args=(grads,))

  return apply_step


def make_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                    strategy: tf.distribute.Strategy, kl_weight: tf.Variable,
                    global_batch: int, clip_norm: float, jit_compile: bool,
                    loss_fn: LossFn = objectives.weighted_loss):
  """Returns (gradient_step, apply_step), two tf.functions; `loss_fn(terms, kl_weight)`
  is the (B,) training loss (`objectives.loss_for_config`).

  gradient_step(x) -> (stats, grads): mean loss terms over the global batch (nats per
  example; for text also the mean `num_tokens` per sentence), the He et al. minibatch MI
  of each replica's batch (averaged over replicas), the global gradient norm before
  clipping, whether it is finite, and the all-reduced gradient (per replica).
  apply_step(grads) clips and applies it (`make_apply_step`).
  """
  replica_gradients = _replica_gradients(model, kl_weight, global_batch, jit_compile, loss_fn)

  # Text batches come in one shape per length bucket: trace once for all of them (XLA
  # still compiles the local gradients once per shape).
  @tf.function(reduce_retracing=True)
  def gradient_step(x):
    sums, mutual_information, grad_norm, grads = strategy.run(replica_gradients, args=(x,))
    stats = {name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
             / global_batch for name, value in sums.items()}
    mean = lambda value: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
    stats["mi_minibatch_he2019"] = mean(mutual_information)
    stats["grad_norm"] = mean(grad_norm)
    stats["finite"] = tf.math.is_finite(stats["grad_norm"])
    return stats, grads

  return gradient_step, make_apply_step(model, optimizer, strategy, clip_norm)


def make_eval_step(model: keras.Model, strategy: tf.distribute.Strategy, jit_compile: bool):
  """A tf.function: distributed batch -> {key: (B, ...)} of EVAL_OUTPUTS, gathered."""

  # XLA cannot place the replicas' variables of a multi-device eval (TF known issue); nor
  # is it used where the model's inference says so.
  @tf.function(jit_compile=(jit_compile and strategy.num_replicas_in_sync == 1
                            and model.inference.compiles_with_xla))
  def replica_outputs(batch):
    terms = model(batch, training=False)
    return {k: terms[k] for k in EVAL_OUTPUTS if k in terms}

  @tf.function(reduce_retracing=True)  # One trace for every batch shape.
  def eval_step(x):
    outputs = strategy.run(replica_outputs, args=(x,))
    return {k: strategy.gather(v, axis=0) for k, v in outputs.items()}

  return eval_step


class GuardedStep:
  """A training step whose update is skipped when its gradient norm is not finite.

  `step(batch, apply_step=None)` runs `gradient_step` on a distributed global batch and,
  when finite, `apply_step` (default: the update of all variables); it returns the
  gradient step's stats (mean loss terms in nats per example, minibatch MI, gradient norm,
  `finite`). A skipped step adds one to `skipped_steps` and leaves the weights, optimizer
  state and batch-norm statistics as they were: the statistics change in the forward pass
  itself, so a skipped step puts them back, or one NaN batch would poison every later
  evaluation and checkpoint.
  """

  def __init__(self, model: keras.Model, gradient_step, apply_step, skipped_steps: tf.Variable):
    self._gradient_step, self._apply_step = gradient_step, apply_step
    self.skipped_steps = skipped_steps
    self._moving_statistics = [v for v in model.non_trainable_variables
                               if v.dtype in ("float32", "float64")]

  def __call__(self, batch, apply_step=None) -> dict[str, tf.Tensor]:
    statistics = [tf.identity(v.value) for v in self._moving_statistics]
    stats, grads = self._gradient_step(batch)
    if bool(stats["finite"]):
      (apply_step or self._apply_step)(grads)
    else:
      self.skipped_steps.assign_add(1)
      for variable, value in zip(self._moving_statistics, statistics):
        variable.assign(value)
    return stats
