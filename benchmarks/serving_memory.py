r"""Peak memory of one request at a time through an exported SavedModel, as a server runs it.

  python benchmarks/serving_memory.py --saved_model=EXPORT_DIR/1 \
      --requests=score:256,encode:256,decode:64,sample:64 [--words=400]

Each request runs in a fresh process: `tf.saved_model.load` (what TF Serving's Python twin
does), one warm-up request of one example (tracing and loading excluded from the figure),
then the measured request; the line gives the process's peak RSS (ru_maxrss) after the
warm-up and after the request, and the request's wall time. Image inputs are random binary
images; text inputs are sentences of --words words ("the" repeated: memory depends on the
length, not the words); `decode` takes standard-normal latents. GiB = 2^30 bytes.
"""

import json
import pathlib
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags

import record  # pylint: disable=g-import-not-at-top
from skip_vae_tf import dataset_registry

_SAVED_MODEL = flags.DEFINE_string("saved_model", None, "An exported version folder.",
                                   required=True)
_REQUESTS = flags.DEFINE_list("requests", ["score:256", "encode:256", "decode:64",
                                           "sample:64"],
                              "signature:count pairs, each measured in its own process.")
_WORDS = flags.DEFINE_integer("words", 400, "Words per sentence of a text model's inputs.")
_CHILD = flags.DEFINE_string("child", None, "Internal: measure this signature:count here.")


def _peak_gib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _inputs(signature, name: str, count: int) -> dict:
  """The inputs of an `encode`, `score` or `sample` request for `count` examples."""
  # pylint: disable=g-import-not-at-top
  import numpy as np
  import tensorflow as tf
  specs = signature.structured_input_signature[1]
  rng = np.random.default_rng(0)
  if name == "sample":
    return {"num_samples": tf.constant(count, tf.int32), "seed": tf.constant(1, tf.int64)}
  inputs = {}
  if "text" in specs:
    inputs["text"] = tf.constant([" ".join(["the"] * _WORDS.value)] * count)
  else:
    inputs["x"] = tf.constant((rng.random((count, 28, 28, 1)) < 0.3).astype(np.float32))
  if "seed" in specs:
    inputs["seed"] = tf.range(count, dtype=tf.int64)
  return inputs


def measure(request: str) -> str:
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  name, count = request.split(":")
  count = int(count)
  loaded = tf.saved_model.load(_SAVED_MODEL.value)
  signature = loaded.signatures[name]
  if name == "decode":  # The latent width, from the posterior of one example.
    probe = loaded.signatures["encode"](**_inputs(loaded.signatures["encode"], "encode", 1))
    latent_dim = int(probe["mean"].shape[-1])
    make = lambda n: {"z": tf.random.stateless_normal([n, latent_dim], [0, 1])}
  else:
    make = lambda n: _inputs(signature, name, n)
  signature(**make(1))
  before, start = _peak_gib(), time.perf_counter()
  outputs = signature(**make(count))
  for value in outputs.values():
    value.numpy()
  return json.dumps({"request": f"{name} of {count}", "loaded_gib": round(before, 2),
                     "peak_rss_gib": round(_peak_gib(), 2),
                     "seconds": round(time.perf_counter() - start, 1)})


def main(argv):
  del argv
  if _CHILD.value:
    print("RESULT " + measure(_CHILD.value), flush=True)
    return
  print(f"{_SAVED_MODEL.value}; text sentences of {_WORDS.value} words", flush=True)
  info = json.loads((pathlib.Path(_SAVED_MODEL.value) / "assets.extra" / "export_info.json")
                    .read_text())
  model = f"{info['dataset']} {'Skip-VAE' if info['skip'] else 'VAE'}"
  rows = []
  for request in _REQUESTS.value:
    args = [sys.executable, str(pathlib.Path(__file__).resolve()), f"--child={request}",
            f"--saved_model={_SAVED_MODEL.value}", f"--words={_WORDS.value}"]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    lines = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")]
    if not lines:
      print(f"{request}: failed (exit {result.returncode}): {result.stderr.strip()[-300:]}",
            flush=True)
      continue
    row = {"model": model, **json.loads(lines[0][7:]),
           "words": _WORDS.value if info["dataset"] in dataset_registry.names("text") else "-"}
    print(f"{row['request']}: peak RSS {row['loaded_gib']:.2f} GiB after loading and one "
          f"warm-up request, {row['peak_rss_gib']:.2f} GiB after the request "
          f"({row['seconds']} s)", flush=True)
    rows.append(row)
  if rows:
    print("wrote", record.write("serving_memory", "Serving: peak memory of one request "
                                "through a loaded SavedModel (fresh process each)",
                                ("model", "request", "words"), rows))


if __name__ == "__main__":
  app.run(main)
