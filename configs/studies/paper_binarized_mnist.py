r"""The paper's comparison on binarized MNIST (the paper's Table 1): VAE, Skip-VAE, SA-VAE and Skip-SA-VAE with the
official networks and budget (100 epochs), three seeds, test IW-NLL with K=500.

  python bin/study.py --study=paper_binarized_mnist --parallel=4     # one GPU per child, or
  python bin/study.py --study=paper_binarized_mnist --shard=0/4      # on each of 4 machines

Budget: 12 runs of 100 epochs. Cost on this project's 2-core CPU: 50k training images: about twice Omniglot's cost per epoch.
On a GPU: not measured yet (no GPU was lent to the session that wrote this).
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "paper_binarized_mnist", "configs/binarized_mnist.py",
      models=("vae", "skip_vae", "sa_vae", "skip_sa_vae"), seeds=(0, 1, 2), iw_samples=500)
