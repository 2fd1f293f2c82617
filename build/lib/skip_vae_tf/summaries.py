"""TensorBoard writing: scalars, per-dimension KL, images, text and hparams.

Runs are laid out as WORKDIR/train and WORKDIR/validation (same tags, so curves overlay),
with the hparams session at WORKDIR itself, so that `tensorboard --logdir PARENT` shows
several workdirs (say a VAE and a Skip-VAE) side by side in the HParams tab.
"""

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

# Tags of the validation metrics, reused as HParams metrics.
VALIDATION_METRICS = ("negative_elbo", "reconstruction_nll", "kl", "mi_aggregate",
                      "mi_minibatch_he2019", "active_units_cov_ge_0.01",
                      "active_units_cov_gt_0.02", "perplexity_bound")


SCALAR_DESCRIPTIONS = {
    "negative_elbo": "negative ELBO, nats per example (one posterior sample, analytic KL)",
    "reconstruction_nll": "-log p(x|z) at z ~ q(z|x), nats per example",
    "kl": "KL(q(z|x) || p(z)), analytic, nats per example",
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
    "reconstruction_nll_per_word": "-log p(x|z) summed over the set / words, nats per word",
    "negative_elbo_per_word": "negative ELBO summed over the set / words, nats per word",
    "perplexity_bound": "exp(negative_elbo_per_word): an upper bound on the perplexity",
    "mi_aggregate": "I_q(x;z) with q(z) aggregated over the whole split (Skip-VAE), nats",
    "mi_minibatch_he2019": "I_q(x;z) with q(z) aggregated per minibatch (He et al. 2019), nats",
    "active_units_cov_ge_0.01": "latent dims with Cov_x(E_q[z|x]) >= 0.01 over the split",
    "active_units_cov_gt_0.02": "latent dims with Cov_x(E_q[z|x]) > 0.02 over the split",
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
