"""A study: a grid of ordinary training runs (models x knob values x seeds) read from an
ml_collections config under configs/studies/.

A study config holds:
  base        the training config file of every run, `path[:argument]` from the repository
              root (e.g. 'configs/ptb.py', 'configs/savae.py:omniglot');
  smoke       shrink the base config (config.apply_smoke) before the overrides;
  overrides   a nested ConfigDict of fields set in every run (overrides.train.epochs = 4);
  models      names from MODELS ('vae', 'skip_vae', 'sa_vae', 'skip_sa_vae');
  seeds       the seeds of every (model, knob value);
  knob        '' or one dotted config field swept over knob_values (knob_labels name the
              values in run names and tables, default their str());
  evaluation  iw_samples (K of the test IW-NLL), max_examples (0 = the whole test split),
              num_samples (test images or sentences shown with decodes and prior samples).
"""

import dataclasses
import pathlib

import ml_collections

from skip_vae_tf import config as config_lib

# What distinguishes the paper's four models (every other field is the base config's).
MODELS = {
    "vae": {"model.skip": False, "model.inference": "amortized"},
    "skip_vae": {"model.skip": True, "model.inference": "amortized"},
    "sa_vae": {"model.skip": False, "model.inference": "semi_amortized"},
    "skip_sa_vae": {"model.skip": True, "model.inference": "semi_amortized"},
}
# (with skips, without): the comparisons a report spells out.
SKIP_PAIRS = (("skip_vae", "vae"), ("skip_sa_vae", "sa_vae"))
RUNS_FOLDER = "runs"


def study_config(name: str, base: str, models: tuple[str, ...], seeds: tuple[int, ...],
                 overrides: dict | None = None, knob: str = "", knob_values: tuple = (),
                 knob_labels: tuple[str, ...] = (), iw_samples: int = 500,
                 max_examples: int = 0, num_samples: int = 8,
                 smoke: bool = False) -> ml_collections.ConfigDict:
  """A study config (the fields of this module's docstring); `overrides` is nested
  ({'train': {'epochs': 3}})."""
  config = ml_collections.ConfigDict()
  config.name, config.base, config.smoke = name, base, smoke
  config.overrides = ml_collections.ConfigDict(overrides or {})
  config.models, config.seeds = tuple(models), tuple(seeds)
  config.knob, config.knob_values, config.knob_labels = knob, tuple(knob_values), tuple(
      knob_labels)
  config.evaluation = ml_collections.ConfigDict(
      {"iw_samples": iw_samples, "max_examples": max_examples, "num_samples": num_samples})
  return config


def flatten(section: ml_collections.ConfigDict, prefix: str = "") -> dict:
  """{'train.epochs': 4, ...} from a nested ConfigDict."""
  flat = {}
  for key, value in section.items():
    if isinstance(value, ml_collections.ConfigDict):
      flat.update(flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run of a study: its workdir is STUDY_FOLDER/runs/<name>."""
  model: str
  seed: int
  knob_label: str | None  # None when the study sweeps no knob.
  overrides: dict

  @property
  def name(self) -> str:
    knob = f"_{self.knob_label}" if self.knob_label is not None else ""
    return f"{self.model}{knob}_seed{self.seed}"

  @property
  def group(self) -> str:
    """The runs that differ only in their seed share a group: 'skip_vae' or
    'skip_vae_<knob label>'."""
    return self.name.rsplit("_seed", 1)[0]


class Study:
  """A study config, checked, and its runs."""

  def __init__(self, source: str, config: ml_collections.ConfigDict,
               repo_root: pathlib.Path):
    self.source, self.config, self.repo_root = source, config, repo_root
    self.name = config.name
    unknown = [m for m in config.models if m not in MODELS]
    if unknown or not config.models:
      raise config_lib.ConfigError(f"study {self.name}: models must be some of "
                                   f"{tuple(MODELS)}, got {tuple(config.models)}")
    if not config.seeds or len(set(config.seeds)) != len(config.seeds):
      raise config_lib.ConfigError(f"study {self.name}: seeds must be distinct, got "
                                   f"{tuple(config.seeds)}")
    self.knob = config.knob or None
    self.knob_values = tuple(config.knob_values) if self.knob else (None,)
    labels = tuple(config.get("knob_labels", ())) or tuple(str(v) for v in self.knob_values)
    if self.knob and (len(labels) != len(self.knob_values) or len(set(labels)) != len(labels)
                      or not self.knob_values):
      raise config_lib.ConfigError(f"study {self.name}: knob {self.knob} needs values and "
                                   f"as many distinct labels, got {self.knob_values} and "
                                   f"{labels}")
    self.knob_labels = labels if self.knob else (None,)
    self.evaluation = config.evaluation

  def runs(self) -> list[Run]:
    """Every run, seed by seed (a partial study holds every model of its first seeds)."""
    runs = []
    for seed in self.config.seeds:
      for value, label in zip(self.knob_values, self.knob_labels):
        for model in self.config.models:
          overrides = {**flatten(self.config.overrides), **MODELS[model], "seed": seed}
          if self.knob:
            overrides[self.knob] = value
          runs.append(Run(model, seed, label, overrides))
    return runs

  def run_config(self, run: Run) -> ml_collections.ConfigDict:
    """The training config of `run`: the base file, shrunk if `smoke`, then the overrides."""
    base = config_lib.load_file(self.config.base, self.repo_root)
    return config_lib.resolve(base, smoke=self.config.smoke, overrides=run.overrides)

  def pairs(self) -> list[tuple[str, str]]:
    """The (skip, no skip) model pairs that are both in the study."""
    return [pair for pair in SKIP_PAIRS if set(pair) <= set(self.config.models)]


def load(study: str, repo_root: pathlib.Path) -> Study:
  """The study `study`: a name under configs/studies/ or a path to a study config file."""
  path = pathlib.Path(study)
  if path.suffix != ".py":
    path = repo_root / "configs" / "studies" / f"{study}.py"
  if not path.is_file() and not (repo_root / path).is_file():
    available = sorted(p.stem for p in (repo_root / "configs" / "studies").glob("*.py"))
    raise config_lib.ConfigError(f"no study {study!r}: choose one of {', '.join(available)} "
                                 "or give a study config file")
  return Study(study, config_lib.load_file(path, repo_root), repo_root)


def shard(runs: list[Run], index: int, count: int) -> list[Run]:
  """The runs of shard `index` of `count` (every count-th run, from the index-th)."""
  return runs[index::count]


def parse_shard(text: str) -> tuple[int, int]:
  """'i/n' -> (i, n) with 0 <= i < n; ConfigError otherwise."""
  try:
    index, count = (int(part) for part in text.split("/"))
  except ValueError:
    index = count = -1
  if not 0 <= index < count:
    raise config_lib.ConfigError(f"--shard must be i/n with 0 <= i < n, got {text!r}")
  return index, count
