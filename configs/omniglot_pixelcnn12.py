r"""Omniglot with the 12-layer gated PixelCNN decoder of SA-VAE and later work.

Kernels 9,9,9,7,7,7,5,5,5,3,3,3, 32 channels, latent 32, 4 latent feature maps.

  python bin/train.py --config=configs/omniglot_pixelcnn12.py --skip=true
"""

from skip_vae_tf import config as config_lib


def get_config():
  config = config_lib.image_config()
  config.data.name = "omniglot"
  config.model.latent_dim = 32
  config.model.decoder_kernel_sizes = (9, 9, 9, 7, 7, 7, 5, 5, 5, 3, 3, 3)
  config.model.decoder_channels = 32
  config.model.latent_feature_maps = 4
  return config
