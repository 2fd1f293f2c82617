"""Token ids, vocabularies and the string <-> id conversions inside TF graphs.

Both the text models (which need the special ids) and the text data (which tokenize with
a vocabulary) import this module; neither imports the other. Ids 0-3 are always `<pad>`,
`<unk>`, `<s>`, `</s>`; a word missing from the vocabulary maps to `<unk>`; padding is id 0
and is never part of a loss or metric.
"""

import collections
import dataclasses
import pathlib

import numpy as np
import tensorflow as tf

from skip_vae_tf import atomic
from skip_vae_tf import errors

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """Tokens by id; ids 0-3 are `SPECIALS`."""
  tokens: tuple[str, ...]

  def __post_init__(self):
    if self.tokens[:4] != SPECIALS:
      raise ValueError(f"a vocabulary must start with {SPECIALS}, got {self.tokens[:4]}")
    if len(set(self.tokens)) != len(self.tokens):
      duplicate = next(t for t, n in collections.Counter(self.tokens).items() if n > 1)
      raise ValueError(f"vocabulary lists {duplicate!r} twice")

  @property
  def size(self) -> int:
    return len(self.tokens)

  def lookup_table(self) -> tf.lookup.StaticHashTable:
    """A TF table: token string -> int64 id, `<unk>` for anything else."""
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(self.tokens),
                                            tf.range(self.size, dtype=tf.int64)),
        default_value=UNK_ID)

  def to_text(self, ids) -> str:
    """Ids -> the words they spell, stopping at `</s>` and leaving out `<s>` and `<pad>`."""
    words = []
    for token_id in np.asarray(ids).tolist():
      if token_id == EOS_ID:
        break
      if token_id not in (PAD_ID, BOS_ID):
        words.append(self.tokens[token_id])
    return " ".join(words)


def read_vocabulary_file(path: pathlib.Path) -> Vocabulary:
  """A `word id` per line, ids 0, 1, 2, ... in order (the reference code's yahoo.dict).

  Raises:
    errors.DataFileError: a line that is not `word id`, ids out of order, or missing
      specials.
  """
  try:
    lines = path.read_text(encoding="utf-8").splitlines()
  except (OSError, UnicodeDecodeError) as error:
    raise errors.DataFileError(f"cannot read vocabulary file {path}: {error}") from error
  tokens = []
  for number, line in enumerate(lines, start=1):
    fields = line.split()
    if (len(fields) != 2 or not (fields[1].isascii() and fields[1].isdigit())
        or int(fields[1]) != number - 1):
      raise errors.DataFileError(
          f"vocabulary file {path}, line {number}: expected '<word> {number - 1}', "
          f"got {line.rstrip()!r}")
    tokens.append(fields[0])
  try:
    return Vocabulary(tuple(tokens))
  except ValueError as error:
    raise errors.DataFileError(f"vocabulary file {path}: {error}") from error


def write_vocabulary_file(path: pathlib.Path, vocabulary: Vocabulary) -> None:
  """Writes `vocabulary` as `read_vocabulary_file` reads it, atomically."""
  atomic.write_text(
      path, "".join(f"{token} {index}\n" for index, token in enumerate(vocabulary.tokens)))


_WHITESPACE = r" \t\n\v\f\r"  # What tf.strings.split splits on.


def token_ids(lines: tf.Tensor, table: tf.lookup.StaticHashTable) -> tf.RaggedTensor:
  """(B,) strings -> (B, None) int32 ids `<s> w_1 ... w_n </s>`: words split on whitespace,
  looked up in `table` (`Vocabulary.lookup_table`); unknown words become `<unk>`."""
  ids = tf.cast(table.lookup(tf.strings.split(lines)), tf.int32)
  batch = ids.nrows()
  return tf.concat([tf.fill([batch, 1], BOS_ID), ids, tf.fill([batch, 1], EOS_ID)], axis=1)


def word_counts(lines: tf.Tensor) -> tf.Tensor:
  """(B,) strings -> (B,) int32 words per line, as `token_ids` splits them, counted in
  memory proportional to the lines' bytes (each word becomes one byte; nothing is split)."""
  marks = tf.strings.regex_replace(lines, f"[^{_WHITESPACE}]+", "w")
  return tf.strings.length(tf.strings.regex_replace(marks, f"[{_WHITESPACE}]+", ""))


def ids_to_text(ids: tf.Tensor, tokens: tf.Tensor) -> tf.Tensor:
  """(B, L) int32 ids -> (B,) strings: the words up to the first `</s>`, space-separated,
  without `<s>` and `<pad>` (`Vocabulary.to_text` in TF). `tokens` is (V,) strings."""
  before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(ids, EOS_ID), tf.int32), axis=1), 0)
  keep = before_end & tf.not_equal(ids, PAD_ID) & tf.not_equal(ids, BOS_ID)
  words = tf.ragged.boolean_mask(tf.gather(tokens, ids), keep)
  return tf.strings.reduce_join(words, axis=1, separator=" ")
