"""Shared fixtures: the real data folder and a session-wide cache for prepared arrays.

The raw data come from $SKIP_VAE_DATA_DIR, else ../shared/data beside the repository.
"""

import os
import pathlib

from hypothesis import settings
import pytest

# Property tests draw the same examples on every run (a failure reproduces; none is luck).
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
  path = pathlib.Path(os.environ.get("SKIP_VAE_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
  if not (path / "SOURCES.md").is_file():
    raise FileNotFoundError(f"no dataset folder at {path}: set SKIP_VAE_DATA_DIR to the folder "
                            "holding mnist/, binarized_mnist/ and omniglot/")
  return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> pathlib.Path:
  """$SKIP_VAE_CACHE_DIR when set (CI reuses it across processes), else a fresh folder."""
  chosen = os.environ.get("SKIP_VAE_CACHE_DIR")
  return pathlib.Path(chosen) if chosen else tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _seeded():
  """Every test starts from the same Python, numpy and TF seeds (Keras initialisers
  included), so no test depends on luck."""
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)


def synthetic_image_data():
  """An in-memory `ImageDataset` of two kinds of 28x28 binary images (a left or a right
  block, with pixel noise): 128 train, 48 validation, 40 test, labelled 0/1."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from skip_vae_tf.data import images  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)

  def split(count):
    x = (rng.random((count, 28, 28, 1)) < 0.05).astype(np.float32)
    labels = rng.integers(0, 2, count)
    for row, label in enumerate(labels):
      x[row, 6:22, 4 + 12 * label:12 + 12 * label] = 1.0
    return x, labels

  (train, train_labels), (validation, validation_labels), (test, test_labels) = (
      split(n) for n in (128, 48, 40))
  return images.ImageDataset("omniglot", "synthetic blocks (in memory)", train, validation,
                             test, dynamic_binarization=False, train_labels=train_labels,
                             validation_labels=validation_labels, test_labels=test_labels)
