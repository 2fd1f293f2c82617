r"""Posterior collapse against decoder depth on Omniglot, on a 2-core CPU in about an hour:
VAE vs Skip-VAE with the official networks (configs/omniglot.py) and a PixelCNN of 2 or 8
gated layers, 2 epochs, two seeds. Collapse grows with the decoder's power: the deeper
PixelCNN can model the images alone.

  python bin/study.py --study=collapse_quick_image

Budget: 8 runs x 2 epochs of 446 steps (batch 50); test metrics on the first 500 test
images, IW-NLL with K=20; float32 networks compiled with XLA.
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "collapse_quick_image", "configs/omniglot.py", models=("vae", "skip_vae"),
      seeds=(0, 1),
      overrides={"train": {"epochs": 2, "precision": "float32", "jit_compile": True}},
      knob="model.decoder_kernel_sizes", knob_values=((3,) * 2, (3,) * 8),
      knob_labels=("2layers", "8layers"), iw_samples=20, max_examples=500)
