"""Experiment configurations: defaults, the smoke shrink, and validation.

Config files under `configs/` call `image_config()` and change what differs, so every
knob has one default, here. `validate()` turns an impossible value into a
`ConfigError` with a one-line message before any work starts.
"""

import ml_collections

IMAGE_DATASETS = ("mnist", "binarized_mnist", "omniglot")
ENCODERS = ("resnet", "mlp")
DECODERS = ("pixelcnn", "mlp")
STRATEGIES = ("auto", "default", "mirrored")


class ConfigError(ValueError):
  """A configuration value that cannot be run."""


def image_config() -> ml_collections.ConfigDict:
  """The official Skip-VAE code's image defaults (8 gated layers, latent 20)."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.name = "omniglot"
  # Where the raw files are; '' means $SKIP_VAE_DATA_DIR, else the TFDS download route.
  config.data.data_dir = ""
  # Where prepared arrays/TFDS records are cached; '' means $SKIP_VAE_CACHE_DIR,
  # else ~/.cache/skip_vae_tf.
  config.data.cache_dir = ""
  # Examples held out of the training split for validation (mnist: 10000,
  # omniglot: 2000 when 0); binarized_mnist has its own validation split.
  config.data.validation_size = 0
  # Caps on split sizes (0 = the whole split); the smoke config uses them.
  config.data.max_train_examples = 0
  config.data.max_eval_examples = 0

  config.model = ml_collections.ConfigDict()
  config.model.skip = True
  config.model.latent_dim = 20
  config.model.encoder = "resnet"
  config.model.encoder_channels = (64, 64, 64)
  config.model.encoder_hidden = (1024,)
  config.model.decoder = "pixelcnn"
  config.model.decoder_channels = 32
  config.model.decoder_kernel_sizes = (3,) * 8
  config.model.latent_feature_maps = 1
  config.model.decoder_hidden = (1024, 1024)

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 50
  config.train.eval_batch_size = 100
  # Minibatch of the He et al. (2019) MI protocol (a metric choice, not a compute one).
  config.train.mi_minibatch_size = 500
  config.train.epochs = 100
  config.train.max_steps = 0  # 0 = run all epochs.
  config.train.learning_rate = 1e-3
  config.train.grad_clip_norm = 5.0
  config.train.kl_warmup_epochs = 0.0
  config.train.kl_start_weight = 1.0
  config.train.log_every_steps = 100
  config.train.eval_every_epochs = 1
  config.train.checkpoint_every_steps = 1000
  config.train.checkpoints_to_keep = 3
  config.train.num_image_samples = 8
  config.train.max_consecutive_nonfinite = 20
  config.train.strategy = "auto"
  # XLA for the per-replica loss and gradient: 1.1-1.2x examples/s on CPU (benchmarks/).
  config.train.jit_compile = True
  return config


def apply_smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks `config` in place so that a whole run takes seconds on a laptop CPU."""
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
  config.train.epochs = 2
  config.train.max_steps = 0
  config.train.log_every_steps = 4
  config.train.checkpoint_every_steps = 5
  config.train.num_image_samples = 4
  return config


def _require(condition: bool, message: str) -> None:
  if not condition:
    raise ConfigError(message)


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first impossible value in `config`."""
  _require(config.data.name in IMAGE_DATASETS,
           f"unknown dataset {config.data.name!r}; choose one of {', '.join(IMAGE_DATASETS)}")
  _require(config.model.encoder in ENCODERS,
           f"unknown model.encoder {config.model.encoder!r}; choose one of {ENCODERS}")
  _require(config.model.decoder in DECODERS,
           f"unknown model.decoder {config.model.decoder!r}; choose one of {DECODERS}")
  _require(config.train.strategy in STRATEGIES,
           f"unknown train.strategy {config.train.strategy!r}; choose one of {STRATEGIES}")
  positive = {
      "model.latent_dim": config.model.latent_dim,
      "model.decoder_channels": config.model.decoder_channels,
      "model.latent_feature_maps": config.model.latent_feature_maps,
      "train.batch_size": config.train.batch_size,
      "train.eval_batch_size": config.train.eval_batch_size,
      "train.mi_minibatch_size": config.train.mi_minibatch_size,
      "train.epochs": config.train.epochs,
      "train.learning_rate": config.train.learning_rate,
      "train.grad_clip_norm": config.train.grad_clip_norm,
      "train.log_every_steps": config.train.log_every_steps,
      "train.eval_every_epochs": config.train.eval_every_epochs,
      "train.checkpoint_every_steps": config.train.checkpoint_every_steps,
      "train.checkpoints_to_keep": config.train.checkpoints_to_keep,
      "train.max_consecutive_nonfinite": config.train.max_consecutive_nonfinite,
  }
  for name, value in positive.items():
    _require(value > 0, f"{name} must be positive, got {value}")
  non_negative = {
      "data.max_train_examples": config.data.max_train_examples,
      "data.max_eval_examples": config.data.max_eval_examples,
      "data.validation_size": config.data.validation_size,
      "train.max_steps": config.train.max_steps,
      "train.kl_warmup_epochs": config.train.kl_warmup_epochs,
      "train.num_image_samples": config.train.num_image_samples,
  }
  for name, value in non_negative.items():
    _require(value >= 0, f"{name} must be >= 0, got {value}")
  _require(0.0 <= config.train.kl_start_weight <= 1.0,
           f"train.kl_start_weight must be in [0, 1], got {config.train.kl_start_weight}")
  for name in ("encoder_channels", "encoder_hidden", "decoder_hidden"):
    sizes = tuple(config.model[name])
    _require(sizes and all(s > 0 for s in sizes),
             f"model.{name} must be a non-empty list of positive sizes, got {sizes}")
  kernels = tuple(config.model.decoder_kernel_sizes)
  _require(kernels and all(k > 0 and k % 2 == 1 for k in kernels),
           f"model.decoder_kernel_sizes must be non-empty odd positive sizes, got {kernels}")


def resolve(config: ml_collections.ConfigDict, *, dataset: str | None = None,
            skip: bool | None = None, data_dir: str | None = None,
            strategy: str | None = None, smoke: bool = False,
            overrides: dict | None = None) -> ml_collections.ConfigDict:
  """Applies the binaries' plain flags to a loaded config, then validates it.

  Plain flags (None = keep the config's value) set data.name, model.skip, data.data_dir
  and train.strategy. `smoke` shrinks the config; the `--config.a.b=v` `overrides` are
  re-applied after the shrink so that an explicit override always wins.
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
    apply_smoke(config)
    for path, value in (overrides or {}).items():
      *parents, leaf = path.split(".")
      section = config
      for name in parents:
        section = section[name]
      section[leaf] = value
  validate(config)
  return config


def from_saved(saved: dict) -> ml_collections.ConfigDict:
  """A run's saved config (config.json) over today's defaults.

  Fields added since the run was started take their defaults; lists become tuples.
  """
  config = image_config()
  for key, value in saved.items():
    if isinstance(value, dict):
      for field, field_value in value.items():
        config[key][field] = tuple(field_value) if isinstance(field_value, list) else field_value
    else:
      config[key] = value
  return config
