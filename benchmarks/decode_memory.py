r"""Peak memory of decoding images from the prior, against the number of images.

  python benchmarks/decode_memory.py [--config=configs/omniglot.py] [--counts=8,128,1024]

Each count runs in its own process: a freshly initialised model of the config (memory does
not depend on the weights), one compiled `decoder.sample` call on that many latents, and
the process's peak RSS (ru_maxrss) before and after, with the call's wall time.
"""

import json
import pathlib
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags
from ml_collections import config_flags

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
import record  # pylint: disable=g-import-not-at-top,wrong-import-position

_CONFIG = config_flags.DEFINE_config_file("config", str(REPO_ROOT / "configs" / "omniglot.py"),
                                          "Config whose model decodes.", lock_config=True)
_COUNTS = flags.DEFINE_list("counts", ["8", "128", "1024"], "Images per decode call.")
_CHILD = flags.DEFINE_integer("child", 0, "Internal: decode this many images here.")


def _peak_gib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def measure(count: int) -> str:
  """Decodes `count` prior draws in this process; the result line."""
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from skip_vae_tf import tasks
  model = tasks.build_model(tasks.for_config(_CONFIG.value), _CONFIG.value)
  z = tf.random.stateless_normal([count, model.latent_dim], [0, 1])
  before, start = _peak_gib(), time.perf_counter()
  tf.function(model.decoder.sample)(z, tf.constant([1, 2])).numpy()
  return json.dumps({"images": count, "built_gib": round(before, 2),
                     "peak_rss_gib": round(_peak_gib(), 2),
                     "seconds_with_tracing": round(time.perf_counter() - start)})


def main(argv):
  del argv
  if _CHILD.value:
    print("RESULT " + measure(_CHILD.value))
    return
  rows = []
  for count in _COUNTS.value:
    args = [sys.executable, __file__, f"--child={count}",
            *(a for a in sys.argv[1:] if not a.startswith(("--counts", "--child")))]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    row = {"decoder": _CONFIG.value.model.decoder,
           **json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:])}
    print(f"{row['images']:6d} images: peak RSS {row['built_gib']:.2f} GiB after building "
          f"the model, {row['peak_rss_gib']:.2f} GiB after decoding "
          f"({row['seconds_with_tracing']} s, tracing included)", flush=True)
    rows.append(row)
  print("wrote", record.write("decode_memory", "Decoding memory (one compiled "
                              "decoder.sample, fresh process each)", ("decoder", "images"),
                              rows))


if __name__ == "__main__":
  app.run(main)
