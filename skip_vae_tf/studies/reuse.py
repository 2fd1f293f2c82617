"""Runs shared between studies: a run whose resolved config equals that of a finished run in
another study folder is copied from it instead of trained again (e.g. the no-remedy baseline
that two remedy studies on the same base config both hold).

The configs are compared whole, as config.json records them (resolved: precision, data
folder, vocabulary size; a field added to the project since takes its default), so a copied
run is the same experiment, seed included. The copy records its source in reused_from.json,
and the study report lists copied runs.
"""

import json
import pathlib
import re
import shutil
from typing import Iterable, Iterator

import ml_collections

from skip_vae_tf import atomic
from skip_vae_tf import config as config_lib
from skip_vae_tf import prepare
from skip_vae_tf import run_lock
from skip_vae_tf import workdir as workdir_lib
from skip_vae_tf.studies import spec as spec_lib

REUSED_FILE = "reused_from.json"


def _finished_runs(folders: Iterable[pathlib.Path]) -> Iterator[pathlib.Path]:
  """The trained run folders (metrics.json present) of the study folders `folders`."""
  for folder in folders:
    runs = pathlib.Path(folder) / spec_lib.RUNS_FOLDER
    if runs.is_dir():
      yield from (run for run in sorted(runs.iterdir())
                  if (run / workdir_lib.METRICS_FILE).is_file())


def twin(config: ml_collections.ConfigDict,
         folders: Iterable[pathlib.Path]) -> pathlib.Path | None:
  """The first finished run in the study folders `folders` whose config.json equals
  `config` once resolved (`prepare.prepare_run`, which loads the data, so only when there
  are finished runs to compare with); None if none."""
  candidates = list(_finished_runs(folders))
  if not candidates:
    return None
  wanted = json.loads(prepare.prepare_run(config.copy_and_resolve_references())
                      .config.to_json_best_effort())
  for run in candidates:
    try:
      saved = json.loads((run / workdir_lib.CONFIG_FILE).read_text())
      # Fields added since the run was recorded take their defaults.
      saved = json.loads(config_lib.from_saved(saved).to_json_best_effort())
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
      continue
    if saved == wanted:
      return run
  return None


def _retargeted(text: str, source: pathlib.Path, target: pathlib.Path) -> str:
  """`text` with every path inside run folder `source` (metrics.json's best checkpoint, an
  evaluation's workdir and checkpoint) naming the same file in `target` instead."""
  return re.sub(re.escape(str(source)) + r"(?![\w.-])", lambda _: str(target), text)


def copy_run(source: pathlib.Path, target: pathlib.Path, leave_out: tuple[str, ...] = ()) -> None:
  """Copies finished run `source` into `target` (a run folder this process has claimed),
  but for the files named in `leave_out`, metrics.json last: an interrupted copy is an
  unfinished run, resumed from its copied checkpoints (or copied again). The run's own
  records (top-level .json and .md files) name the copy's files, not the source's."""
  for path in sorted(source.rglob("*")):
    relative = path.relative_to(source)
    if path.is_dir() or relative.name in (run_lock.MARKER, workdir_lib.METRICS_FILE,
                                          *leave_out):
      continue
    (target / relative).parent.mkdir(parents=True, exist_ok=True)
    if path.parent == source and path.suffix in (".json", ".md"):
      atomic.write_text(target / relative, _retargeted(path.read_text(), source, target))
    else:
      shutil.copy2(path, target / relative)
  atomic.write_text(target / REUSED_FILE, json.dumps({"run": source.name,
                                                      "study_folder": str(source.parents[1])}))
  atomic.write_text(target / workdir_lib.METRICS_FILE, _retargeted(
      (source / workdir_lib.METRICS_FILE).read_text(), source, target))


def reused_from(run_folder: pathlib.Path) -> str | None:
  """'<study folder name>/<run name>' for a copied run, None for a run trained here."""
  try:
    record = json.loads((run_folder / REUSED_FILE).read_text())
  except (OSError, json.JSONDecodeError):
    return None
  return f"{pathlib.Path(record['study_folder']).name}/{record['run']}"
