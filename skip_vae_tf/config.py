"""Experiment configurations: defaults, the smoke shrink, and validation.

Config files under `configs/` call `image_config()` or `text_config()` and change what
differs, so every knob has one default, here. `validate()` turns an impossible value into a
`ConfigError` with a one-line message before any work starts.
"""

import importlib.util
import math
import pathlib

import ml_collections

from skip_vae_tf import errors
from skip_vae_tf import dataset_registry
from skip_vae_tf import precision

# The datasets registered when the flags are defined (dataset_registry holds them all).
DATASETS = dataset_registry.names()
# Image networks (model.encoder, model.decoder) are named in models/image_networks.py.
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("plateau", "official")
KL_SCHEDULES = ("linear", "cyclical")
FREE_BITS_MODES = ("dimension", "total")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


class ConfigError(errors.SkipVaeError, ValueError):
  """A configuration value that cannot be run."""


def _train_defaults() -> ml_collections.ConfigDict:
  """The training section of every config (the image defaults)."""
  train = ml_collections.ConfigDict()
  train.batch_size = 50
  train.eval_batch_size = 100
  # Minibatch of the He et al. (2019) MI protocol (a metric choice, not a compute one).
  train.mi_minibatch_size = 500
  train.epochs = 100
  train.max_steps = 0  # 0 = run all epochs.
  train.optimizer = "adam"
  train.learning_rate = 1e-3
  # PyTorch's Adam epsilon, as the official code trains with (Keras' default is 1e-7).
  train.adam_epsilon = 1e-8
  # 'plateau': when the validation negative ELBO does not improve on its best, multiply the
  # learning rate by lr_decay_factor (1.0 = constant), down to min_learning_rate.
  # 'official' (the official text script): once validation fails to improve at an epoch
  # >= lr_decay_start_epoch, multiply by lr_decay_factor after every validation, and stop
  # training when the rate falls below lr_stop_below (objectives.learning_rate_after_validation).
  train.lr_schedule = "plateau"
  train.lr_decay_factor = 1.0
  train.min_learning_rate = 0.0
  train.lr_decay_start_epoch = 15
  train.lr_stop_below = 0.0
  train.grad_clip_norm = 5.0
  train.kl_warmup_epochs = 0.0
  train.kl_start_weight = 1.0
  # Collapse remedies (objectives.py), each usable with or without skips:
  # 'linear': the warm-up above; 'cyclical' (Fu et al. 2019): kl_cycles cycles over the
  # run, the weight rising from 0 to 1 over the first kl_cycle_ratio of each, then held.
  train.kl_schedule = "linear"
  train.kl_cycles = 4
  train.kl_cycle_ratio = 0.5
  # The KL weight once warm-up is over (beta-VAE, Higgins et al. 2017); 1 = the ELBO.
  train.beta = 1.0
  # Free bits (Kingma et al. 2016), nats: the KL term is max(free_bits, minibatch-mean KL)
  # per latent dimension ('dimension') or for the whole code ('total'); 0 = off.
  train.free_bits = 0.0
  train.free_bits_mode = "dimension"
  # Aggressive inference-network training (He et al. 2019, skip_vae_tf/aggressive.py):
  # encoder-only updates to convergence (at most aggressive_max_steps, checked every
  # aggressive_check_every) before each decoder-only update, until validation MI falls.
  train.aggressive = False
  train.aggressive_max_steps = 100
  train.aggressive_check_every = 15
  train.log_every_steps = 100
  train.eval_every_epochs = 1
  # A cheap look inside an epoch: every check_every_steps (0 = never) the KL, MI and active
  # units of the first check_examples validation examples (TensorBoard run
  # 'validation_subset'), and images or sentences every check_images_every_steps (0 = only
  # at validation). Evaluation draws advance the model's noise stream, so runs with other
  # check settings see other (equally distributed) noise.
  train.check_every_steps = 200
  train.check_examples = 500
  train.check_images_every_steps = 1000
  train.checkpoint_every_steps = 1000
  # Also a checkpoint once this many minutes of wall time have passed since the last one
  # (0 = off), so that a run killed without warning (SIGKILL, a lost machine) loses at most
  # this much training. Single-worker runs only: workers would decide at different steps.
  train.checkpoint_every_minutes = 10.0
  train.checkpoints_to_keep = 3
  # Validation examples shown in TensorBoard with their reconstructions, and prior samples.
  train.num_logged_samples = 8
  train.max_consecutive_nonfinite = 20
  train.strategy = "auto"
  # 'float32' or 'mixed_bfloat16': the networks' matrix products and convolutions in
  # bfloat16, variables, likelihood, KL and every metric in float32 (skip_vae_tf/precision.py).
  # 'auto': mixed_bfloat16 where the GPU or CPU computes in bfloat16 natively, else float32;
  # resolved (and so recorded in config.json) when training starts. Image configs set float32.
  train.precision = "auto"
  # XLA for the per-replica loss and gradient and training's validation passes (image
  # configs turn it off; bin/evaluate.py has its own --jit_compile).
  train.jit_compile = True
  # tf.config.experimental.enable_op_determinism(): with the same seed, a run killed and
  # resumed ends with the weights of an uninterrupted one (tests/test_fault_tolerance.py).
  # Off by default: some GPU kernels are slower or missing when deterministic.
  train.deterministic = False
  return train


