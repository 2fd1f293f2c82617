"""Text corpora: reading, tokenizing (through a TF lookup table), bucketed batches.

A sentence (a line; for Yahoo a whole document) becomes `<s> w_1 ... w_n </s>` as int32
ids of a `skip_vae_tf.vocabulary.Vocabulary`.

Datasets (files under the data dir, gzip or plain):
- 'ptb': Mikolov's Penn Treebank train/valid/test; vocabulary built from train.
- 'yahoo': the Yahoo Answers corpus of Yang et al. (2017), standard train/valid/test with
  the reference vocabulary `yahoo.dict`. Needs `yahoo.train.txt`, which is not
  distributed with the other files.
- 'yahoo_small': the reduced protocol when the Yahoo train file is absent: train on the
  validation file minus a seeded held-out part, validate on that part, test on the test
  file. Numbers from it are not comparable with published Yahoo results.
"""

import collections
import dataclasses
import gzip
import pathlib

import numpy as np
import tensorflow as tf

from skip_vae_tf import errors
from skip_vae_tf import dataset_registry
from skip_vae_tf import vocabulary as vocab
from skip_vae_tf.data import files
from skip_vae_tf.data import pipelines


_REGISTERED = {
    "ptb.train": files.RegisteredFile("ptb/ptb.train.txt.gz", 1688035,
                                      "c4c6455d85f60640431f7bc738d51265ba2d55dcce10e8906322d6f9e3dcca81"),
    "ptb.valid": files.RegisteredFile("ptb/ptb.valid.txt.gz", 134062,
                                      "f2148d96d82f827399b7e5040868a4541bd2d2612ebaf5a2ff213bc07fd74eb8"),
    "ptb.test": files.RegisteredFile("ptb/ptb.test.txt.gz", 149201,
                                     "5015d206077ff3e96161868c5c280ec8a28e9ad5617ef99ee0e734aaef6130c5"),
    "yahoo.valid": files.RegisteredFile("yahoo/yahoo.valid.txt.gz", 1324517,
                                        "6c66013667d572c7ea9d16adfc1da5dea2ca95bf1bff3a115a05b7391fcc95db"),
    "yahoo.test": files.RegisteredFile("yahoo/yahoo.test.txt.gz", 1324530,
                                       "8c7f570db2075124844bbfcd81aa5c0f5498fad3e2e95f82bfaa33e476d1637e"),
    "yahoo.dict": files.RegisteredFile("yahoo/yahoo.dict", 262924,
                                       "3eff076d0d1895bea88733773c1726641a533fc94845fd91cc113b1a25349d28"),
}
# The raw (uncompressed) files, for users who gunzipped them or supply the Yahoo train split.
_REGISTERED_RAW = {
    "ptb.train": files.RegisteredFile("ptb/ptb.train.txt", 5101618,
                                      "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
    "ptb.valid": files.RegisteredFile("ptb/ptb.valid.txt", 399782,
                                      "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
    "ptb.test": files.RegisteredFile("ptb/ptb.test.txt", 449945,
                                     "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
    "yahoo.train": files.RegisteredFile("yahoo/yahoo.train.txt", None,
                                        "ae7d4fc4d07e520dffdbd835868a1d7c7a6eb471", "git-blob"),
    "yahoo.valid": files.RegisteredFile("yahoo/yahoo.valid.txt", 3683468,
                                        "3247ac3ffcc4d4bfd6216f2aaa617f6706cdc4081874da39245fe156825898d1"),
    "yahoo.test": files.RegisteredFile("yahoo/yahoo.test.txt", 3679881,
                                       "ad843c4363adbdd07d8055d9bf121e5f23c285760df43a0031b89d8538293075"),
}


def build_vocabulary(lines: list[str], max_size: int = 0) -> vocab.Vocabulary:
  """The special tokens, then the words of `lines` by decreasing count (ties: first seen first).

  `max_size` caps the total size (0 = keep every word).
  """
  counts = collections.Counter(word for line in lines for word in line.split())
  words = [w for w, _ in counts.most_common() if w not in vocab.SPECIALS]
  if max_size:
    words = words[:max_size - len(vocab.SPECIALS)]
  return vocab.Vocabulary(vocab.SPECIALS + tuple(words))


def read_lines(path: pathlib.Path) -> list[str]:
  """The non-empty lines of a text file (gzip when named *.gz), stripped.

  Raises:
    errors.DataFileError: the file cannot be decoded or holds no non-empty line.
  """
  try:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
      lines = [line.strip() for line in f]
  except (OSError, UnicodeDecodeError, EOFError) as error:
    raise errors.DataFileError(f"cannot read text file {path}: {error}") from error
  lines = [line for line in lines if line]
  if not lines:
    raise errors.DataFileError(f"text file {path} holds no sentences (empty corpus)")
  return lines


@dataclasses.dataclass
class TokenizedCorpus:
  """N sentences as int32 ids, each `<s> ... </s>`, stored flat: sentence i is
  `ids[offsets[i]:offsets[i + 1]]`."""
  ids: np.ndarray
  offsets: np.ndarray

  def __len__(self) -> int:
    return len(self.offsets) - 1

  @property
  def lengths(self) -> np.ndarray:
    """(N,) tokens per sentence, `<s>` and `</s>` included."""
    return np.diff(self.offsets)

  def subset(self, indices: np.ndarray) -> "TokenizedCorpus":
    sentences = [self.ids[self.offsets[i]:self.offsets[i + 1]] for i in indices]
    lengths = np.array([len(s) for s in sentences], np.int64)
    return TokenizedCorpus(np.concatenate(sentences) if sentences else np.zeros(0, np.int32),
                           np.concatenate([[0], np.cumsum(lengths)]))

  def ragged(self) -> tf.RaggedTensor:
    return tf.RaggedTensor.from_row_splits(self.ids, self.offsets)

  def padded(self, indices=None) -> np.ndarray:
    """(n, max length) int32, right-padded with vocab.PAD_ID; all sentences or `indices`."""
    indices = range(len(self)) if indices is None else indices
    rows = [self.ids[self.offsets[i]:self.offsets[i + 1]] for i in indices]
    out = np.full((len(rows), max((len(r) for r in rows), default=0)), vocab.PAD_ID, np.int32)
    for row, sentence in enumerate(rows):
      out[row, :len(sentence)] = sentence
    return out


def tokenize(lines: list[str], vocabulary: vocab.Vocabulary) -> TokenizedCorpus:
  """Splits on whitespace and maps words to ids through the vocabulary's TF lookup table."""
  ids = vocab.token_ids(tf.constant(lines), vocabulary.lookup_table())
  return TokenizedCorpus(ids.flat_values.numpy(), ids.row_splits.numpy())


@dataclasses.dataclass
class TextDataset:
  """Tokenized splits of one corpus with its vocabulary and provenance (`source`).

  Batches are padded to multiples of `bucket_width` tokens.
  """
  name: str
  source: str
  vocabulary: vocab.Vocabulary
  train: TokenizedCorpus
  validation: TokenizedCorpus
  test: TokenizedCorpus
  bucket_width: int = 10

  def num_examples(self, split: str) -> int:
    return len(getattr(self, split))

  def labels(self, split: str) -> None:
    del split  # The corpora have no labels.

  def first_examples(self, split: str, count: int) -> np.ndarray:
    """(count, L) padded ids: model inputs for the summaries' reconstructions."""
    return getattr(self, split).padded(range(min(count, self.num_examples(split))))

  def training_batches(self, batch_size: int, seed: int) -> "TextTrainingBatches":
    return TextTrainingBatches(self.train, batch_size, seed, self.bucket_width)

  def evaluation_batches(self, split: str, batch_size: int) -> tf.data.Dataset:
    """Every sentence of `split` once, in `evaluation_order(split)`."""
    return evaluation_batches(getattr(self, split), batch_size, self.bucket_width)

  def evaluation_order(self, split: str) -> np.ndarray:
    return evaluation_order(getattr(self, split))


def _corpus_file(data_dir: pathlib.Path, key: str) -> pathlib.Path:
  """The verified gzip file for `key`, else its verified uncompressed twin."""
  packed, raw = _REGISTERED.get(key), _REGISTERED_RAW[key]
  if packed is not None and (data_dir / packed.relpath).exists():
    return files.verified_path(data_dir, packed)
  if (data_dir / raw.relpath).exists() or packed is None:
    return files.verified_path(data_dir, raw)
  return files.verified_path(data_dir, packed)  # Neither exists: the error names the .gz.


def _yahoo_train_missing_error(data_dir: pathlib.Path) -> errors.DataFileError:
  registered = _REGISTERED_RAW["yahoo.train"]
  return errors.DataFileError(
      f"the Yahoo training split is missing: looked for {data_dir / registered.relpath} "
      f"(100,000 documents; git blob {registered.digest}). Supply it, or use "
      "--dataset=yahoo_small, the reduced protocol (train on the validation file minus a "
      "held-out part, test on the test file)")


def load_text_dataset(name: str, data_dir: str = "", seed: int = 0,
                      validation_size: int = 0, max_vocabulary_size: int = 0) -> TextDataset:
  """Loads and tokenizes corpus `name` ('ptb', 'yahoo' or 'yahoo_small').

  Args:
    name: dataset name.
    data_dir: folder holding ptb/ and yahoo/ ('' = $SKIP_VAE_DATA_DIR).
    seed: seeds the yahoo_small held-out validation part.
    validation_size: yahoo_small's held-out documents (0 = 1,000).
    max_vocabulary_size: caps PTB's vocabulary built from train (0 = every word).

  Raises:
    errors.DataFileError: a missing, corrupt or empty file, or a malformed vocabulary.
  """
  if name not in ("ptb", "yahoo", "yahoo_small"):
    raise ValueError(f"unknown text dataset {name!r}; choose one of ptb, yahoo, yahoo_small")
  root = files.resolve_data_dir(data_dir)
  if root is None:
    raise errors.DataFileError(
        f"{name} has no download route: pass --data_dir or set ${files.DATA_DIR_ENV} to the "
        "folder holding ptb/ and yahoo/")
  if name == "ptb":
    train_lines = read_lines(_corpus_file(root, "ptb.train"))
    vocabulary = build_vocabulary(train_lines, max_vocabulary_size)
    splits = [tokenize(lines, vocabulary) for lines in
              (train_lines, read_lines(_corpus_file(root, "ptb.valid")),
               read_lines(_corpus_file(root, "ptb.test")))]
    source = (f"ptb: Mikolov's train/valid/test ({root / 'ptb'}); vocabulary of "
              f"{vocabulary.size} built from train")
    return TextDataset(name, source, vocabulary, *splits)

  vocabulary = vocab.read_vocabulary_file(files.verified_path(root, _REGISTERED["yahoo.dict"]))
  test = tokenize(read_lines(_corpus_file(root, "yahoo.test")), vocabulary)
  valid = tokenize(read_lines(_corpus_file(root, "yahoo.valid")), vocabulary)
  if name == "yahoo":
    if not (root / _REGISTERED_RAW["yahoo.train"].relpath).exists():
      raise _yahoo_train_missing_error(root)
    train = tokenize(read_lines(_corpus_file(root, "yahoo.train")), vocabulary)
    source = f"yahoo: standard train/valid/test of Yang et al. (2017) ({root / 'yahoo'})"
    return TextDataset(name, source, vocabulary, train, valid, test)
  holdout = validation_size or dataset_registry.DATASETS[name].validation_size
  kept, held_out = pipelines.holdout_split(len(valid), holdout, seed)
  source = (f"yahoo_small: REDUCED PROTOCOL (the 100k-document Yahoo train split is absent): "
            f"train = {len(kept)} documents of yahoo.valid, validation = the other {holdout} "
            f"(seed {seed}), test = yahoo.test ({len(test)}); not comparable with published "
            "Yahoo numbers")
  return TextDataset(name, source, vocabulary, valid.subset(kept), valid.subset(held_out),
                     test)


def load_configured(data_config, seed: int) -> TextDataset:
  """The corpus of a config's `data` section, split sizes capped by max_*_examples."""
  data = load_text_dataset(data_config.name, data_config.data_dir, seed,
                           data_config.validation_size, data_config.max_vocabulary_size)
  data.bucket_width = data_config.bucket_width
  for split, limit in (("train", data_config.max_train_examples),
                       ("validation", data_config.max_eval_examples),
                       ("test", data_config.max_eval_examples)):
    corpus = getattr(data, split)
    if limit and limit < len(corpus):
      setattr(data, split, corpus.subset(np.arange(limit)))
  return data


# ---- tf.data pipelines ---------------------------------------------------------------

def bucket_boundaries(max_length: int, width: int) -> list[int]:
  """Exclusive upper bounds of the length buckets: width+1, 2*width+1, ... > max_length.

  `bucket_by_sequence_length` pads bucket [a, b) to b - 1, a multiple of `width`.
  """
  return list(range(width + 1, max_length + width + 1, width))


def padded_length(length: int, width: int) -> int:
  """The length a sentence of `length` tokens is padded to: a multiple of `width`."""
  return -(-length // width) * width


class TextTrainingBatches:
  """Epochs of (batch_size, L) int32 batches of sentences of similar length.

  Each epoch shuffles the sentences with a seeded permutation, then
  `tf.data.Dataset.bucket_by_sequence_length` groups them into buckets of `bucket_width`
  lengths, each padded to its bucket's upper length (a multiple of `bucket_width`, so
  compiled steps see few shapes). A bucket's last partial batch is dropped, so
  `steps_per_epoch` is fixed, and the batches of an epoch are a function of (seed, epoch):
  a resumed run sees the batches an uninterrupted run would have seen.
  """

  def __init__(self, corpus: TokenizedCorpus, batch_size: int, seed: int, bucket_width: int):
    self.corpus = corpus
    self.batch_size = batch_size
    self.seed = seed
    self.bucket_width = bucket_width
    self.boundaries = bucket_boundaries(int(corpus.lengths.max()), bucket_width)
    self._sentences = corpus.ragged()
    bucket_of = np.searchsorted(self.boundaries, corpus.lengths, side="right")
    self.steps_per_epoch = int(sum(np.bincount(bucket_of) // batch_size))
    if self.steps_per_epoch == 0:
      raise ValueError(f"{len(corpus)} training sentences in length buckets of width "
                       f"{bucket_width} fill no batch of {batch_size}")

  def epoch(self, epoch: int, skip_batches: int = 0) -> tf.data.Dataset:
    """The batches of `epoch`, starting after `skip_batches` of them (to resume mid-epoch)."""
    order = pipelines.epoch_permutation(len(self.corpus), self.seed, epoch)
    dataset = tf.data.Dataset.from_tensor_slices(order).map(lambda i: self._sentences[i])
    dataset = dataset.bucket_by_sequence_length(
        lambda sentence: tf.shape(sentence)[0], self.boundaries,
        [self.batch_size] * (len(self.boundaries) + 1), padding_values=vocab.PAD_ID,
        pad_to_bucket_boundary=True, drop_remainder=True)
    return dataset.skip(skip_batches).prefetch(tf.data.AUTOTUNE)


def evaluation_order(corpus: TokenizedCorpus) -> np.ndarray:
  """Sentence indices sorted by length (stable): evaluation batches pad little."""
  return np.argsort(corpus.lengths, kind="stable")


def evaluation_batches(corpus: TokenizedCorpus, batch_size: int,
                       bucket_width: int) -> tf.data.Dataset:
  """Every sentence once, in `evaluation_order`, as (B, L) int32 batches padded to a
  multiple of `bucket_width`; the last batch may be smaller."""
  order = evaluation_order(corpus)
  padded = []
  for start in range(0, len(order), batch_size):
    batch = corpus.padded(order[start:start + batch_size])
    width = padded_length(batch.shape[1], bucket_width)
    padded.append(np.pad(batch, [(0, 0), (0, width - batch.shape[1])],
                         constant_values=vocab.PAD_ID))
  return pipelines.without_autotune(tf.data.Dataset.from_generator(
      lambda: iter(padded), output_signature=tf.TensorSpec([None, None], tf.int32)).prefetch(2))
