r"""Exports a trained run as a SavedModel version for TF Serving (docs/serving.md).

  python bin/export.py --workdir=runs/omniglot_skip_vae --export_dir=serving/omniglot \
      [--checkpoint=best|latest] [--iw_samples=10]

Writes EXPORT_DIR/<version>/ (the next integer version) atomically, after checking that
the reloaded SavedModel's signatures (serving_default, encode, decode, sample, score)
reproduce the in-process model.
"""

from absl import app
from absl import flags

from skip_vae_tf import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir to export.", required=True)
_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "Folder TF Serving watches; the "
                                  "SavedModel goes to EXPORT_DIR/<next version>/.",
                                  required=True)
_CHECKPOINT = flags.DEFINE_enum("checkpoint", "best", ["best", "latest"], "Which weights.")
_IW_SAMPLES = flags.DEFINE_integer("iw_samples", 10, "K of the score signature's "
                                   "importance-weighted NLL.", lower_bound=1)
_SCORE_SEED = flags.DEFINE_integer("score_seed", 0, "Seeds the K draws the score signature "
                                   "shares across examples.")
_MAX_BATCH = flags.DEFINE_integer("max_batch", 256, "Examples per encode or score request.",
                                  lower_bound=1)
_MAX_DECODES = flags.DEFINE_integer("max_decodes", 64, "Latents per decode request and "
                                    "samples per sample request.", lower_bound=1)
_MAX_WORDS = flags.DEFINE_integer("max_words", 400, "Words per sentence (text models).",
                                  lower_bound=1)
_MAX_TOKENS = flags.DEFINE_integer("max_tokens", 16384, "Tokens per encode or score request "
                                   "(text models): sentences x padded length.", lower_bound=1)


def export_run() -> str:
  from skip_vae_tf import export
  from skip_vae_tf import serving
  limits = serving.Limits(_MAX_BATCH.value, _MAX_DECODES.value, _MAX_WORDS.value,
                          _MAX_TOKENS.value)
  path = export.export_run(_WORKDIR.value, _EXPORT_DIR.value, _CHECKPOINT.value,
                           _IW_SAMPLES.value, _SCORE_SEED.value, limits=limits)
  return f"Exported {path}"


if __name__ == "__main__":
  app.run(cli.main("export.py", export_run))
