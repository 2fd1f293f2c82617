"""Evaluators by name, declared in the config (big_vision's `config.evals`).

Each entry of `config.evals` is one evaluator:

  config.evals.<label> = {"type": <registered name>, "during_training": <bool>, **options}

Training validates with the entries whose `during_training` is true (one of them must be a
`posterior` evaluator: its negative ELBO picks the best checkpoint); bin/evaluate.py runs
them all. Adding an evaluator is a class with `run(data, split)` yielding (name, value)
pairs, one `register` call naming its builder, and its test.
"""

import dataclasses
from collections.abc import Callable

import ml_collections
import tensorflow as tf

from skip_vae_tf import config as config_lib
from skip_vae_tf import evaluators
from skip_vae_tf import tasks
from skip_vae_tf.models import vae as vae_lib


@dataclasses.dataclass(frozen=True)
class EvalContext:
  """What every builder may use: the model and its run.

  `batch_size` is the global evaluation batch; `jit_compile` compiles the passes with XLA;
  `progress` asks long evaluators for progress lines.
  """
  model: vae_lib.VAE
  strategy: tf.distribute.Strategy
  task: tasks.Task
  config: ml_collections.ConfigDict
  batch_size: int
  jit_compile: bool
  progress: bool = False


Builder = Callable[[EvalContext, ml_collections.ConfigDict], object]
_BUILDERS: dict[str, Builder] = {}


def register(name: str, builder: Builder) -> None:
  """Makes `builder(context, entry)` the evaluator of entries with type `name`."""
  if name in _BUILDERS:
    raise ValueError(f"an evaluator named {name!r} is already registered")
  _BUILDERS[name] = builder


def names() -> tuple[str, ...]:
  return tuple(sorted(_BUILDERS))


def check(evals: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first entry of `evals` with an unknown type, or when no
  `posterior` entry runs during training."""
  for label, entry in evals.items():
    if entry.get("type") not in _BUILDERS:
      raise config_lib.ConfigError(
          f"config.evals.{label}.type={entry.get('type')!r} is not an evaluator; choose one "
          f"of {names()}")
  if not any(e.type == "posterior" and e.get("during_training", False) for e in evals.values()):
    raise config_lib.ConfigError(
        "config.evals needs a 'posterior' entry with during_training=True: its validation "
        "negative ELBO picks the best checkpoint")


def build(evals: ml_collections.ConfigDict, context: EvalContext,
          during_training: bool = False) -> list:
  """The evaluators of `evals`, in the order of their labels as ConfigDict iterates them
  (only those that run during training when `during_training`)."""
  check(evals)
  return [_BUILDERS[entry.type](context, entry) for entry in evals.values()
          if entry.get("during_training", False) or not during_training]


def _posterior(context: EvalContext, entry: ml_collections.ConfigDict
               ) -> evaluators.PosteriorEvaluator:
  del entry  # No options of its own: the MI minibatch is train.mi_minibatch_size.
  return evaluators.PosteriorEvaluator(context.model, context.strategy, context.batch_size,
                                       context.config.train.mi_minibatch_size,
                                       context.jit_compile)


def _linear_probe(context: EvalContext, entry: ml_collections.ConfigDict
                  ) -> evaluators.LinearProbeEvaluator:
  return evaluators.LinearProbeEvaluator(_posterior(context, entry))


def _importance_weighted(context: EvalContext, entry: ml_collections.ConfigDict
                         ) -> evaluators.ImportanceWeightedEvaluator:
  chunk = entry.chunk or max(1, context.task.iw_examples_per_call // context.batch_size)
  return evaluators.ImportanceWeightedEvaluator(
      context.model, entry.num_samples, chunk, context.batch_size, seed=context.config.seed,
      progress_every=10 if context.progress else 0, jit_compile=context.jit_compile)


register("posterior", _posterior)
register("linear_probe", _linear_probe)
register("importance_weighted", _importance_weighted)
