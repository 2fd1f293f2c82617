r"""Semi-amortized models on any dataset: SA-VAE (--skip=false) or Skip-SA-VAE (--skip=true)
with the official refinement (20 SGD steps with momentum 0.5, learning rate 1 for the mean
and the log-variance, gradients clipped at norm 5, trained end to end through the steps),
over the dataset's default config. The argument after the colon names the dataset:

  python bin/train.py --config=configs/savae.py:omniglot --skip=true
  python bin/train.py --config=configs/savae.py:mnist --skip=false
  python bin/train.py --config=configs/savae.py:ptb --skip=true
  python bin/train.py --config=configs/savae.py:yahoo_small --skip=true
  (equivalently: python bin/train.py --dataset=omniglot --skip=true \
                     --config.model.inference=semi_amortized)
"""

from skip_vae_tf import config as config_lib


def get_config(dataset: str = "omniglot"):
  config = config_lib.default_config(dataset)
  config.model.inference = "semi_amortized"
  return config
