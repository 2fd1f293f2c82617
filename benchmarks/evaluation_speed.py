r"""Speed of the evaluation paths: full-set MI, the ELBO pass, and IW-NLL with K samples.

  python benchmarks/evaluation_speed.py [--config=configs/omniglot.py] [--iw_samples=500]

Uses the config's model with freshly initialised weights on random binary images (speed
does not depend on the weights) and random posteriors for the MI timing.
"""

import os
import pathlib
import sys
import time

from absl import app
from absl import flags
from ml_collections import config_flags
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import record  # pylint: disable=g-import-not-at-top,wrong-import-position

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).resolve().parent.parent / "configs" / "omniglot.py"),
    "Config whose model is timed.", lock_config=True)
_MI_SIZES = flags.DEFINE_list("mi_sizes", ["1000", "8070"], "Set sizes N for the full-set MI.")
_ELBO_EXAMPLES = flags.DEFINE_integer("elbo_examples", 2000, "Images in the ELBO pass.")
_IW_SAMPLES = flags.DEFINE_integer("iw_samples", 500, "K for the IW-NLL timing.")
_IW_EXAMPLES = flags.DEFINE_integer("iw_examples", 20, "Images in the IW-NLL timing.")
_IW_CHUNK = flags.DEFINE_integer("iw_chunk", 25, "Importance samples per decoder call.")
_JIT_COMPILE = flags.DEFINE_bool("jit_compile", True, "XLA for the passes where the precision "
                                 "allows, as bin/evaluate.py (not train.jit_compile).")


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from skip_vae_tf import evaluators
  from skip_vae_tf import metrics
  from skip_vae_tf import precision
  from skip_vae_tf import tasks
  from skip_vae_tf.data import images as image_data
  config = _CONFIG.value
  rng = np.random.default_rng(0)
  print(f"machine: {os.cpu_count()} CPUs; latent {config.model.latent_dim}; decoder "
        f"{config.model.decoder} {len(config.model.decoder_kernel_sizes)} layers")
  for size in (int(s) for s in _MI_SIZES.value):
    mean = tf.constant(rng.normal(size=(size, config.model.latent_dim)), tf.float32)
    log_var = tf.constant(rng.normal(size=(size, config.model.latent_dim)) - 1, tf.float32)
    z = mean + tf.exp(0.5 * log_var) * tf.constant(rng.normal(size=mean.shape), tf.float32)
    metrics.mutual_information(mean[:64], log_var[:64], z[:64])  # Warm-up.
    start = time.perf_counter()
    metrics.mutual_information(mean, log_var, z)
    seconds = time.perf_counter() - start
    print(f"full-set MI, N={size}: {seconds:.3f} s ({1e3 * seconds / size:.3f} ms per example)")
    mi_size, mi_seconds = size, seconds

  model = tasks.build_model(tasks.ImageTask(), config)
  images = (rng.random((_ELBO_EXAMPLES.value, 28, 28, 1)) < 0.1).astype(np.float32)
  batch = config.train.eval_batch_size
  posterior = evaluators.PosteriorEvaluator(model, tf.distribute.get_strategy(), batch,
                                            config.train.mi_minibatch_size,
                                            precision.use_xla(config.train, _JIT_COMPILE.value))
  data = image_data.ImageDataset("synthetic", "random binary images", train=images,
                                 validation=images[:2 * batch],
                                 test=images[:_IW_EXAMPLES.value],
                                 dynamic_binarization=False)
  posterior.outputs(data, "validation")  # Warm-up.
  start = time.perf_counter()
  posterior.outputs(data, "train")
  seconds = time.perf_counter() - start
  forward_rate = len(images) / seconds
  print(f"ELBO pass: {1e3 * seconds / len(images):.2f} ms per image "
        f"({forward_rate:.0f} images/s, batch {batch})")

  iw_images = data.test
  iw_evaluator = evaluators.ImportanceWeightedEvaluator(
      model, _IW_SAMPLES.value, _IW_CHUNK.value, batch_size=len(iw_images),
      jit_compile=precision.use_xla(config.train, _JIT_COMPILE.value))
  def iw_seconds():
    start = time.perf_counter()
    iw_evaluator.per_example(data, "test")
    return time.perf_counter() - start
  print(f"IW-NLL first call, compilation included: {iw_seconds():.1f} s")
  seconds = iw_seconds()
  pairs = len(iw_images) * _IW_SAMPLES.value / seconds
  print(f"IW-NLL K={_IW_SAMPLES.value}: {seconds / len(iw_images):.2f} s per image, "
        f"{pairs:.0f} (image, sample) pairs/s = {pairs / forward_rate:.2f}x the ELBO pass")
  print("wrote", record.write(
      "evaluation_speed", "Evaluation speed (random images through an untrained model)",
      ("decoder", "layers", "precision", "iw_samples"),
      [{"decoder": config.model.decoder, "layers": len(config.model.decoder_kernel_sizes),
        "precision": config.train.precision, "iw_samples": _IW_SAMPLES.value,
        "elbo_images_per_sec": round(forward_rate, 1),
        "iw_nll_sec_per_image": round(seconds / len(iw_images), 3),
        "mi_sec_at_largest_n": round(mi_seconds, 3), "mi_n": mi_size}]))


if __name__ == "__main__":
  app.run(main)
