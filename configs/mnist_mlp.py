r"""MNIST with the MLP encoder/decoder (1024 hidden units, 2 decoder layers).

With skip=true, z is projected into every decoder hidden layer and the output layer.

  python bin/train.py --config=configs/mnist_mlp.py --skip=true
"""

from skip_vae_tf import config as config_lib


def get_config():
  config = config_lib.image_config()
  config.data.name = "mnist"
  config.model.encoder = "mlp"
  config.model.encoder_hidden = (1024,)
  config.model.decoder = "mlp"
  config.model.decoder_hidden = (1024, 1024)
  return config
