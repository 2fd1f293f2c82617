"""Property-based tests (hypothesis) of the data parsers: any bytes either parse into what
they say or fail with a DataFileError naming the file, never another exception."""

import gzip
import hashlib
import pathlib
import tempfile

from hypothesis import given, settings, strategies as st
import pytest

from skip_vae_tf import vocabulary as vocab
from skip_vae_tf.data import files
from skip_vae_tf.data import text as text_data

_tokens = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=
                                         " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029"),
                  min_size=1, max_size=8).filter(lambda t: t.split() == [t])


def _write(data: bytes, name: str) -> pathlib.Path:
  folder = pathlib.Path(tempfile.mkdtemp())
  path = folder / name
  path.write_bytes(data)
  return path


@settings(max_examples=80, deadline=None)
@given(st.lists(_tokens, unique=True, max_size=30))
def test_vocabulary_files_round_trip(words):
  words = [w for w in words if w not in vocab.SPECIALS]
  vocabulary = vocab.Vocabulary(vocab.SPECIALS + tuple(words))
  path = _write(b"", "vocab.txt")
  vocab.write_vocabulary_file(path, vocabulary)
  assert vocab.read_vocabulary_file(path) == vocabulary


@settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.binary(max_size=200),
    st.lists(st.tuples(st.one_of(_tokens, st.sampled_from(vocab.SPECIALS)),
                       st.one_of(st.integers(-1, 40).map(str), st.sampled_from(["²", "٣", "1.0"]))),
             max_size=12).map(
        lambda rows: "".join(f"{w} {i}\n" for w, i in rows).encode())))
def test_any_vocabulary_file_parses_or_fails_with_a_data_file_error(data):
  path = _write(data, "vocab.txt")
  try:
    vocabulary = vocab.read_vocabulary_file(path)
  except files.DataFileError as error:
    assert str(path) in str(error)
  else:
    lines = data.decode("utf-8").splitlines()
    assert vocabulary.tokens[:4] == vocab.SPECIALS and len(lines) == vocabulary.size
    assert all(line.split() == [token, str(i)]
               for i, (line, token) in enumerate(zip(lines, vocabulary.tokens)))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["plain", "gzip", "truncated_gzip"]))
def test_any_corpus_file_parses_or_fails_with_a_data_file_error(data, packing):
  if packing != "plain":
    data = gzip.compress(data)
    if packing == "truncated_gzip":
      data = data[:len(data) // 2]
  path = _write(data, "corpus.txt.gz" if packing != "plain" else "corpus.txt")
  try:
    lines = text_data.read_lines(path)
  except files.DataFileError as error:
    assert str(path) in str(error)
  else:
    assert lines and all(line == line.strip() and line for line in lines)
    assert packing != "truncated_gzip" or len(data) > 0


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=100), st.binary(min_size=1, max_size=100))
def test_verification_accepts_exactly_the_registered_bytes(registered_bytes, other_bytes):
  registered = files.RegisteredFile("d/f.bin", len(registered_bytes),
                                    hashlib.sha256(registered_bytes).hexdigest())
  root = pathlib.Path(tempfile.mkdtemp())
  (root / "d").mkdir()
  (root / "d" / "f.bin").write_bytes(other_bytes)
  if other_bytes == registered_bytes:
    assert files.verified_path(root, registered) == root / "d" / "f.bin"
  else:
    with pytest.raises(files.DataFileError, match="f.bin"):
      files.verified_path(root, registered)
