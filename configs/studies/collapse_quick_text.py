r"""Posterior collapse on text in about an hour on a 2-core CPU: VAE vs Skip-VAE on Penn
Treebank without KL annealing (configs/ptb_quick.py: 256-unit LSTMs, latent 32, 3 epochs),
three seeds.

  python bin/study.py --study=collapse_quick_text

Budget: 6 runs x 3 epochs of 1,311 steps (batch 32); test metrics on the first 1,000 test
sentences, IW-NLL with K=50; float32 networks.
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "collapse_quick_text", "configs/ptb_quick.py", models=("vae", "skip_vae"),
      seeds=(0, 1, 2), overrides={"train": {"precision": "float32"}}, iw_samples=50,
      max_examples=1000, num_samples=5)
