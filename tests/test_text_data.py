"""Text corpora on the real files: vocabulary, tokenization, splits, bucketing, clear errors."""

import collections
import gzip

import numpy as np
import pytest

from skip_vae_tf import vocabulary as vocab
from skip_vae_tf.data import files
from skip_vae_tf.data import text


@pytest.fixture(scope="module")
def yahoo_vocabulary(data_dir):
  return vocab.read_vocabulary_file(data_dir / "yahoo" / "yahoo.dict")


@pytest.fixture(scope="module")
def ptb(data_dir):
  return text.load_text_dataset("ptb", str(data_dir))


def test_special_ids_match_the_vocabulary_file(data_dir, yahoo_vocabulary):
  lines = (data_dir / "yahoo" / "yahoo.dict").read_text(encoding="utf-8").splitlines()
  assert yahoo_vocabulary.size == len(lines) == 20001
  file_ids = {line.split()[0]: int(line.split()[1]) for line in lines}
  assert [file_ids[t] for t in (vocab.PAD, vocab.UNK, vocab.BOS, vocab.EOS)] == [
      vocab.PAD_ID, vocab.UNK_ID, vocab.BOS_ID, vocab.EOS_ID]
  assert yahoo_vocabulary.tokens[file_ids["the"]] == "the"


def test_known_line_round_trips_and_unknown_words_map_to_unk(yahoo_vocabulary):
  line = "what do you think of the new york city ?"
  corpus = text.tokenize([line, "the zzqxjv-not-a-word city"], yahoo_vocabulary)
  first, second = corpus.padded()[0], corpus.padded()[1]
  assert first[0] == vocab.BOS_ID and first[len(line.split()) + 1] == vocab.EOS_ID
  assert yahoo_vocabulary.to_text(first) == line
  assert list(first[1:len(line.split()) + 1]) == [yahoo_vocabulary.tokens.index(w)
                                                  for w in line.split()]
  assert list(second[:5]) == [vocab.BOS_ID, yahoo_vocabulary.tokens.index("the"), vocab.UNK_ID,
                              yahoo_vocabulary.tokens.index("city"), vocab.EOS_ID]
  assert list(corpus.lengths) == [len(line.split()) + 2, 5]


def test_ptb_splits_and_vocabulary_built_from_train(ptb):
  assert (len(ptb.train), len(ptb.validation), len(ptb.test)) == (42068, 3370, 3761)
  # 9,999 types in train, one of them PTB's own <unk> (our id 1), plus our 4 specials.
  assert ptb.vocabulary.size == 10002 and ptb.vocabulary.tokens[:4] == vocab.SPECIALS
  assert int(ptb.train.lengths.sum() - 2 * len(ptb.train)) == 887521
  assert int(ptb.validation.lengths.sum() - 2 * len(ptb.validation)) == 70390
  assert ptb.vocabulary.tokens[4] == "the"  # The most frequent word comes first.


def test_yahoo_small_is_the_reduced_protocol_and_is_seeded(data_dir):
  data = text.load_text_dataset("yahoo_small", str(data_dir), seed=3)
  assert (len(data.train), len(data.validation), len(data.test)) == (9000, 1000, 10000)
  assert "REDUCED PROTOCOL" in data.source and "seed 3" in data.source
  train_rows = {tuple(r[r > 0]) for r in data.train.padded()}
  assert not any(tuple(r[r > 0]) in train_rows for r in data.validation.padded())
  again = text.load_text_dataset("yahoo_small", str(data_dir), seed=3)
  np.testing.assert_array_equal(again.validation.ids, data.validation.ids)
  other = text.load_text_dataset("yahoo_small", str(data_dir), seed=4)
  assert not np.array_equal(other.validation.ids[:500], data.validation.ids[:500])


def test_standard_yahoo_without_its_train_file_names_the_alternative(data_dir):
  with pytest.raises(files.DataFileError, match="yahoo_small") as error:
    text.load_text_dataset("yahoo", str(data_dir))
  assert "ae7d4fc4d07e520dffdbd835868a1d7c7a6eb471" in str(error.value)


