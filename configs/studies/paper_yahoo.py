r"""The paper's comparison on Yahoo Answers (the paper's Table 3, LSTM 1024): VAE, Skip-VAE, SA-VAE and Skip-SA-VAE with the
official networks and budget (30 epochs), three seeds, test IW-NLL with K=500.

  python bin/study.py --study=paper_yahoo --parallel=4     # one GPU per child, or
  python bin/study.py --study=paper_yahoo --shard=0/4      # on each of 4 machines

Budget: 12 runs of 30 epochs. Cost on this project's 2-core CPU: 100k training documents of up to 200 tokens; not measured here at full size (configs/yahoo_small.py is the CPU-sized variant).
On a GPU: not measured yet (no GPU was lent to the session that wrote this).
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "paper_yahoo", "configs/yahoo.py",
      models=("vae", "skip_vae", "sa_vae", "skip_sa_vae"), seeds=(0, 1, 2), iw_samples=500)
