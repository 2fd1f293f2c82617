r"""Penn Treebank (Mikolov's splits, vocabulary of 10,002 built from train) with the
reference LSTM VAE of configs/yahoo.py.

  python bin/train.py --config=configs/ptb.py --skip=true
  (equivalently: python bin/train.py --dataset=ptb --skip=true)
"""

from skip_vae_tf import config as config_lib


def get_config():
  return config_lib.default_config("ptb")
