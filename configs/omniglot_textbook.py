r"""Omniglot with textbook networks in place of the official ones: a ResNet encoder of
stride-2 residual blocks with batch-normalised 1x1 shortcuts (28 -> 14 -> 7 -> 4), and the
gated PixelCNN of van den Oord et al. (2016), whose vertical stack is not shifted at every
layer and whose z enters through one shared projection (models/pixelcnn.py).

  python bin/train.py --config=configs/omniglot_textbook.py --skip=true
"""

from skip_vae_tf import config as config_lib


def get_config():
  config = config_lib.image_config()
  config.data.name = "omniglot"
  config.model.encoder = "resnet"
  config.model.decoder = "pixelcnn"
  return config
