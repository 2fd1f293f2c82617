r"""The paper's image question on this CPU: does feeding z to every PixelCNN layer keep more
information in the code at no cost in likelihood? VAE vs Skip-VAE on Omniglot with the
official networks (configs/omniglot.py: ResNet encoder, 8 gated PixelCNN layers, latent 20),
float32, five seeds; the report gives paired differences (Skip - VAE) with 95% t intervals
over seeds and a verdict per metric.

  python bin/study.py --study=headline_image --folder=$HOME/studies/headline_image

Budget: 10 runs x 2 epochs of 446 steps (batch 50); test metrics on the first 500 test
images, IW-NLL with K=20. About 9 minutes per run alone on a 2-core CPU; results in
docs/results.md.
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "headline_image", "configs/omniglot.py", models=("vae", "skip_vae"),
      seeds=(0, 1, 2, 3, 4), overrides={"train": {"epochs": 2, "precision": "float32"}},
      iw_samples=20, max_examples=500)
