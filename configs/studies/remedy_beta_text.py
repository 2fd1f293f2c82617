r"""A KL weight beta below 1 (the ELBO at 1), with and without skips, on the quick PTB model
(configs/ptb_quick.py: no KL warm-up, 3 epochs), two seeds.

  python bin/study.py --study=remedy_beta_text

Budget: 12 runs of 12 to 16 minutes each on a 2-core CPU, evaluation included (about 3
hours).
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "remedy_beta_text", "configs/ptb_quick.py", models=("vae", "skip_vae"),
      seeds=(0, 1), knob="train.beta", knob_values=(1.0, 0.5, 0.2), iw_samples=50,
      max_examples=1000, num_samples=5)
