r"""Exact dataset-level metrics of a trained run (definitions: docs/metrics.md).

  python bin/evaluate.py --workdir=runs/omniglot_skip_vae [--split=test]
      [--checkpoint=best|latest] [--iw_samples=500] [--precision=mixed_bfloat16]

Works for image and text runs alike (text adds per-word NLLs and perplexities).
Prints a table and writes eval_<split>.json and eval_<split>.md into the workdir, plus
TensorBoard scalars under eval/<split>/ in WORKDIR/eval.
"""

from absl import app
from absl import flags

from skip_vae_tf import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir to evaluate.", required=True)
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "validation", "test"], "Split.")
_CHECKPOINT = flags.DEFINE_enum("checkpoint", "best", ["best", "latest"], "Which weights.")
_IW_SAMPLES = flags.DEFINE_integer("iw_samples", None, "K for the importance-weighted NLL "
                                   "(0 skips it; default: the run's config.evals.iw_nll, "
                                   "500).", lower_bound=0)
_IW_CHUNK = flags.DEFINE_integer("iw_chunk", None, "Importance samples per decoder call (the "
                                 "decoder sees iw_chunk * batch_size examples at once; 0 = "
                                 "about 500 images or 64 sentences).", lower_bound=0)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 0, "Examples per batch (0 = the run's "
                                   "train.eval_batch_size).", lower_bound=0)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Raw data folder (default: the run's).")
_MAX_EXAMPLES = flags.DEFINE_integer("max_examples", 0, "Evaluate only the first N examples "
                                     "(0 = all).", lower_bound=0)

_PRECISION = flags.DEFINE_enum("precision", None, ["float32", "mixed_bfloat16"],
                               "Evaluate the networks in this precision (default: the run's "
                               "train.precision; skip_vae_tf/precision.py).")
_JIT_COMPILE = flags.DEFINE_bool("jit_compile", True, "Compile the evaluation passes with XLA "
                                 "(not for mixed bfloat16 on a CPU, where TF's own kernels "
                                 "are faster), whatever the run's train.jit_compile.")


def evaluate() -> str:
  from skip_vae_tf import evaluation
  result = evaluation.evaluate_run(_WORKDIR.value, evaluation.EvaluationRequest(
      split=_SPLIT.value, checkpoint=_CHECKPOINT.value, iw_samples=_IW_SAMPLES.value,
      iw_chunk=_IW_CHUNK.value, batch_size=_BATCH_SIZE.value, data_dir=_DATA_DIR.value,
      max_examples=_MAX_EXAMPLES.value, precision_name=_PRECISION.value,
      jit_compile=_JIT_COMPILE.value))
  return evaluation.markdown_table(result)


if __name__ == "__main__":
  app.run(cli.main("evaluate.py", evaluate))
