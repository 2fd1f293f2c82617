r"""The paper's comparison on Yahoo Answers (the paper's Table 3, LSTM 1024): VAE, Skip-VAE, SA-VAE
and Skip-SA-VAE with the official networks and budget (30 epochs), three seeds, test IW-NLL with
K=500.

  python bin/study.py --study=paper_yahoo --parallel=4     # one GPU per child, or
  python bin/study.py --study=paper_yahoo --shard=0/4      # on each of 4 machines

Budget: 12 runs of 30 epochs over 100k training documents (about 8M tokens an epoch);
configs/yahoo_small.py is the CPU-sized variant.
GPU estimate (arithmetic, not a measurement): a token costs about 66 MFLOP forward (the
1024-unit encoder and decoder LSTMs, 13 MFLOP each, and the 20,001-way softmax, 41), about 200
MFLOP with the backward pass, so an epoch about 1.6 PFLOP; SA-VAE's 20 refinement steps (a
decoder forward and backward each, then a finite-difference pass back through them) multiply a
step by about 30 (30 for the image networks, counted: benchmarks/step_flops.py). At a sustained
5 TFLOP/s in float32: about 3 hours per VAE or Skip-VAE run and 80 per SA-VAE or Skip-SA-VAE
run, about 500 GPU-hours for the study (the text LSTMs' FLOPs are arithmetic: the graph counter
does not see inside their loops).
"""

from skip_vae_tf.studies import spec


def get_config():
  return spec.study_config(
      "paper_yahoo", "configs/yahoo.py",
      models=("vae", "skip_vae", "sa_vae", "skip_sa_vae"), seeds=(0, 1, 2), iw_samples=500)
