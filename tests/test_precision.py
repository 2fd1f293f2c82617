"""Mixed bfloat16: the networks compute in bfloat16, every distribution and metric stays
float32, the same weights score the same within bfloat16 resolution, sampling and
training work, and a float32 checkpoint restores into a mixed model."""

import functools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from skip_vae_tf import config as config_lib
from skip_vae_tf import precision
from skip_vae_tf import tasks
from skip_vae_tf import vocabulary as vocab
from skip_vae_tf.models import layers
from skip_vae_tf.models import official

VOCAB = 23


def _image_config(decoder="pixelcnn_official"):
  config = config_lib.apply_smoke(config_lib.image_config())
  config.model.decoder = decoder
  config.model.encoder = "resnet_official" if decoder == "pixelcnn_official" else "mlp"
  return config


def _text_config():
  config = config_lib.apply_smoke(config_lib.text_config())
  config.model.vocab_size = VOCAB
  return config


def _pair(task, config):
  """The same weights as a float32 and a mixed bfloat16 model."""
  models = {}
  for name in precision.PRECISIONS:
    config.train.precision = name
    models[name] = tasks.build_model(task, config)
  models["mixed_bfloat16"].set_weights(models["float32"].get_weights())
  return models["float32"], models["mixed_bfloat16"]


def _images(count=6):
  return (np.random.default_rng(0).random((count, 28, 28, 1)) < 0.3).astype(np.float32)


def _sentences():
  rng = np.random.default_rng(1)
  rows = np.zeros((5, 9), np.int32)
  for i, length in enumerate([3, 7, 5, 4, 6]):
    rows[i, 0], rows[i, length + 1] = vocab.BOS_ID, vocab.EOS_ID
    rows[i, 1:length + 1] = rng.integers(len(vocab.SPECIALS), VOCAB, size=length)
  return tf.constant(rows)


def _terms(model, x, training=False):
  model.sampling_seed.state.assign([5, 0])
  return model(x, training=training)


CASES = [("image", "pixelcnn_official"), ("image", "mlp"), ("text", None)]


@functools.cache
def _case(modality, decoder):
  """((float32 model, mixed model), inputs), built once per module."""
  if modality == "text":
    return _pair(tasks.TextTask(), _text_config()), _sentences()
  return _pair(tasks.ImageTask(), _image_config(decoder)), tf.constant(_images())


