r"""Aggressive inference-network training (He et al. 2019: encoder updates to convergence
before each decoder update, until validation MI falls) against none, with and without
skips, on the quick PTB model (configs/ptb_quick.py: no KL warm-up, 3 epochs), two seeds.

  python bin/study.py --study=remedy_aggressive_text

Budget: 8 runs; the aggressive ones cost up to 100 encoder updates per step while
aggressive (He et al. report 2-3x the time of a VAE overall).
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "remedy_aggressive_text", "configs/ptb_quick.py", models=("vae", "skip_vae"),
      seeds=(0, 1), knob="train.aggressive", knob_values=(False, True),
      knob_labels=("joint", "aggressive"), iw_samples=50, max_examples=1000, num_samples=5)
