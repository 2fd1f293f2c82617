"""TensorBoard writing: scalars, per-dimension KL, images, text and hparams.

Runs are laid out as WORKDIR/train and WORKDIR/validation (same tags, so curves overlay),
with the hparams session at WORKDIR itself, so that `tensorboard --logdir PARENT` shows
several workdirs (say a VAE and a Skip-VAE) side by side in the HParams tab.
"""

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from skip_vae_tf import metric_table

# Tags of the validation metrics, reused as HParams metrics.
VALIDATION_METRICS = metric_table.named(validation=True)

# TensorBoard descriptions: the reported metrics' (metric_table) and training's own scalars.
SCALAR_DESCRIPTIONS = {
    **{name: metric.description for name, metric in metric_table.METRICS.items()},
    "kl_weight": "weight of the KL term in the training loss (train.beta x the "
                 "linear warm-up or cyclical schedule)",
    "grad_norm": "global gradient norm before clipping",
    "encoder_updates": "aggressive training (He et al. 2019): encoder-only updates before "
                       "each decoder update",
    "examples_per_sec": "training throughput since the previous log line (compilation excluded)",
    "tokens_per_sec": "training throughput in predicted tokens (words and </s>) per second",
    "learning_rate": "optimizer learning rate (decayed when validation stops improving)",
    "skipped_steps": "steps whose gradient norm was not finite (no update applied), in total",
    "words_per_sentence": "mean tokens predicted per sentence: its words and </s>, not <s>",
}


def write_scalars(writer: tf.summary.SummaryWriter, scalars: dict[str, float], step: int) -> None:
  with writer.as_default(step=step):
    for tag, value in scalars.items():
      tf.summary.scalar(tag, value, description=SCALAR_DESCRIPTIONS.get(tag))
  writer.flush()


def write_kl_per_dim(writer: tf.summary.SummaryWriter, kl_per_dim: np.ndarray, step: int) -> None:
  """(D,) mean KL of each latent dimension (nats): one histogram and one scalar per dim."""
  with writer.as_default(step=step):
    tf.summary.histogram("kl_per_dim", kl_per_dim,
                         description="mean KL(q(z_d|x)||p(z_d)) per latent dimension, nats; "
                                     "bucketed over dimensions")
    for d, value in enumerate(kl_per_dim):
      tf.summary.scalar(f"kl_per_dim/dim_{d:02d}", value)
  writer.flush()


def write_images(writer: tf.summary.SummaryWriter, originals: np.ndarray,
                 reconstructions: np.ndarray, samples: np.ndarray, step: int) -> None:
  """Originals beside their reconstructions (B, H, 2W, 1), and prior samples (K, H, W, 1)."""
  with writer.as_default(step=step):
    if len(originals):
      tf.summary.image("reconstructions", np.concatenate([originals, reconstructions], axis=2),
                       max_outputs=len(originals),
                       description="left: validation image; right: decoded from its posterior "
                                   "mean (autoregressive sample)")
    if len(samples):
      tf.summary.image("prior_samples", samples, max_outputs=len(samples),
                       description="decoded from z ~ p(z)")
  writer.flush()


def _markdown_cell(sentence: str) -> str:
  return sentence.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_") or "(empty)"


def write_text_samples(writer: tf.summary.SummaryWriter, originals: list[str],
                       reconstructions: list[str], samples: list[str], step: int) -> None:
  """Validation sentences beside their greedy decodes, and prior samples, as Markdown."""
  with writer.as_default(step=step):
    if originals:
      rows = [f"| {_markdown_cell(a)} | {_markdown_cell(b)} |"
              for a, b in zip(originals, reconstructions)]
      tf.summary.text("reconstructions", "\n".join(
          ["| validation sentence | greedy decode from its posterior mean |", "|---|---|",
           *rows]))
    if samples:
      tf.summary.text("prior_samples", "\n".join(
          ["| sampled from p(x\\|z), z ~ p(z) |", "|---|",
           *(f"| {_markdown_cell(s)} |" for s in samples)]))
  writer.flush()


def write_run_info(writer: tf.summary.SummaryWriter, hparams: dict, text: dict[str, str],
                   trial_id: str | None = None) -> None:
  """The hparams session of this run, named `trial_id` in the HParams dashboard (the
  workdir's name, e.g. 'skip_vae_seed1'; else a hash), plus text entries (e.g. the data
  source). Boolean hparams (skip) get a {False, True} domain, so the dashboard shows them as
  a column and a filter."""
  def declared(name, value):
    return hp.HParam(name, hp.Discrete([False, True]) if isinstance(value, bool) else None)

  with writer.as_default(step=0):
    hp.hparams_config(
        hparams=[declared(name, value) for name, value in hparams.items()],
        metrics=[hp.Metric(tag, group="validation", display_name=f"validation {tag}")
                 for tag in VALIDATION_METRICS])
    hp.hparams(hparams, trial_id=trial_id)
    for tag, value in text.items():
      tf.summary.text(tag, value)
  writer.flush()
