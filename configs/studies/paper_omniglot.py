r"""The paper's comparison on Omniglot (28x28, the paper's Table 2): VAE, Skip-VAE, SA-VAE and Skip-SA-VAE with the
official networks and budget (100 epochs), three seeds, test IW-NLL with K=500.

  python bin/study.py --study=paper_omniglot --parallel=4     # one GPU per child, or
  python bin/study.py --study=paper_omniglot --shard=0/4      # on each of 4 machines

Budget: 12 runs of 100 epochs. Cost on this project's 2-core CPU: ~23k training images; VAE and Skip-VAE about 140 and 127 examples/s here (README speed table), so 4.6 and 5.1 hours per run; SA-VAE and Skip-SA-VAE (20 refinement steps) about 2.8 examples/s, about 9.5 days per run: use a GPU.
On a GPU: not measured yet (no GPU was lent to the session that wrote this).
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "paper_omniglot", "configs/omniglot.py",
      models=("vae", "skip_vae", "sa_vae", "skip_sa_vae"), seeds=(0, 1, 2), iw_samples=500)
