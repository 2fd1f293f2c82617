r"""Yahoo Answers (Yang et al. 2017), the reference LSTM VAE: embedding 512, LSTM 1024,
latent 32, decoder dropout 0.5, batch 32, SGD 1.0 halved on plateau, KL 0.1 -> 1 over 10
epochs. Needs the 100k-document training file (yahoo/yahoo.train.txt); without it use
configs/yahoo_small.py.

  python bin/train.py --config=configs/yahoo.py --skip=true    # Skip-VAE
  python bin/train.py --config=configs/yahoo.py --skip=false   # VAE
  (equivalently: python bin/train.py --dataset=yahoo --skip=true)
"""

from skip_vae_tf import config as config_lib


def get_config():
  return config_lib.default_config("yahoo")