@pytest.mark.parametrize("modality,decoder", CASES)
def test_mixed_networks_compute_in_bfloat16_with_float32_weights_and_outputs(modality,
                                                                             decoder):
  (_, mixed), x = _case(modality, decoder)
  layers = [layer for layer in mixed._flatten_layers() if layer.weights and
            isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
  # The official image encoder computes q(z|x)'s mean and log-variance in float32.
  heads = ([mixed.encoder.mean, mixed.encoder.log_variance]
           if isinstance(mixed.encoder, official.OfficialResNetEncoder) else [])
  assert all(head.compute_dtype == "float32" for head in heads)
  assert layers and all(layer.compute_dtype == "bfloat16" for layer in layers
                        if not any(layer is head for head in heads))
  assert all(v.dtype == "float32" for v in mixed.variables if "int" not in v.dtype)
  terms = _terms(mixed, x)
  for name in ("negative_elbo", "reconstruction_nll", "kl", "posterior_mean",
               "posterior_log_variance", "z"):
    assert terms[name].dtype == tf.float32, name


@pytest.mark.parametrize("modality,decoder", CASES)
def test_same_weights_score_alike_in_both_precisions(modality, decoder):
  """The ELBO terms of the same weights and draws differ by bfloat16 rounding only: not
  at all would mean the mixed model never ran in bfloat16; more than 1% would be a bug."""
  (full, mixed), x = _case(modality, decoder)
  a, b = _terms(full, x), _terms(mixed, x)
  for name in ("reconstruction_nll", "kl"):
    np.testing.assert_allclose(b[name], a[name], rtol=1e-2, atol=1e-2, err_msg=name)
  assert not np.array_equal(a["reconstruction_nll"], b["reconstruction_nll"])


@pytest.mark.parametrize("modality,decoder", CASES)
def test_mixed_gradients_are_float32_and_point_the_same_way(modality, decoder):
  (full, mixed), x = _case(modality, decoder)
  gradients = []
  for model in (full, mixed):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(_terms(model, x, training=True)["negative_elbo"])
    gradients.append([tf.convert_to_tensor(g) for g in
                      tape.gradient(loss, model.trainable_variables)])
  flat = [np.concatenate([g.numpy().ravel() for g in grads]) for grads in gradients]
  assert all(g.dtype == tf.float32 for g in gradients[1])
  cosine = flat[0] @ flat[1] / (np.linalg.norm(flat[0]) * np.linalg.norm(flat[1]))
  assert cosine > 0.999


def test_mixed_image_decoder_decodes_pixel_by_pixel():
  (_, mixed), _ = _case("image", "pixelcnn_official")
  z = tf.random.stateless_normal([2, mixed.latent_dim], [1, 2])
  # The loop `sample` runs too, compiled as training and serving run it (eagerly, every
  # op of its 784 steps is dispatched from Python: 11 s against 3.7 s here).
  probabilities, greedy = tf.function(mixed.decoder.greedy)(z)
  assert greedy.dtype == probabilities.dtype == tf.float32
  np.testing.assert_array_equal(greedy.numpy(), (probabilities.numpy() > 0.5))


def test_mixed_text_decoder_generates_the_float32_models_greedy_sentences():
  (full, mixed), _ = _case("text", None)
  z = tf.random.stateless_normal([4, full.latent_dim], [1, 2])
  a, b = full.decoder.greedy(z), mixed.decoder.greedy(z)
  assert b.dtype == tf.int32 and b.shape == a.shape
  # bfloat16 rounding may flip a near-tie somewhere; the first tokens agree.
  np.testing.assert_array_equal(a[:, 0], b[:, 0])


def test_float32_checkpoint_restores_into_a_mixed_model(tmp_path):
  config = _image_config()
  task = tasks.ImageTask()
  full = tasks.build_model(task, config)
  path = tf.train.Checkpoint(model=full).write(str(tmp_path / "ckpt"))
  config.train.precision = "mixed_bfloat16"
  mixed = tasks.build_model(task, config)
  tf.train.Checkpoint(model=mixed).read(path).assert_existing_objects_matched()
  for a, b in zip(full.variables, mixed.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_policy_scope_restores_the_global_policy_and_names_bad_values():
  before = keras.config.dtype_policy().name
  with precision.policy_scope("mixed_bfloat16"):
    assert keras.layers.Dense(2).compute_dtype == "bfloat16"
  assert keras.config.dtype_policy().name == before
  with pytest.raises(ValueError, match="unknown precision 'float16'"):
    with precision.policy_scope("float16"):
      pass


_CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {}\nbogomips\t: 4800\n"


@pytest.mark.parametrize("extra_flag, native", [("avx512_bf16", True), ("amx_bf16 amx_tile", True),
                                                ("avx512_vnni", False), ("", False)])
def test_cpu_bfloat16_is_read_from_the_cpu_flags(extra_flag, native):
  assert precision.cpu_has_bfloat16(_CPUINFO.format(extra_flag)) is native
  assert precision.cpu_has_bfloat16("model name\t: avx512_bf16 in a name, not a flag\n") is False


@pytest.mark.parametrize("gpus, cpu, expected", [
    (None, True, "mixed_bfloat16"), (None, False, "float32"),
    (True, False, "mixed_bfloat16"), (False, True, "float32")])
def test_auto_precision_follows_the_gpus_else_the_cpu(monkeypatch, gpus, cpu, expected):
  monkeypatch.setattr(precision, "gpus_have_bfloat16", lambda: gpus)
  monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: cpu)
  assert precision.resolve("auto") == expected
  assert precision.resolve("float32") == "float32"
  with pytest.raises(ValueError, match="unknown precision 'bf16'"):
    precision.resolve("bf16")


def test_text_models_default_to_auto_with_xla_and_image_models_to_float32_without():
  for name in ("yahoo_small", "ptb"):
    train = config_lib.default_config(name).train
    assert train.precision == "auto" and train.jit_compile is True
  train = config_lib.default_config("omniglot").train
  assert train.precision == "float32" and train.jit_compile is False


def test_runs_saved_before_the_precision_field_evaluate_in_float32():
  saved = json.loads(config_lib.text_config().to_json_best_effort())
  assert saved["train"].pop("precision") == "auto"
  assert config_lib.from_saved(saved).train.precision == "float32"
  saved["train"]["precision"] = "mixed_bfloat16"
  assert config_lib.from_saved(saved).train.precision == "mixed_bfloat16"


def test_config_rejects_an_unknown_precision():
  config = _image_config()
  config.train.precision = "bf16"
  with pytest.raises(config_lib.ConfigError, match="train.precision"):
    config_lib.validate(config)


def test_mixed_precision_runs_without_xla_on_cpu_only():
  config = _image_config()
  config.train.precision = "float32"
  for jit_compile in (True, False):
    config.train.jit_compile = jit_compile
    assert precision.use_xla(config.train) is jit_compile
    # bin/evaluate.py's --jit_compile overrides the run's setting.
    assert precision.use_xla(config.train, not jit_compile) is (not jit_compile)
  config.train.precision = "mixed_bfloat16"
  on_gpu = bool(tf.config.list_physical_devices("GPU"))
  assert precision.use_xla(config.train) == precision.use_xla(config.train, True) == on_gpu


@pytest.mark.parametrize("make", [lambda: layers.Conv2D(4, 3, padding="same"),
                                  lambda: layers.Dense(4)])
def test_bias_gradient_of_a_mixed_layer_matches_float32(make):
  """Keras' BiasAdd gradient sums bfloat16 in bfloat16 on CPU (0.01 x 4,704 -> 8.0); the
  project's layers sum it in float32."""
  x = tf.constant(np.random.default_rng(0).random((6, 28, 28, 3)), tf.float32)
  gradients = []
  for name in precision.PRECISIONS:
    with precision.policy_scope(name):
      layer = make()
    layer.build(x.shape)
    layer.set_weights([np.full(w.shape, 0.1, np.float32) for w in layer.get_weights()])
    with tf.GradientTape() as tape:
      y = layer(x)
    upstream = tf.cast(tf.fill(tf.shape(y), 0.01), y.dtype)
    gradients.append(tape.gradient(y, layer.bias, output_gradients=upstream).numpy())
  np.testing.assert_allclose(gradients[1], gradients[0], rtol=1e-2)
  np.testing.assert_allclose(gradients[0], 0.01 * 6 * 28 * 28, rtol=1e-4)


def test_svi_second_order_resolves_with_the_precision():
  """'auto' is finite differences in float32 and exact in bfloat16; finite differences
  asked of bfloat16 networks (rounding noise) are a ConfigError."""
  config = _image_config()
  config.model.inference = "semi_amortized"
  for name, expected in (("float32", "finite_difference"), ("mixed_bfloat16", "exact")):
    config.model.svi_second_order, config.train.precision = "auto", name
    config_lib.resolve_svi_second_order(config)
    assert config.model.svi_second_order == expected
  config.model.svi_second_order = "finite_difference"
  with pytest.raises(config_lib.ConfigError, match="needs float32 networks"):
    config_lib.resolve_svi_second_order(config)
  config.train.precision = "float32"
  config_lib.resolve_svi_second_order(config)
