r"""Test helper, run as a fresh process: requests beyond an export's limits, through the
loaded SavedModel.

  python tests/serving_refusals.py SAVED_MODEL OUT_JSON

Loads SAVED_MODEL, serves one valid request per signature, then each request of `requests`
(every signature x limit: batch, decodes, samples, words, tokens, seed length, empty); writes
OUT_JSON: {"refusals": {case: the refusal as `skip_vae_tf.serving.refusal` reads it, or
"accepted"}, "peak_rss_growth_mb": growth of the process's peak RSS over the refusals}.
"""

import json
import pathlib
import resource
import sys

import tensorflow as tf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from skip_vae_tf import export  # pylint: disable=g-import-not-at-top
from skip_vae_tf import serving  # pylint: disable=g-import-not-at-top


def requests(is_text: bool, latent_dim: int, limits: dict) -> dict:
  """{case: (signature, inputs)} of requests each limit must refuse."""
  batch, decodes = limits["max_batch"], limits["max_decodes"]

  def x(count):
    return (tf.constant(["the cat"] * count, tf.string) if is_text
            else tf.zeros([count, 28, 28, 1]))

  name = "text" if is_text else "x"
  cases = {
      "encode_batch": ("encode", {name: x(batch + 1),
                                  "seed": tf.range(batch + 1, dtype=tf.int64)}),
      "score_batch": ("score", {name: x(batch + 1)}),
      "encode_empty": ("encode", {name: x(0), "seed": tf.zeros([0], tf.int64)}),
      "score_empty": ("score", {name: x(0)}),
      "encode_one_seed_for_two": ("encode", {name: x(2), "seed": tf.constant([1], tf.int64)}),
      "encode_three_seeds_for_two": ("encode", {name: x(2),
                                                "seed": tf.constant([1, 2, 3], tf.int64)}),
      "decode_batch": ("decode", {"z": tf.zeros([decodes + 1, latent_dim])}),
      "decode_empty": ("decode", {"z": tf.zeros([0, latent_dim])}),
  }
  for count in (0, -5, decodes + 1, 20_000, 2**31 - 1):
    cases[f"sample_{count}"] = ("sample", {"num_samples": tf.constant(count, tf.int32),
                                           "seed": tf.constant(0, tf.int64)})
  if is_text:
    long_line = "word " * 2_000_000
    words = limits["max_words"]
    sentences = limits["max_tokens"] // (words + 2) + 1  # Each within max_words.
    for signature in ("encode", "score"):
      cases[f"{signature}_words"] = (signature, {"text": tf.constant([long_line] + ["a b"] * 255)})
      cases[f"{signature}_tokens"] = (signature, {"text": tf.constant([" ".join(["a"] * words)]
                                                                      * sentences)})
    for case in ("encode_words", "encode_tokens"):
      count = cases[case][1]["text"].shape[0]
      cases[case][1]["seed"] = tf.range(count, dtype=tf.int64)
  return cases


def main(saved_model: str, out_json: str) -> None:
  loaded = tf.saved_model.load(saved_model)
  info = json.loads((pathlib.Path(saved_model) / "assets.extra" / export.EXPORT_INFO)
                    .read_text())
  is_text = "text" in loaded.signatures["encode"].structured_input_signature[1]
  # One valid request per signature first: what is measured is the refusals' growth.
  loaded.signatures["decode"](z=tf.zeros([1, info["model"]["latent_dim"]]))
  warm = ({"text": tf.constant(["the cat", "a"])} if is_text
          else {"x": tf.zeros([2, 28, 28, 1])})
  loaded.signatures["encode"](**warm, seed=tf.constant([0, 1], tf.int64))
  loaded.signatures["score"](**warm)
  loaded.signatures["sample"](num_samples=tf.constant(2), seed=tf.constant(0, tf.int64))
  before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  refusals = {}
  for case, (signature, inputs) in requests(is_text, info["model"]["latent_dim"],
                                            info["limits"]).items():
    try:
      loaded.signatures[signature](**inputs)
      refusals[case] = "accepted"
    except tf.errors.InvalidArgumentError as error:
      refusals[case] = serving.refusal(error)
  growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
  pathlib.Path(out_json).write_text(json.dumps(
      {"refusals": refusals, "peak_rss_growth_mb": growth}, indent=2))


if __name__ == "__main__":
  main(*sys.argv[1:])
