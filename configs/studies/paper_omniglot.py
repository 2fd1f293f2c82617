r"""The paper's comparison on Omniglot (28x28, the paper's Table 2): VAE, Skip-VAE, SA-VAE and
Skip-SA-VAE with the official networks and budget (100 epochs), three seeds, test IW-NLL with
K=500.

  python bin/study.py --study=paper_omniglot --parallel=4     # one GPU per child, or
  python bin/study.py --study=paper_omniglot --shard=0/4      # on each of 4 machines

Budget: 12 runs of 100 epochs of 446 steps (batch 50). A training step costs 56 GFLOP (VAE), 57
(Skip-VAE), 1,675 (SA-VAE, 20 refinement steps, float32's finite-difference second order; 2,762
exact) and 1,716 (Skip-SA-VAE) (benchmarks/step_flops.py, docs/benchmarks.md). On a 2-core CPU
at the throughput of docs/benchmarks.md a VAE run takes most of a day and an SA-VAE run weeks:
use GPUs.
GPU estimate (arithmetic, not a measurement): at a sustained 5 TFLOP/s in float32 (a
quarter of an A100's peak; small convolutions rarely do better), 8 minutes per VAE or
Skip-VAE run and about 4.2 hours per SA-VAE or Skip-SA-VAE run, plus about 5 minutes for
each run's IW-NLL (K=500) over the 8,115 test images: about 27 GPU-hours for the study.
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "paper_omniglot", "configs/omniglot.py",
      models=("vae", "skip_vae", "sa_vae", "skip_sa_vae"), seeds=(0, 1, 2), iw_samples=500)