INFERENCES = ("amortized", "semi_amortized")
SVI_SECOND_ORDERS = ("auto", "exact", "finite_difference")


def _inference_defaults(model: ml_collections.ConfigDict) -> None:
  """Amortized inference, and the SA-VAE refinement of the official code when
  model.inference = 'semi_amortized' (models/refinement.py)."""
  model.inference = "amortized"
  model.svi_steps = 20
  model.svi_learning_rates = (1.0, 1.0)  # For the mean and the log-variance.
  model.svi_momentum = 0.5
  model.svi_max_grad_norm = 5.0
  model.train_end_to_end = True
  # How training differentiates through the steps (models/refinement.py): 'exact' (reverse
  # over reverse), 'finite_difference' (the official code's method; float32 networks only,
  # fewer decoder passes) or 'auto': finite_difference in float32, exact in bfloat16.
  model.svi_second_order = "auto"


def _eval_defaults() -> ml_collections.ConfigDict:
  """The evaluators (skip_vae_tf/eval_registry.py): training validates with `posterior`;
  bin/evaluate.py runs all three."""
  evals = ml_collections.ConfigDict()
  evals.posterior = {"type": "posterior", "during_training": True}
  evals.linear_probe = {"type": "linear_probe", "during_training": False}
  # K importance samples; `chunk` samples per decoder call (0 = about 500 images or 64
  # sentences at once).
  evals.iw_nll = {"type": "importance_weighted", "during_training": False,
                  "num_samples": 500, "chunk": 0}
  return evals


