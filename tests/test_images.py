"""Image datasets on the real files: split sizes, value ranges, seeding, clear errors."""

import gzip
import shutil

import numpy as np
import pytest

from skip_vae_tf.data import files
from skip_vae_tf.data import images


def _assert_binary(array):
  assert array.dtype == np.float32 and array.shape[1:] == (28, 28, 1)
  assert set(np.unique(array)) <= {0.0, 1.0}


def test_omniglot_from_npz(data_dir, cache_dir):
  data = images.load_image_dataset("omniglot", str(data_dir), str(cache_dir), seed=0)
  assert (len(data.train), len(data.validation), len(data.test)) == (22345, 2000, 8115)
  assert len(data.train) + len(data.validation) == 1623 * 15
  assert data.dynamic_binarization and "npz" in data.source and "seed 0" in data.source
  assert data.train.min() == 0.0 and data.train.max() == 1.0
  assert 0.05 < data.train.mean() < 0.15  # Strokes are 1 and sparse.
  _assert_binary(data.validation)
  _assert_binary(data.test)
  assert data.train_labels.max() == 1622 and len(np.unique(data.test_labels)) == 1623
  again = images.load_image_dataset("omniglot", str(data_dir), str(cache_dir), seed=0)
  np.testing.assert_array_equal(again.validation, data.validation)


def test_omniglot_conversion_keeps_characters_and_drawers():
  raw = np.ones((3, 20, 105, 105), bool)
  raw[1, :, 40:60, 40:60] = False  # Character 1 has a stroke block.
  train, train_labels, validation, validation_labels, test, test_labels = (
      images.omniglot_from_raw(raw, seed=0, validation_size=5))
  assert (len(train), len(validation), len(test)) == (40, 5, 15)
  assert np.all(test_labels == np.repeat([0, 1, 2], 5))
  for split, labels in ((train, train_labels), (validation, validation_labels),
                        (test, test_labels)):
    ink = split.reshape(len(split), -1).max(axis=1)
    np.testing.assert_array_equal(ink > 0.5, labels == 1)


def test_mnist_via_tfds_manual_dir(data_dir, cache_dir):
  data = images.load_image_dataset("mnist", str(data_dir), str(cache_dir), seed=0)
  assert (len(data.train), len(data.validation), len(data.test)) == (50000, 10000, 10000)
  assert data.dynamic_binarization
  assert 0.0 == data.train.min() and data.train.max() == 1.0
  assert len(np.unique(data.train)) > 2  # Intensities, binarized per epoch in the pipeline.
  _assert_binary(data.validation)
  _assert_binary(data.test)
  assert sorted(np.unique(data.test_labels)) == list(range(10))
  # The seeded hold-out is a fixed subset; another seed moves it.
  other = images.load_image_dataset("mnist", str(data_dir), str(cache_dir), seed=1)
  assert not np.array_equal(other.validation_labels, data.validation_labels)


def test_binarized_mnist_via_tfds_manual_dir(data_dir, cache_dir):
  data = images.load_image_dataset("binarized_mnist", str(data_dir), str(cache_dir))
  assert (len(data.train), len(data.validation), len(data.test)) == (50000, 10000, 10000)
  assert not data.dynamic_binarization
  for split in (data.train, data.validation, data.test):
    _assert_binary(split)
  assert 0.1 < data.train.mean() < 0.16


def test_binarize_once_is_seeded_and_unbiased():
  probs = np.full((2000, 28, 28, 1), 0.3, np.float32)
  first, second = images.binarize_once(probs, 5, 1), images.binarize_once(probs, 5, 1)
  np.testing.assert_array_equal(first, second)
  assert not np.array_equal(first, images.binarize_once(probs, 5, 2))
  assert abs(first.mean() - 0.3) < 0.002


def test_missing_file_error_names_file_place_and_checksum(tmp_path, cache_dir):
  with pytest.raises(files.DataFileError) as error:
    images.load_image_dataset("omniglot", str(tmp_path), str(cache_dir / "empty"))
  message = str(error.value)
  assert "omniglot/images_background.npz" in message and str(tmp_path) in message
  assert images.OMNIGLOT_NPZ_FILES[0].digest in message


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_file_error(tmp_path, data_dir, damage):
  registered = images.MNIST_FILES[3]
  target = tmp_path / registered.relpath
  target.parent.mkdir(parents=True)
  shutil.copy(data_dir / registered.relpath, target)
  content = bytearray(target.read_bytes())
  if damage == "truncate":
    content = content[:-100]
  else:
    content[len(content) // 2] ^= 0xFF
  target.write_bytes(bytes(content))
  with pytest.raises(files.DataFileError, match=registered.digest) as error:
    files.verified_path(tmp_path, registered)
  assert ("truncated" if damage == "truncate" else "corrupt") in str(error.value)


def test_git_blob_digest_matches_git(tmp_path):
  path = tmp_path / "f"
  path.write_bytes(b"hello\n")
  assert files.file_digest(path, "git-blob") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_data_dir_from_environment(monkeypatch, tmp_path):
  monkeypatch.setenv(files.DATA_DIR_ENV, str(tmp_path))
  assert files.resolve_data_dir("") == tmp_path
  monkeypatch.setenv(files.DATA_DIR_ENV, str(tmp_path / "absent"))
  with pytest.raises(files.DataFileError, match="does not exist"):
    files.resolve_data_dir("")


def test_gz_source_files_decompress(data_dir):
  with gzip.open(data_dir / images.BINARIZED_MNIST_FILES[2].relpath, "rt") as f:
    assert len(f.readline().split()) == 784


def test_omniglot_tfds_route_groups_drawings_by_character():
  """The online route (TFDS `omniglot`), exercised offline with tfds.testing.mock_data."""
  import tensorflow as tf
  import tensorflow_datasets as tfds

  def as_dataset(self, split, **unused):
    del self
    labels = [0, 2] if split == "train" else [1]
    examples = [(label, drawer) for drawer in range(20) for label in labels]
    image = np.full((len(examples), 105, 105, 3), 255, np.uint8)
    for i, (label, drawer) in enumerate(examples):
      image[i, label, drawer] = 0  # A stroke pixel at (label, drawer) identifies the drawing.
    return tf.data.Dataset.from_tensor_slices(
        {"image": image, "label": np.array([l for l, _ in examples], np.int64)})

  with tfds.testing.mock_data(as_dataset_fn=as_dataset):
    raw = images.omniglot_raw_from_tfds()
  assert raw.shape == (3, 20, 105, 105) and raw.dtype == bool
  for label in range(3):
    for drawer in range(20):
      assert not raw[label, drawer, label, drawer] and raw[label, drawer].sum() == 105 * 105 - 1
