r"""float32 against mixed bfloat16 on the same short text runs: does bfloat16 training
reach the same validation curve? VAE and Skip-VAE on Penn Treebank (configs/ptb_quick.py:
256-unit LSTMs, latent 32, 3 epochs, no annealing), one seed, the precision swept.

  python bin/study.py --study=precision_quick_text

Budget: 4 runs x 3 epochs of 1,311 steps (batch 32); test metrics on the first 1,000 test
sentences, IW-NLL with K=50. Results here (2-core AMD EPYC, CPU only): docs/results.md.
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "precision_quick_text", "configs/ptb_quick.py", models=("vae", "skip_vae"), seeds=(0,),
      knob="train.precision", knob_values=("float32", "mixed_bfloat16"),
      knob_labels=("f32", "bf16"), iw_samples=50, max_examples=1000, num_samples=5)