def _seed_and_data(name: str) -> ml_collections.ConfigDict:
  """A config holding the seed, the data section every dataset has and the evaluators."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.evals = _eval_defaults()
  config.data = ml_collections.ConfigDict()
  config.data.name = name
  # Where the raw files are; '' means $SKIP_VAE_DATA_DIR, else (images) the TFDS download route.
  config.data.data_dir = ""
  # Where prepared arrays/TFDS records are cached; '' means $SKIP_VAE_CACHE_DIR,
  # else ~/.cache/skip_vae_tf.
  config.data.cache_dir = ""
  # Examples held out for validation when 0 means the dataset's default: mnist 10000,
  # omniglot 2000, yahoo_small 1000 documents of yahoo.valid; others have their own split.
  config.data.validation_size = 0
  # Caps on split sizes (0 = the whole split); the smoke config uses them.
  config.data.max_train_examples = 0
  config.data.max_eval_examples = 0
  return config


def image_config() -> ml_collections.ConfigDict:
  """The official Skip-VAE code's image networks and defaults (models/official.py: 3
  residual blocks of 64, 8 gated layers of 32, kernel 3, latent 20, 1 latent map)."""
  config = _seed_and_data("omniglot")

  config.model = ml_collections.ConfigDict()
  config.model.skip = True
  config.model.latent_dim = 20
  config.model.encoder = "resnet_official"
  config.model.encoder_channels = (64, 64, 64)
  config.model.encoder_hidden = (1024,)
  config.model.decoder = "pixelcnn_official"
  config.model.decoder_channels = 32
  config.model.decoder_kernel_sizes = (3,) * 8
  config.model.latent_feature_maps = 1
  config.model.decoder_hidden = (1024, 1024)
  _inference_defaults(config.model)

  config.train = _train_defaults()
  # Images train in float32 unless asked: bfloat16 changes the Skip-VAE's MI in the
  # precision_image study (docs/results.md). Text models take 'auto'.
  config.train.precision = "float32"
  # Float32 image steps run no slower without XLA on a CPU, and lighter (docs/benchmarks.md);
  # on a GPU, try --config.train.jit_compile=true.
  config.train.jit_compile = False
  return config


def text_config() -> ml_collections.ConfigDict:
  """The reference's Yahoo LSTM VAE (Kim et al. 2018, as used by the Skip-VAE paper)."""
  config = _seed_and_data("yahoo")
  # Sentences are bucketed (and padded) by length in steps of this many tokens.
  config.data.bucket_width = 10
  # PTB: cap on the vocabulary built from train (0 = every word; Yahoo uses yahoo.dict).
  config.data.max_vocabulary_size = 0

  config.model = ml_collections.ConfigDict()
  config.model.skip = True
  config.model.latent_dim = 32
  config.model.encoder = "lstm"
  config.model.decoder = "lstm"
  config.model.vocab_size = 0  # Set from the data's vocabulary when training starts.
  config.model.embedding_dim = 512
  config.model.encoder_hidden = (1024,)
  config.model.decoder_hidden = (1024,)
  config.model.decoder_dropout = 0.5
  config.model.init_scale = 0.1  # Parameters start uniform in [-0.1, 0.1].
  config.model.max_decode_length = 100
  # Time steps of logits the likelihood holds at a time, recomputed for the gradient
  # (models/text.py): peak memory bounded whatever the length, at some training speed;
  # 0 = the whole sentence at once (semi-amortized models always use 0: they need the
  # likelihood's second derivative).
  config.model.softmax_chunk = 25
  _inference_defaults(config.model)

  config.train = _train_defaults()
  config.train.batch_size = 32
  config.train.eval_batch_size = 50
  config.train.epochs = 30
  config.train.optimizer = "sgd"
  config.train.learning_rate = 1.0
  config.train.lr_schedule = "official"
  config.train.lr_decay_factor = 0.5
  config.train.lr_stop_below = 0.03
  config.train.kl_warmup_epochs = 10.0
  config.train.kl_start_weight = 0.1
  config.train.num_logged_samples = 4
  return config


def default_config(dataset: str) -> ml_collections.ConfigDict:
  """The defaults for `dataset`: `text_config()` for text corpora, else `image_config()`."""
  config = (text_config() if dataset in dataset_registry.names("text")
            else image_config())
  config.data.name = dataset
  return config


def model_name(config: ml_collections.ConfigDict) -> str:
  """'vae', 'skip_vae', 'sa_vae' or 'skip_sa_vae': the paper's name of the config's model."""
  return (("skip_" if config.model.skip else "")
          + ("sa_vae" if config.model.inference == "semi_amortized" else "vae"))


def modality(config: ml_collections.ConfigDict) -> str:
  """'text' for the text corpora, else 'image' (`skip_vae_tf.tasks` keys on it)."""
  return "text" if config.data.name in dataset_registry.names("text") else "image"


