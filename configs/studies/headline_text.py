r"""The paper's text question on this CPU: VAE vs Skip-VAE on Penn Treebank with the paper's
KL annealing (weight 0.1 -> 1 linearly over the first third of training, as the official
schedule's 10 of 30 epochs) on the quick LSTM (configs/ptb_quick.py: 256 units, latent 32),
mixed bfloat16, five seeds; the report gives paired differences (Skip - VAE) with 95% t
intervals over seeds and a verdict per metric.

  python bin/study.py --study=headline_text --folder=$HOME/studies/headline_text

Budget: 10 runs x 3 epochs of 1,311 steps (batch 32), KL warm-up over epoch 1; test metrics
on the first 1,000 test sentences, IW-NLL with K=50. About 7 minutes per run alone on a
2-core CPU; results in docs/results.md.
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "headline_text", "configs/ptb_quick.py", models=("vae", "skip_vae"),
      seeds=(0, 1, 2, 3, 4),
      overrides={"train": {"kl_warmup_epochs": 1.0, "kl_start_weight": 0.1,
                           "precision": "mixed_bfloat16"}},
      iw_samples=50, max_examples=1000, num_samples=5)
