r"""Omniglot 28x28, the official Skip-VAE image defaults (8 gated layers, latent 20).

  python bin/train.py --config=configs/omniglot.py --skip=true    # Skip-VAE
  python bin/train.py --config=configs/omniglot.py --skip=false   # VAE
  (equivalently: python bin/train.py --dataset=omniglot --skip=true)
"""

from skip_vae_tf import config as config_lib


def get_config():
  config = config_lib.image_config()
  config.data.name = "omniglot"
  return config