def apply_smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks `config` in place so that a whole run takes seconds on a laptop CPU."""
  _SMOKE_SHRINKS[modality(config)](config)
  train = config.train
  train.epochs = 2
  train.max_steps = 0
  train.log_every_steps = 4
  train.checkpoint_every_steps = 5
  train.check_every_steps = 0  # Seconds matter here; tests/test_aggressive.py checks it.
  train.check_images_every_steps = 0
  train.num_logged_samples = 4
  train.max_consecutive_nonfinite = 5  # Within the run's 16 steps, so that it can fire.
  # XLA compiles every input shape for seconds, most of a smoke run (a yahoo_small smoke run:
  # 37 s with, 20 s without); tests/test_training.py runs the compiled path.
  train.jit_compile = False
  return config


def _shrink_text(config: ml_collections.ConfigDict) -> None:
  config.data.max_train_examples = 256
  config.data.max_eval_examples = 128
  config.data.bucket_width = 40
  config.model.latent_dim = 4
  config.model.embedding_dim = 16
  config.model.encoder_hidden = (32,)
  config.model.decoder_hidden = (32,)
  config.model.max_decode_length = 20
  config.train.eval_batch_size = 64
  config.train.kl_warmup_epochs = 1.0


def _shrink_image(config: ml_collections.ConfigDict) -> None:
  config.data.max_train_examples = 256
  config.data.max_eval_examples = 128
  config.model.latent_dim = 4
  config.model.encoder_channels = (8, 8, 8)
  config.model.encoder_hidden = (32,)
  config.model.decoder_channels = 8
  config.model.decoder_kernel_sizes = tuple(config.model.decoder_kernel_sizes[:2])
  config.model.decoder_hidden = (32, 32)
  config.train.batch_size = 32
  config.train.eval_batch_size = 64


_SMOKE_SHRINKS = {"image": _shrink_image, "text": _shrink_text}


def _require(condition: bool, message: str) -> None:
  if not condition:
    raise ConfigError(message)


def _validate_image_model(model: ml_collections.ConfigDict) -> None:
  # pylint: disable=g-import-not-at-top
  from skip_vae_tf.models import image_networks  # The networks import this module.
  for kind, table in (("encoder", image_networks.ENCODERS),
                      ("decoder", image_networks.DECODERS)):
    _require(model[kind] in table,
             f"unknown model.{kind} {model[kind]!r}; choose one of {tuple(table)}")
  for name in ("decoder_channels", "latent_feature_maps"):
    _require(model[name] > 0, f"model.{name} must be positive, got {model[name]}")
  for name in ("encoder_channels", "encoder_hidden", "decoder_hidden"):
    _require_sizes(model, name)
  kernels = tuple(model.decoder_kernel_sizes)
  _require(kernels and all(k > 0 and k % 2 == 1 for k in kernels),
           f"model.decoder_kernel_sizes must be non-empty odd positive sizes, got {kernels}")


def _validate_text_model(config: ml_collections.ConfigDict) -> None:
  model = config.model
  _require(model.decoder == "lstm", f"model.decoder must be 'lstm' with model.encoder='lstm', "
           f"got {model.decoder!r}")
  for name in ("embedding_dim", "max_decode_length"):
    _require(model[name] > 0, f"model.{name} must be positive, got {model[name]}")
  _require(model.vocab_size >= 0, f"model.vocab_size must be >= 0, got {model.vocab_size}")
  _require(0.0 <= model.decoder_dropout < 1.0,
           f"model.decoder_dropout must be in [0, 1), got {model.decoder_dropout}")
  _require(model.init_scale >= 0, f"model.init_scale must be >= 0, got {model.init_scale}")
  _require(model.softmax_chunk >= 0,
           f"model.softmax_chunk must be >= 0 (0 = no chunks), got {model.softmax_chunk}")
  for name in ("encoder_hidden", "decoder_hidden"):
    _require_sizes(model, name)
  _require(config.data.bucket_width > 0,
           f"data.bucket_width must be positive, got {config.data.bucket_width}")


def _require_sizes(model: ml_collections.ConfigDict, name: str) -> None:
  sizes = tuple(model[name])
  _require(sizes and all(s > 0 for s in sizes),
           f"model.{name} must be a non-empty list of positive sizes, got {sizes}")


def _validate_dataset(config: ml_collections.ConfigDict) -> None:
  """The dataset exists and the config's models are for its modality."""
  _require(config.data.name in dataset_registry.DATASETS,
           f"unknown dataset {config.data.name!r}; choose one of "
           f"{', '.join(dataset_registry.names())}")
  text_data = modality(config) == "text"
  if text_data != (config.model.encoder == "lstm"):
    kind, other = ("text", "image") if text_data else ("image", "text")
    raise ConfigError(
        f"dataset {config.data.name!r} is a {kind} dataset but the config is for {other} "
        f"models (model.encoder={config.model.encoder!r}); use "
        f"--config=configs/{config.data.name}.py")


