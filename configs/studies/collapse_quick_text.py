r"""Posterior collapse on text in about an hour on a 2-core CPU: VAE vs Skip-VAE on Penn
Treebank without KL annealing (the setting where a plain LSTM VAE collapses), a 256-unit
LSTM encoder and decoder, latent 32, 3 epochs, three seeds.

  python bin/study.py --study=collapse_quick_text

Budget: 6 runs x 3 epochs of 1,311 steps (batch 32), test IW-NLL with K=50 on the first
1,000 test sentences. Results here (2-core AMD EPYC, CPU only): docs/results.md.
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  config.name = "collapse_quick_text"
  config.base = "configs/ptb.py"
  config.smoke = False
  config.overrides = ml_collections.ConfigDict({
      "model": {"embedding_dim": 256, "encoder_hidden": (256,), "decoder_hidden": (256,)},
      "train": {"epochs": 3, "kl_warmup_epochs": 0.0, "log_every_steps": 200},
  })
  config.models = ("vae", "skip_vae")
  config.seeds = (0, 1, 2)
  config.knob = ""
  config.knob_values = ()
  config.evaluation = ml_collections.ConfigDict(
      {"iw_samples": 50, "max_examples": 1000, "num_samples": 5})
  return config
