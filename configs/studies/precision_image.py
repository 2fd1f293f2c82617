r"""Decides the image models' default precision: float32 against mixed bfloat16 training on
headline_image's runs (Omniglot, official networks, VAE and Skip-VAE, 2 epochs), five seeds;
the report pairs each seed's bfloat16 run with its float32 run and gives every compared
metric's difference with a 95% t interval.

  python bin/study.py --study=precision_image --folder=$HOME/studies/precision_image

The rule (docs/results.md): images switch to bfloat16 only if every interval contains zero,
for both models. The float32 runs are headline_image's own configs: copying
headline_image's `runs/<model>_seed<s>` to `runs/<model>_f32_seed<s>` here counts them as
done. Budget: 20 runs x 2 epochs of 446 steps (batch 50), about 9 minutes per float32 run and
8 per bfloat16 run on a 2-core CPU (the study's logs); test metrics on the first 500 test
images, IW-NLL with K=20.
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "precision_image", "configs/omniglot.py", models=("vae", "skip_vae"),
      seeds=(0, 1, 2, 3, 4), overrides={"train": {"epochs": 2}}, knob="train.precision",
      knob_values=("float32", "mixed_bfloat16"), knob_labels=("f32", "bf16"),
      iw_samples=20, max_examples=500)
