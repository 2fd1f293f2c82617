"""Binary-image datasets as arrays: MNIST, binarized MNIST (Larochelle) and 28x28 Omniglot.

`load_image_dataset` returns an `ImageDataset` whose arrays have shape (N, 28, 28, 1),
dtype float32. Validation and test images are binary {0, 1}, binarized once with a
seeded draw; training images hold intensities in [0, 1] when `dynamic_binarization`
is set (a fresh Bernoulli draw per epoch happens in the input pipeline), else {0, 1}.

Sources (all verified against registered checksums before use):
- mnist: the four IDX files through the TFDS `mnist` builder (`manual_dir` offline);
  a seeded `validation_size` (default 10,000) of the 60,000 training images is held out.
- binarized_mnist: Larochelle's static 50k/10k/10k through the TFDS `binarized_mnist` builder.
- omniglot: Burda et al.'s `chardata.mat` when present (24,345 train / 8,070 test);
  otherwise built from the full 105x105 Omniglot npz files: strokes set to 1, downsampled
  to 28x28 with anti-aliasing, each character's 20 drawings split 15 train / 5 test
  (24,345 / 8,115), and a seeded `validation_size` (default 2,000) of train held out
  (the SA-VAE protocol). The converted arrays are cached.
"""

import dataclasses
import gzip
import pathlib
import shutil

from absl import logging
import numpy as np
import tensorflow as tf

from skip_vae_tf import atomic
from skip_vae_tf import dataset_registry
from skip_vae_tf.data import cache as cache_lib
from skip_vae_tf.data import files
from skip_vae_tf.data import pipelines

IMAGE_SHAPE = (28, 28, 1)

