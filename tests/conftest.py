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
