"""Image datasets on the real files: split sizes, value ranges, seeding, clear errors."""

import gzip
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow as tf

from skip_vae_tf.data import cache as cache_lib
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


def _arrays():
  rng = np.random.default_rng(0)
  return {"train": rng.random((6, 28, 28, 1), dtype=np.float32),
          "test": (rng.random((4, 28, 28, 1)) < 0.5).astype(np.float32)}


@pytest.mark.parametrize("damage", ["garbage", "short_split", "truncated", "no_manifest"])
def test_a_damaged_prepared_cache_is_rebuilt_never_used(damage, tmp_path, caplog):
  cache = tmp_path / "prepared.npz"
  cache_lib.write_arrays(cache, _arrays())
  assert all(np.array_equal(a, b) for a, b in zip(cache_lib.read_arrays(cache).values(),
                                                  _arrays().values()))
  if damage == "garbage":  # Parses, but NaN pixels and values of 7.
    np.savez(cache, train=np.full((6, 28, 28, 1), np.nan, np.float32),
             test=np.full((4, 28, 28, 1), 7.0, np.float32))
  elif damage == "short_split":
    np.savez(cache, train=_arrays()["train"], test=_arrays()["test"][:1])
  elif damage == "truncated":
    cache.write_bytes(cache.read_bytes()[:100])
  else:
    cache_lib.manifest_path(cache).unlink()
  assert cache_lib.read_arrays(cache) is None
  assert f"prepared-array cache {cache} is" in caplog.text and "rebuilding it" in caplog.text


def test_an_unwritable_cache_folder_is_one_data_file_error(tmp_path):
  not_a_folder = tmp_path / "file"
  not_a_folder.write_text("")
  with pytest.raises(files.DataFileError, match="cannot write the prepared-array cache"):
    cache_lib.write_arrays(not_a_folder / "prepared.npz", _arrays())


def test_an_unwritable_tfds_cache_is_one_data_file_error(tmp_path, data_dir):
  (tmp_path / "tfds").write_text("")  # Where TFDS must create its folder.
  with pytest.raises(files.DataFileError, match="cannot prepare TFDS mnist under"):
    images.load_image_dataset("mnist", str(data_dir), str(tmp_path), seed=0)


def test_damaged_tfds_records_are_rebuilt_once_from_the_manual_folder(tmp_path, monkeypatch,
                                                                      caplog):
  builds = []

  class Builder:  # A prepared TFDS builder whose first records are damaged (batch_size=-1).
    def __init__(self):
      self.data_dir = str(tmp_path / "tfds" / f"build{len(builds)}")
      pathlib.Path(self.data_dir).mkdir(parents=True)
      builds.append(self)

    def as_dataset(self, split, batch_size):
      del batch_size
      if len(builds) == 1:
        raise tf.errors.DataLossError(None, None, "truncated record at 1234")
      return {"image": tf.zeros((2, 28, 28, 1), tf.uint8), "split": tf.constant(split)}

  monkeypatch.setattr(images, "_tfds_builder", lambda *args: Builder())
  test, = images._tfds_splits(  # pylint: disable=protected-access
      "mnist", tmp_path, tmp_path, tmp_path / "manual", ("test",))
  assert len(builds) == 2 and not pathlib.Path(builds[0].data_dir).exists()
  assert test["split"] == b"test" and "are damaged (truncated record at 1234)" in caplog.text
