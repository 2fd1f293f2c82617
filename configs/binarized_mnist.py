r"""Larochelle's statically binarized MNIST (50k/10k/10k), official image defaults.

  python bin/train.py --config=configs/binarized_mnist.py --skip=true
"""

from skip_vae_tf import config as config_lib


def get_config():
  config = config_lib.image_config()
  config.data.name = "binarized_mnist"
  return config
