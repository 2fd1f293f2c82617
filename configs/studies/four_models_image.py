r"""The paper's four models side by side on Omniglot at a budget a 2-core CPU carries: VAE,
Skip-VAE, SA-VAE and Skip-SA-VAE with the official networks, three seeds, with the
amortization gap of the semi-amortized models.

  python bin/study.py --study=four_models_image --folder=$HOME/studies/four_models_image

Shrunk from the paper (say so when quoting it): the first 5,000 training images only, 2
epochs, 5 refinement steps instead of 20 (SA-VAE's step cost at 20: docs/benchmarks.md);
test metrics on the first 500 test images, IW-NLL with K=20.
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "four_models_image", "configs/omniglot.py",
      models=("vae", "skip_vae", "sa_vae", "skip_sa_vae"), seeds=(0, 1, 2),
      overrides={"train": {"epochs": 2, "precision": "float32"},
                 "data": {"max_train_examples": 5000}, "model": {"svi_steps": 5}},
      iw_samples=20, max_examples=500)
