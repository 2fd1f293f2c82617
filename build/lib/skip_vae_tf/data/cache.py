"""Prepared-array caches verified like raw files: each cache file has a manifest (its arrays'
shapes, dtypes and sha256, written atomically after it), checked on every load. A cache
that is missing its manifest, unreadable, or not what the manifest says is rebuilt with a
one-line warning, never used.
"""

import hashlib
import json
import pathlib
import zipfile

from absl import logging
import numpy as np

from skip_vae_tf import atomic
from skip_vae_tf.data import files


def manifest_path(cache: pathlib.Path) -> pathlib.Path:
  return cache.with_name(cache.name + ".manifest.json")


def _describe(arrays: dict[str, np.ndarray]) -> dict[str, dict]:
  return {key: {"shape": list(value.shape), "dtype": str(value.dtype),
                "sha256": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}
          for key, value in sorted(arrays.items())}


def write_arrays(cache: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
  """Writes `arrays` to the .npz `cache`, then its manifest, each atomically; a cache
  folder that cannot be written is a DataFileError naming it."""
  try:
    with atomic.replacing(cache, suffix=".npz") as partial:
      np.savez(partial, **arrays)
    atomic.write_text(manifest_path(cache), json.dumps(_describe(arrays), indent=2))
  except OSError as error:
    raise files.DataFileError(
        f"cannot write the prepared-array cache {cache} ({error.strerror or error}): make "
        "the folder writable or point SKIP_VAE_CACHE_DIR (or data.cache_dir) elsewhere"
    ) from error


def read_arrays(cache: pathlib.Path) -> dict[str, np.ndarray] | None:
  """The arrays of `cache` when it and its manifest agree; None (after a warning saying
  why) when the cache is absent, damaged, or differs from its manifest."""
  if not cache.exists():
    return None
  try:
    expected = json.loads(manifest_path(cache).read_text())
    with np.load(cache) as npz:
      arrays = {key: npz[key] for key in npz.files}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as error:
    problem = f"unreadable ({type(error).__name__}: {error})"
  else:
    actual = _describe(arrays)
    if actual == expected:
      return arrays
    different = sorted(k for k in set(actual) | set(expected)
                       if actual.get(k) != expected.get(k))
    problem = f"its arrays {different} differ from {manifest_path(cache).name}"
  logging.warning("prepared-array cache %s is %s: rebuilding it", cache,
                  problem if problem.startswith("unreadable") else f"not usable: {problem}")
  return None
