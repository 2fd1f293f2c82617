r"""float32 against mixed bfloat16 on the same short image runs: does bfloat16 training
reach the same validation curve? VAE and Skip-VAE on Omniglot with the official networks
(configs/omniglot.py, 8 gated layers), 2 epochs, three seeds, the precision swept.

  python bin/study.py --study=precision_quick_image

Budget: 12 runs x 2 epochs of 446 steps (batch 50); test metrics on the first 500 test
images, IW-NLL with K=20. The float32 runs use XLA (train.jit_compile); bfloat16 runs
without it on a CPU. precision_image, with five seeds, is the study that decides images'
precision (docs/results.md).
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "precision_quick_image", "configs/omniglot.py", models=("vae", "skip_vae"), seeds=(0, 1, 2),
      overrides={"train": {"epochs": 2, "jit_compile": True}}, knob="train.precision",
      knob_values=("float32", "mixed_bfloat16"), knob_labels=("f32", "bf16"), iw_samples=20,
      max_examples=500)
