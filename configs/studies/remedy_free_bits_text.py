r"""Free bits (Kingma et al. 2016) per latent dimension, off and at 0.5 nats, with and without
skips, on the quick PTB model (configs/ptb_quick.py: no KL warm-up, 3 epochs), three seeds.

  python bin/study.py --study=remedy_free_bits_text

Budget: 12 runs of 12 to 16 minutes each on a 2-core CPU, evaluation included (about 3
hours).
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "remedy_free_bits_text", "configs/ptb_quick.py", models=("vae", "skip_vae"),
      seeds=(0, 1, 2), knob="train.free_bits", knob_values=(0.0, 0.5), iw_samples=50,
      max_examples=1000, num_samples=5)