MNIST_FILES = (
    files.RegisteredFile("mnist/train-images-idx3-ubyte.gz", 9912422,
                         "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    files.RegisteredFile("mnist/train-labels-idx1-ubyte.gz", 28881,
                         "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    files.RegisteredFile("mnist/t10k-images-idx3-ubyte.gz", 1648877,
                         "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    files.RegisteredFile("mnist/t10k-labels-idx1-ubyte.gz", 4542,
                         "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
)
BINARIZED_MNIST_FILES = (
    files.RegisteredFile("binarized_mnist/binarized_mnist_train.amat.gz", 2196952,
                         "af247bd6075cf9adc4715459dcd5f13eaa99a2c92d8d81379a05da94770b6c0e"),
    files.RegisteredFile("binarized_mnist/binarized_mnist_valid.amat.gz", 439620,
                         "533b71bc0198f4d73c54ae5fe6c96fc08dc3cf1b3fae24c5521dbc0452507e38"),
    files.RegisteredFile("binarized_mnist/binarized_mnist_test.amat.gz", 416802,
                         "32a3c54d03504632bf9f131b4a148c7567aa6fc87da017049b044bdc14c2a0f2"),
)
OMNIGLOT_NPZ_FILES = (
    files.RegisteredFile("omniglot/images_background.npz", 3340794,
                         "8bf84167413cd00beacdce3fe582f780ab538d8dbef043a6d688f2527bbce199"),
    files.RegisteredFile("omniglot/images_evaluation.npz", 2415269,
                         "0b84c7ffd94c4841c0040e529c86a82eaaccb986d8eadad5673f7991b7475276"),
)
OMNIGLOT_CHARDATA = files.RegisteredFile(
    "omniglot/chardata.mat", None, "016a3536ffe5e1d38e42563a18d7a78bfaf643ec", "git-blob")

OMNIGLOT_TRAIN_DRAWERS = 15
_CACHE_VERSION = 1


@dataclasses.dataclass
class ImageDataset:
  """Arrays of one image dataset, shape (N, 28, 28, 1) float32, with provenance.

  `source` names the files and protocol used; it is recorded with every result.
  Labels are int64 class ids (MNIST digits, Omniglot characters) or None.
  """
  name: str
  source: str
  train: np.ndarray
  validation: np.ndarray
  test: np.ndarray
  dynamic_binarization: bool
  train_labels: np.ndarray | None = None
  validation_labels: np.ndarray | None = None
  test_labels: np.ndarray | None = None

  def num_examples(self, split: str) -> int:
    return len(getattr(self, split))

  def labels(self, split: str) -> np.ndarray | None:
    return getattr(self, f"{split}_labels")

  def first_examples(self, split: str, count: int) -> np.ndarray:
    """(count, 28, 28, 1): model inputs for the summaries' reconstructions."""
    return getattr(self, split)[:count]

  def training_batches(self, batch_size: int, seed: int) -> pipelines.TrainingBatches:
    return pipelines.TrainingBatches(self.train, batch_size, seed, self.dynamic_binarization)

  def evaluation_batches(self, split: str, batch_size: int) -> tf.data.Dataset:
    """Every example of `split` once, in order (`evaluation_order` is None)."""
    return pipelines.evaluation_batches(getattr(self, split), batch_size)

  def evaluation_order(self, split: str) -> None:
    del split  # Images are evaluated in their stored order.


def binarize_once(images: np.ndarray, seed: int, stream: int) -> np.ndarray:
  """One seeded Bernoulli draw per pixel: {0, 1} float32 of the same shape.

  `stream` separates the draws of different splits made with the same seed.
  """
  rng = np.random.default_rng([seed, stream])
  return (rng.random(images.shape, dtype=np.float32) < images).astype(np.float32)


def _tfds_builder(name: str, data_dir: pathlib.Path | None, cache_dir: pathlib.Path,
                  manual_dir: pathlib.Path | None):
  """A prepared TFDS builder: offline from `manual_dir`, else TFDS's own download."""
  import tensorflow_datasets as tfds  # Imported here: slow, and only this route needs it.
  if data_dir is None:
    builder = tfds.builder(name)
    builder.download_and_prepare()
  else:
    try:
      builder = tfds.builder(name, data_dir=str(cache_dir / "tfds"))
      builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    except (OSError, tf.errors.OpError) as error:  # TFDS writes through tf.io.gfile.
      reason = (error.message if isinstance(error, tf.errors.OpError)
                else error.strerror or str(error)).strip().splitlines()[0][:200]
      raise files.DataFileError(
          f"cannot prepare TFDS {name} under {cache_dir / 'tfds'} ({reason}): make the "
          "folder writable or point SKIP_VAE_CACHE_DIR (or data.cache_dir) elsewhere"
      ) from error
  return builder


def _tfds_splits(name: str, data_dir: pathlib.Path | None, cache_dir: pathlib.Path,
                 manual_dir: pathlib.Path | None, splits: tuple[str, ...]
                 ) -> list[dict[str, np.ndarray]]:
  """The `splits` of TFDS dataset `name` as numpy dicts; offline, a damaged prepared copy
  under the cache (truncated or corrupt records) is rebuilt from `manual_dir` once, with
  a one-line warning."""
  import tensorflow_datasets as tfds
  builder = _tfds_builder(name, data_dir, cache_dir, manual_dir)
  read = lambda b: [tfds.as_numpy(b.as_dataset(split=s, batch_size=-1)) for s in splits]
  try:
    return read(builder)
  except tf.errors.OpError as error:
    if data_dir is None:
      raise
    logging.warning("TFDS records of %s in %s are damaged (%s): rebuilding them from %s",
                    name, builder.data_dir, error.message.strip().splitlines()[0][:200],
                    manual_dir)
    shutil.rmtree(builder.data_dir)
    return read(_tfds_builder(name, data_dir, cache_dir, manual_dir))


def _load_mnist(data_dir, cache_dir, seed, validation_size):
  manual_dir = None
  if data_dir is not None:
    for registered in MNIST_FILES:
      files.verified_path(data_dir, registered)
    manual_dir = data_dir / "mnist"
  train, test = _tfds_splits("mnist", data_dir, cache_dir, manual_dir, ("train", "test"))
  train_images = train["image"].astype(np.float32) / 255.0
  test_images = test["image"].astype(np.float32) / 255.0
  validation_size = validation_size or dataset_registry.DATASETS["mnist"].validation_size
  kept, held_out = pipelines.holdout_split(len(train_images), validation_size, seed)
  return ImageDataset(
      name="mnist",
      source=(f"MNIST IDX files via TFDS mnist; {len(kept)} train / {len(held_out)} validation "
              f"held out of the 60000 training images with seed {seed} / "
              f"{len(test_images)} test; dynamic binarization for train, "
              f"one seeded binarization for validation and test"),
      train=train_images[kept],
      validation=binarize_once(train_images[held_out], seed, stream=1),
      test=binarize_once(test_images, seed, stream=2),
      dynamic_binarization=True,
      train_labels=train["label"][kept],
      validation_labels=train["label"][held_out],
      test_labels=test["label"])


def _gunzip_to(source: pathlib.Path, target: pathlib.Path) -> None:
  """Decompresses `source` to `target` atomically (a half-written file is never left)."""
  if target.exists():
    return
  target.parent.mkdir(parents=True, exist_ok=True)
  with atomic.replacing(target) as partial, gzip.open(source, "rb") as src, \
      open(partial, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)


def _load_binarized_mnist(data_dir, cache_dir, seed):
  manual_dir = None
  if data_dir is not None:
    manual_dir = cache_dir / "manual" / "binarized_mnist"
    for registered in BINARIZED_MNIST_FILES:
      path = files.verified_path(data_dir, registered)
      _gunzip_to(path, manual_dir / path.name[:-len(".gz")])
  names = ("train", "validation", "test")
  splits = {split: arrays["image"].astype(np.float32) for split, arrays in zip(
      names, _tfds_splits("binarized_mnist", data_dir, cache_dir, manual_dir, names))}
  return ImageDataset(
      name="binarized_mnist",
      source="Larochelle static binarized MNIST via TFDS binarized_mnist; 50000/10000/10000",
      train=splits["train"], validation=splits["validation"], test=splits["test"],
      dynamic_binarization=False)


def downsample_omniglot(raw: np.ndarray, batch: int = 2048) -> np.ndarray:
  """Raw Omniglot (M, 105, 105) bool, True = background -> (M, 28, 28, 1) float32 strokes.

  Strokes become 1; the 105->28 resize is bilinear with anti-aliasing, so values lie in [0, 1].
  """
  strokes = 1.0 - raw.astype(np.float32)
  out = [tf.image.resize(strokes[i:i + batch, :, :, None], IMAGE_SHAPE[:2],
                         method="bilinear", antialias=True).numpy()
         for i in range(0, len(strokes), batch)]
  return np.clip(np.concatenate(out), 0.0, 1.0)


def omniglot_from_raw(raw_images: np.ndarray, seed: int, validation_size: int):
  """Builds the 28x28 split from raw (num_chars, 20, 105, 105) bool drawings.

  Returns (train, train_labels, validation, validation_labels, test, test_labels): each
  character's first 15 drawings go to train, the last 5 to test; a seeded
  `validation_size` of train is held out. Labels are character ids.
  """
  num_chars, drawers = raw_images.shape[:2]
  images = downsample_omniglot(raw_images.reshape(-1, *raw_images.shape[2:]))
  images = images.reshape(num_chars, drawers, *IMAGE_SHAPE)
  labels = np.repeat(np.arange(num_chars, dtype=np.int64)[:, None], drawers, axis=1)
  cut = OMNIGLOT_TRAIN_DRAWERS
  train, train_labels = images[:, :cut].reshape(-1, *IMAGE_SHAPE), labels[:, :cut].ravel()
  test, test_labels = images[:, cut:].reshape(-1, *IMAGE_SHAPE), labels[:, cut:].ravel()
  kept, held_out = pipelines.holdout_split(len(train), validation_size, seed)
  return (train[kept], train_labels[kept], train[held_out], train_labels[held_out],
          test, test_labels)


def omniglot_raw_from_npz(data_dir: pathlib.Path) -> np.ndarray:
  parts = []
  for registered in OMNIGLOT_NPZ_FILES:
    with np.load(files.verified_path(data_dir, registered)) as npz:
      parts.append(npz["images"])
  return np.concatenate(parts)


def omniglot_raw_from_tfds() -> np.ndarray:
  """All 1,623 characters x 20 drawings from TFDS `omniglot` (online route)."""
  import tensorflow_datasets as tfds
  builder = tfds.builder("omniglot")
  builder.download_and_prepare()
  drawings: dict[int, list[np.ndarray]] = {}
  for split in ("train", "test"):
    for example in tfds.as_numpy(builder.as_dataset(split=split)):
      drawings.setdefault(int(example["label"]), []).append(example["image"][..., 0] > 127)
  return np.stack([np.stack(drawings[label]) for label in sorted(drawings)])


def _load_chardata(path: pathlib.Path, seed: int, validation_size: int):
  """Burda et al.'s 28x28 arrays; the same tuple as `omniglot_from_raw` (test labels None)."""
  import scipy.io
  mat = scipy.io.loadmat(path)
  train = mat["data"].T.reshape((-1, 28, 28), order="F")[..., None].astype(np.float32)
  test = mat["testdata"].T.reshape((-1, 28, 28), order="F")[..., None].astype(np.float32)
  train_labels = np.asarray(mat.get("targetchar", np.zeros(0))).ravel().astype(np.int64)
  kept, held_out = pipelines.holdout_split(len(train), validation_size, seed)
  if len(train_labels) != len(train):
    return train[kept], None, train[held_out], None, test, None
  return (train[kept], train_labels[kept], train[held_out], train_labels[held_out],
          test, None)


def _load_omniglot(data_dir, cache_dir, seed, validation_size):
  validation_size = validation_size or dataset_registry.DATASETS["omniglot"].validation_size
  chardata = None if data_dir is None else data_dir / OMNIGLOT_CHARDATA.relpath
  if chardata is not None and chardata.exists():
    files.verified_path(data_dir, OMNIGLOT_CHARDATA)
    source_name, tag = "Burda et al. chardata.mat (24345 train / 8070 test)", "chardata"
  elif data_dir is not None:
    source_name, tag = ("full 105x105 Omniglot npz (background + evaluation), "
                        "downsampled to 28x28, 15/5 drawers per character"), "npz"
  else:
    source_name, tag = ("TFDS omniglot 105x105, downsampled to 28x28, "
                        "15/5 drawers per character"), "tfds"
  cache = cache_dir / f"omniglot28_{tag}_seed{seed}_val{validation_size}_v{_CACHE_VERSION}.npz"
  arrays = cache_lib.read_arrays(cache)
  if arrays is not None:
    logging.info("Omniglot: read cached arrays %s", cache)
  else:
    if tag == "chardata":
      parts = _load_chardata(chardata, seed, validation_size)
    else:
      raw = omniglot_raw_from_npz(data_dir) if tag == "npz" else omniglot_raw_from_tfds()
      logging.info("Omniglot: converting %d raw images to 28x28", raw.shape[0] * raw.shape[1])
      parts = omniglot_from_raw(raw, seed, validation_size)
    keys = ("train", "train_labels", "validation", "validation_labels", "test", "test_labels")
    arrays = {key: value for key, value in zip(keys, parts) if value is not None}
    arrays["validation"] = binarize_once(arrays["validation"], seed, stream=1)
    arrays["test"] = binarize_once(arrays["test"], seed, stream=2)
    cache_lib.write_arrays(cache, arrays)
    logging.info("Omniglot: cached converted arrays in %s", cache)
  return ImageDataset(
      name="omniglot",
      source=(f"{source_name}; {len(arrays['train'])} train / {len(arrays['validation'])} "
              f"validation held out with seed {seed} / {len(arrays['test'])} test; dynamic "
              "binarization for train, one seeded binarization for validation and test"),
      train=arrays["train"], validation=arrays["validation"], test=arrays["test"],
      dynamic_binarization=True,
      train_labels=arrays.get("train_labels"),
      validation_labels=arrays.get("validation_labels"),
      test_labels=arrays.get("test_labels"))


def load_image_dataset(name: str, data_dir: str = "", cache_dir: str = "", seed: int = 0,
                       validation_size: int = 0) -> ImageDataset:
  """Loads dataset `name` ('mnist', 'binarized_mnist' or 'omniglot').

  Args:
    name: dataset name.
    data_dir: folder holding the raw files ('' = $SKIP_VAE_DATA_DIR, else download via TFDS).
    cache_dir: folder for prepared arrays ('' = $SKIP_VAE_CACHE_DIR, else ~/.cache/skip_vae_tf).
    seed: seeds the validation hold-out and the fixed binarization.
    validation_size: examples held out of train for validation (0 = the dataset's default).

  Raises:
    files.DataFileError: a required file is missing or is not the registered file.
    ValueError: an unknown dataset name.
  """
  raw_dir = files.resolve_data_dir(data_dir)
  cache = files.resolve_cache_dir(cache_dir)
  if name == "mnist":
    return _load_mnist(raw_dir, cache, seed, validation_size)
  if name == "binarized_mnist":
    return _load_binarized_mnist(raw_dir, cache, seed)
  if name == "omniglot":
    return _load_omniglot(raw_dir, cache, seed, validation_size)
  raise ValueError(f"unknown image dataset {name!r}")


def _cap(array: np.ndarray | None, limit: int) -> np.ndarray | None:
  return array if array is None or not limit else array[:limit]


def load_configured(data_config, seed: int) -> ImageDataset:
  """The dataset of a config's `data` section, split sizes capped by max_*_examples."""
  data = load_image_dataset(data_config.name, data_config.data_dir, data_config.cache_dir, seed,
                            data_config.validation_size)
  for split, limit in (("train", data_config.max_train_examples),
                       ("validation", data_config.max_eval_examples),
                       ("test", data_config.max_eval_examples)):
    setattr(data, split, _cap(getattr(data, split), limit))
    setattr(data, f"{split}_labels", _cap(getattr(data, f"{split}_labels"), limit))
  return data
