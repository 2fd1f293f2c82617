r"""A study in a minute: VAE vs Skip-VAE on the smoke-sized PTB model (128 training
sentences, one epoch), two seeds. It checks the machinery, not the science
(tests/test_study.py runs it).

  python bin/study.py --study=smoke_text

Budget: 4 runs of 4 steps, test metrics on 64 sentences with K=3: about a minute on a
2-core CPU.
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  config.name = "smoke_text"
  config.base = "configs/ptb.py"
  config.smoke = True
  config.overrides = ml_collections.ConfigDict(
      {"train": {"epochs": 1, "jit_compile": False}, "data": {"max_train_examples": 128}})
  config.models = ("vae", "skip_vae")
  config.seeds = (0, 1)
  config.knob = ""
  config.knob_values = ()
  config.evaluation = ml_collections.ConfigDict(
      {"iw_samples": 3, "max_examples": 64, "num_samples": 2})
  return config
