r"""Cyclical KL annealing (Fu et al. 2019: 4 cycles, rising over the first half of each)
against none, with and without skips, on the quick PTB model (configs/ptb_quick.py: no KL
warm-up, 3 epochs), three seeds.

  python bin/study.py --study=remedy_cyclical_text \
      --reuse_runs_from=studies/remedy_free_bits_text

Budget: 12 runs of 12 to 16 minutes each on a 2-core CPU, evaluation included (about 3
hours). The six 'linear' runs (no KL warm-up on this base config) have the resolved config
of remedy_free_bits_text's free_bits=0.0 runs: with --reuse_runs_from pointing at that
study's folder they are copied from it, and the study costs six runs (about 1.5 hours).
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "remedy_cyclical_text", "configs/ptb_quick.py", models=("vae", "skip_vae"),
      seeds=(0, 1, 2), knob="train.kl_schedule", knob_values=("linear", "cyclical"), iw_samples=50,
      max_examples=1000, num_samples=5)
