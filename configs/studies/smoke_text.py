r"""A study in a minute: VAE vs Skip-VAE on the smoke-sized PTB model (128 training
sentences, one epoch), two seeds. It checks the machinery, not the science
(tests/test_study.py runs it).

  python bin/study.py --study=smoke_text

Budget: 4 runs of 4 steps, test metrics on 64 sentences with K=3: about a minute on a
2-core CPU.
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "smoke_text", "configs/ptb.py", models=("vae", "skip_vae"), seeds=(0, 1), smoke=True,
      overrides={"train": {"epochs": 1, "jit_compile": False},
                 "data": {"max_train_examples": 128}},
      iw_samples=3, max_examples=64, num_samples=2)
