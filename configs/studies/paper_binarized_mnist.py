r"""The paper's comparison on binarized MNIST (the paper's Table 1): VAE, Skip-VAE, SA-VAE and
Skip-SA-VAE with the official networks and budget (100 epochs), three seeds, test IW-NLL with
K=500.

  python bin/study.py --study=paper_binarized_mnist --parallel=4     # one GPU per child, or
  python bin/study.py --study=paper_binarized_mnist --shard=0/4      # on each of 4 machines

Budget: 12 runs of 100 epochs of 1,000 steps (batch 50): 2.2 times paper_omniglot's steps
with the same networks (56-1,716 GFLOP per step: benchmarks/step_flops.py).
GPU estimate (arithmetic, not a measurement): at a sustained 5 TFLOP/s in float32, 19
minutes per VAE or Skip-VAE run and about 9.4 hours per SA-VAE or Skip-SA-VAE run, plus
about 6 minutes of IW-NLL (K=500) over 10,000 test images each: about 60 GPU-hours.
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "paper_binarized_mnist", "configs/binarized_mnist.py",
      models=("vae", "skip_vae", "sa_vae", "skip_sa_vae"), seeds=(0, 1, 2), iw_samples=500)
