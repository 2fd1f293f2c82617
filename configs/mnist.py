r"""MNIST with dynamic binarization (10k of train held out), official image defaults.

  python bin/train.py --config=configs/mnist.py --skip=true
"""

from skip_vae_tf import config as config_lib


def get_config():
  config = config_lib.image_config()
  config.data.name = "mnist"
  return config
