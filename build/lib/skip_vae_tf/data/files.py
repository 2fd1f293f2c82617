"""Locating and verifying raw data files.

Every file the loaders read is registered here with its size and checksum (from
the datasets' SOURCES.md), so a missing, truncated or wrong file stops with a
`DataFileError` naming the file, where it was looked for, and what was expected.
"""

import dataclasses
import hashlib
import os
import pathlib

from skip_vae_tf import errors

DATA_DIR_ENV = "SKIP_VAE_DATA_DIR"
CACHE_DIR_ENV = "SKIP_VAE_CACHE_DIR"


DataFileError = errors.DataFileError


@dataclasses.dataclass(frozen=True)
class RegisteredFile:
  """A raw file as published: `relpath` below the data dir, its size in bytes and hash.

  `algorithm` is 'sha256' (hex digest of the bytes) or 'git-blob' (the sha1 that
  `git hash-object` prints), whichever the file's provenance records.
  """
  relpath: str
  size: int | None  # None when the provenance records no size.
  digest: str
  algorithm: str = "sha256"


def resolve_data_dir(data_dir: str) -> pathlib.Path | None:
  """Returns the raw-data folder: `data_dir`, else $SKIP_VAE_DATA_DIR, else None.

  None means no local copy: loaders then take the TFDS download route.
  """
  chosen = data_dir or os.environ.get(DATA_DIR_ENV, "")
  if not chosen:
    return None
  path = pathlib.Path(chosen).expanduser()
  if not path.is_dir():
    source = "--data_dir" if data_dir else f"${DATA_DIR_ENV}"
    raise DataFileError(f"data directory {path} (from {source}) does not exist")
  return path


def resolve_cache_dir(cache_dir: str) -> pathlib.Path:
  """Returns (creating it) the folder for prepared arrays and TFDS records."""
  chosen = cache_dir or os.environ.get(CACHE_DIR_ENV, "") or "~/.cache/skip_vae_tf"
  path = pathlib.Path(chosen).expanduser()
  path.mkdir(parents=True, exist_ok=True)
  return path


def file_digest(path: pathlib.Path, algorithm: str) -> str:
  """Hex digest of a file's bytes, streaming (`algorithm`: 'sha256' or 'git-blob')."""
  if algorithm == "sha256":
    hasher = hashlib.sha256()
  elif algorithm == "git-blob":
    hasher = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
  else:
    raise ValueError(f"unknown digest algorithm {algorithm!r}")
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      hasher.update(block)
  return hasher.hexdigest()


def verified_path(data_dir: pathlib.Path, registered: RegisteredFile) -> pathlib.Path:
  """Returns data_dir/registered.relpath after checking it is the registered file.

  Raises:
    DataFileError: the file is absent, has the wrong size or the wrong checksum.
  """
  path = data_dir / registered.relpath
  expected = f"expected {registered.algorithm} {registered.digest}"
  if registered.size is not None:
    expected = f"expected {registered.size} bytes with {registered.algorithm} {registered.digest}"
  if not path.is_file():
    raise DataFileError(f"missing data file {registered.relpath}: looked for {path}; {expected}")
  size = path.stat().st_size
  if registered.size is not None and size != registered.size:
    raise DataFileError(f"data file {path} is {size} bytes, {expected} "
                        "(truncated or a different file)")
  digest = file_digest(path, registered.algorithm)
  if digest != registered.digest:
    raise DataFileError(f"data file {path} has {registered.algorithm} {digest}, {expected} "
                        "(corrupt or a different file)")
  return path
