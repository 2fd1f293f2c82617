r"""Penn Treebank with a smaller LSTM VAE (256 units, embeddings of 256, latent 32) for
3 epochs without KL annealing: where a plain LSTM VAE collapses, and about 10 minutes
per run on a 2-core CPU. The base of the quick text studies (configs/studies/).

  python bin/train.py --config=configs/ptb_quick.py --skip=true
"""

from skip_vae_tf import config as config_lib


def get_config():
  config = config_lib.default_config("ptb")
  config.model.embedding_dim = 256
  config.model.encoder_hidden = (256,)
  config.model.decoder_hidden = (256,)
  config.train.epochs = 3
  config.train.kl_warmup_epochs = 0.0
  config.train.log_every_steps = 200
  return config
