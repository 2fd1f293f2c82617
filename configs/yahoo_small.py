r"""Yahoo, REDUCED protocol (the training file is absent): train on yahoo.valid minus 1,000
seeded held-out documents, validate on those, test on yahoo.test. Model and optimisation
as configs/yahoo.py; the numbers are not comparable with published Yahoo results.

  python bin/train.py --config=configs/yahoo_small.py --skip=true
  (equivalently: python bin/train.py --dataset=yahoo_small --skip=true)
"""

from skip_vae_tf import config as config_lib


def get_config():
  return config_lib.default_config("yahoo_small")