def _validate_inference(model: ml_collections.ConfigDict) -> None:
  _require(model.inference in INFERENCES,
           f"unknown model.inference {model.inference!r}; choose one of {INFERENCES}")
  _require(model.svi_steps >= 0, f"model.svi_steps must be >= 0, got {model.svi_steps}")
  rates = tuple(model.svi_learning_rates)
  _require(len(rates) == 2 and all(r > 0 for r in rates),
           f"model.svi_learning_rates must be two positive rates (mean, log-variance), "
           f"got {rates}")
  _require(0.0 <= model.svi_momentum < 1.0,
           f"model.svi_momentum must be in [0, 1), got {model.svi_momentum}")
  _require(model.svi_max_grad_norm >= 0,
           f"model.svi_max_grad_norm must be >= 0, got {model.svi_max_grad_norm}")
  _require(model.svi_second_order in SVI_SECOND_ORDERS,
           f"unknown model.svi_second_order {model.svi_second_order!r}; choose one of "
           f"{SVI_SECOND_ORDERS}")


def resolve_svi_second_order(config: ml_collections.ConfigDict) -> None:
  """Once train.precision is resolved: model.svi_second_order 'auto' becomes
  finite_difference in float32 and exact in bfloat16, and finite differences asked of
  bfloat16 networks are refused (its rounding swamps the differences)."""
  model, bfloat16 = config.model, config.train.precision == "mixed_bfloat16"
  if model.svi_second_order == "auto":
    model.svi_second_order = "exact" if bfloat16 else "finite_difference"
  _require(not (model.inference == "semi_amortized" and model.train_end_to_end
                and model.svi_second_order == "finite_difference" and bfloat16),
           "model.svi_second_order='finite_difference' needs float32 networks, but "
           "train.precision resolves to mixed_bfloat16 (its rounding swamps the "
           "differences); set train.precision=float32 or model.svi_second_order=exact")


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first impossible value in `config`."""
  _validate_dataset(config)
  _validate_inference(config.model)
  text_data = modality(config) == "text"
  if text_data:
    _validate_text_model(config)
  else:
    _validate_image_model(config.model)
  train = config.train
  _require(train.strategy in STRATEGIES,
           f"unknown train.strategy {train.strategy!r}; choose one of {STRATEGIES}")
  _require(train.optimizer in OPTIMIZERS,
           f"unknown train.optimizer {train.optimizer!r}; choose one of {OPTIMIZERS}")
  _require(train.precision in precision.CHOICES,
           f"unknown train.precision {train.precision!r}; choose one of {precision.CHOICES}")
  _require(train.lr_schedule in LR_SCHEDULES,
           f"unknown train.lr_schedule {train.lr_schedule!r}; choose one of {LR_SCHEDULES}")
  _validate_remedies(train)
  _require(isinstance(config.seed, int) and config.seed >= 0,
           f"seed must be an integer >= 0, got {config.seed}")
  positive = {"model.latent_dim": config.model.latent_dim}
  positive.update((f"train.{name}", train[name]) for name in (
      "batch_size", "eval_batch_size", "mi_minibatch_size", "epochs", "learning_rate",
      "grad_clip_norm", "log_every_steps", "eval_every_epochs", "checkpoint_every_steps",
      "checkpoints_to_keep", "max_consecutive_nonfinite", "check_examples"))
  for name, value in positive.items():
    _require(math.isfinite(value) and value > 0, f"{name} must be positive and finite, got {value}")
  non_negative = {f"data.{name}": config.data[name] for name in (
      "max_train_examples", "max_eval_examples", "validation_size")}
  non_negative.update((f"train.{name}", train[name]) for name in (
      "max_steps", "kl_warmup_epochs", "num_logged_samples", "min_learning_rate",
      "checkpoint_every_minutes",
      "check_every_steps", "check_images_every_steps",
      "lr_decay_start_epoch", "lr_stop_below"))
  for name, value in non_negative.items():
    _require(math.isfinite(value) and value >= 0, f"{name} must be >= 0 and finite, got {value}")
  _require(0.0 <= train.kl_start_weight <= 1.0,
           f"train.kl_start_weight must be in [0, 1], got {train.kl_start_weight}")
  _require(0.0 < train.lr_decay_factor <= 1.0,
           f"train.lr_decay_factor must be in (0, 1], got {train.lr_decay_factor}")


def _validate_remedies(train: ml_collections.ConfigDict) -> None:
  _require(train.kl_schedule in KL_SCHEDULES,
           f"unknown train.kl_schedule {train.kl_schedule!r}; choose one of {KL_SCHEDULES}")
  _require(train.free_bits_mode in FREE_BITS_MODES,
           f"unknown train.free_bits_mode {train.free_bits_mode!r}; choose one of "
           f"{FREE_BITS_MODES}")
  _require(isinstance(train.kl_cycles, int) and train.kl_cycles >= 1,
           f"train.kl_cycles must be an integer >= 1, got {train.kl_cycles}")
  _require(0.0 < train.kl_cycle_ratio <= 1.0,
           f"train.kl_cycle_ratio must be in (0, 1], got {train.kl_cycle_ratio}")
  _require(math.isfinite(train.beta) and train.beta > 0,
           f"train.beta must be positive and finite, got {train.beta}")
  _require(math.isfinite(train.free_bits) and train.free_bits >= 0,
           f"train.free_bits must be >= 0 and finite, got {train.free_bits}")
  for name in ("aggressive_max_steps", "aggressive_check_every"):
    _require(isinstance(train[name], int) and train[name] >= 1,
             f"train.{name} must be an integer >= 1, got {train[name]}")


def resolve(config: ml_collections.ConfigDict, *, dataset: str | None = None,
            skip: bool | None = None, data_dir: str | None = None,
            strategy: str | None = None, smoke: bool = False,
            overrides: dict | None = None) -> ml_collections.ConfigDict:
  """Applies the binaries' plain flags to a loaded config, then validates it.

  Plain flags (None = keep the config's value) set data.name, model.skip, data.data_dir
  and train.strategy. `smoke` shrinks the config; the `--config.a.b=v` `overrides`
  ({'a.b': v}) are applied after the shrink so that an explicit override always wins.
  """
  if dataset is not None:
    config.data.name = dataset
  if skip is not None:
    config.model.skip = skip
  if data_dir is not None:
    config.data.data_dir = data_dir
  if strategy is not None:
    config.train.strategy = strategy
  if smoke:
    _validate_dataset(config)  # The shrink is the dataset modality's.
    apply_smoke(config)
  apply_overrides(config, overrides or {})
  validate(config)
  return config


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict) -> None:
  """Sets each dotted field of `overrides` ({'train.beta': 0.5, 'seed': 1}) in `config`;
  a field that does not exist is a ConfigError naming it."""
  for path, value in overrides.items():
    *parents, leaf = path.split(".")
    section = config
    try:
      for name in parents:
        section = section[name]
      if leaf not in section:
        raise KeyError(leaf)
      section[leaf] = value
    except (KeyError, TypeError) as error:
      raise ConfigError(f"cannot set {path}={value!r}: the config has no field {path} "
                        f"({type(error).__name__}: {error})") from error


def from_saved(saved: dict) -> ml_collections.ConfigDict:
  """A run's saved config (config.json) over today's defaults.

  Fields added since the run was started take their defaults, except train.precision:
  runs from before it existed trained in float32. Lists become tuples.
  """
  config = default_config(saved["data"]["name"])
  config.train.precision = "float32"
  for key, value in saved.items():
    if isinstance(value, dict):
      for field, field_value in value.items():
        config[key][field] = tuple(field_value) if isinstance(field_value, list) else field_value
    else:
      config[key] = value
  return config


def load_file(spec: str | pathlib.Path, root: pathlib.Path = pathlib.Path(".")
              ) -> ml_collections.ConfigDict:
  """`get_config(argument)` of the config file `path[:argument]` (as --config reads it;
  a relative path is taken from `root`). Any failure to load it is one ConfigError."""
  path, _, argument = str(spec).partition(":")
  path = root / path
  try:
    module_spec = importlib.util.spec_from_file_location(f"_config_{path.stem}", path)
    if module_spec is None or not path.is_file():
      raise FileNotFoundError(f"no such file {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(argument) if argument else module.get_config()
  except Exception as error:  # pylint: disable=broad-except  # Any error in user code.
    detail = " ".join(str(error).split())
    raise ConfigError(f"cannot load config file {spec}: {type(error).__name__}: {detail}"
                      ) from error
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"config file {spec}: get_config() returned {type(config).__name__}, "
                      "not an ml_collections.ConfigDict")
  return config