@pytest.mark.parametrize("content,message", [
    ("<pad> 0\n<unk> 1\n<s> 2\n</s>\n", "line 4: expected '<word> 3'"),
    ("<pad> 0\n<unk> 1\n<s> 3\n", "line 3: expected '<word> 2'"),
    ("<pad> 0\n<s> 1\n<unk> 2\n</s> 3\n", "must start with"),
])
def test_malformed_vocabulary_file_is_refused(tmp_path, content, message):
  path = tmp_path / "bad.dict"
  path.write_text(content)
  with pytest.raises(files.DataFileError, match=message):
    vocab.read_vocabulary_file(path)


def test_empty_and_corrupt_corpora_are_refused(tmp_path):
  empty = tmp_path / "empty.txt.gz"
  with gzip.open(empty, "wt") as f:
    f.write("\n  \n")
  with pytest.raises(files.DataFileError, match="empty corpus"):
    text.read_lines(empty)
  corrupt = tmp_path / "corrupt.txt.gz"
  corrupt.write_bytes(b"not gzip at all")
  with pytest.raises(files.DataFileError, match="cannot read text file"):
    text.read_lines(corrupt)


def test_missing_or_altered_corpus_file_is_refused(tmp_path, data_dir):
  (tmp_path / "ptb").mkdir()
  with pytest.raises(files.DataFileError, match="missing data file ptb/ptb.train.txt.gz"):
    text.load_text_dataset("ptb", str(tmp_path))
  (tmp_path / "ptb" / "ptb.train.txt.gz").write_bytes(
      (data_dir / "ptb" / "ptb.train.txt.gz").read_bytes()[:1000])
  with pytest.raises(files.DataFileError, match="truncated"):
    text.load_text_dataset("ptb", str(tmp_path))


def test_bucketed_epochs_are_exact_seeded_and_resumable(ptb):
  corpus = ptb.validation
  batches = text.TextTrainingBatches(corpus, batch_size=16, seed=5, bucket_width=10)
  epoch = [b.numpy() for b in batches.epoch(2)]
  assert len(epoch) == batches.steps_per_epoch
  seen = []
  for batch in epoch:
    assert batch.shape[0] == 16 and batch.shape[1] % 10 == 0
    lengths = (batch != vocab.PAD_ID).sum(1)
    # One bucket per batch: every length pads to the batch's width.
    assert np.all(-(-lengths // 10) * 10 == batch.shape[1])
    for row, length in zip(batch, lengths):
      assert row[0] == vocab.BOS_ID and row[length - 1] == vocab.EOS_ID
      assert np.all(row[length:] == vocab.PAD_ID) and np.all(row[:length] != vocab.PAD_ID)
      seen.append(tuple(row[:length]))
  # No sentence more often than the corpus holds it (PTB repeats some sentences).
  available = collections.Counter(tuple(r[r != vocab.PAD_ID]) for r in corpus.padded())
  assert not collections.Counter(seen) - available
  assert len(seen) > len(corpus) - 16 * len(batches.boundaries)  # Only partial batches drop.
  np.testing.assert_array_equal(epoch[7], [b.numpy() for b in batches.epoch(2)][7])
  resumed = [b.numpy() for b in batches.epoch(2, skip_batches=5)]
  assert len(resumed) == len(epoch) - 5
  for a, b in zip(resumed, epoch[5:]):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(epoch[0], next(iter(batches.epoch(3))).numpy())


def test_evaluation_batches_visit_every_sentence_once(ptb):
  corpus = ptb.test
  order = text.evaluation_order(corpus)
  batches = text.evaluation_batches(corpus, 100, 10)
  assert batches.options().autotune.enabled is False  # As the image batches (pipelines.py).
  rows = [r for batch in batches for r in batch.numpy()]
  assert len(rows) == len(corpus)
  for index in (0, 1, 1234, len(corpus) - 1):
    sentence = corpus.ids[corpus.offsets[order[index]]:corpus.offsets[order[index] + 1]]
    row = rows[index]
    np.testing.assert_array_equal(row[:len(sentence)], sentence)
    assert np.all(row[len(sentence):] == vocab.PAD_ID)
