"""train_and_evaluate end to end on in-memory data: no data folder, no download, no
subprocess (flax's examples/mnist/train_test.py pattern). Runs without SKIP_VAE_DATA_DIR."""

import json

import numpy as np
import pytest

from conftest import synthetic_image_data
from skip_vae_tf import config as config_lib
from skip_vae_tf import export
from skip_vae_tf import training
from skip_vae_tf import workdir as workdir_lib
from skip_vae_tf.data import text as text_data


def _text_data() -> text_data.TextDataset:
  rng = np.random.default_rng(0)
  words = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "fast", "home"]
  lines = [" ".join(rng.choice(words, rng.integers(2, 9))) for _ in range(220)]
  vocabulary = text_data.build_vocabulary(lines[:128])
  train, validation, test = (text_data.tokenize(part, vocabulary)
                             for part in (lines[:128], lines[128:180], lines[180:]))
  return text_data.TextDataset("ptb", "synthetic sentences (in memory)", vocabulary, train,
                               validation, test, bucket_width=10)


@pytest.mark.parametrize("inference", ["amortized", "semi_amortized"])
@pytest.mark.parametrize("modality", ["image", "text"])
def test_train_and_evaluate_on_in_memory_data_then_resume(modality, inference, tmp_path,
                                                          monkeypatch):
  """Skip-VAE (images and text), SA-VAE (images, skip off) and Skip-SA-VAE (text), the
  semi-amortized ones with 2 refinement steps; VAEs train on real data in test_train_e2e."""
  monkeypatch.delenv("SKIP_VAE_DATA_DIR", raising=False)
  config = config_lib.apply_smoke(config_lib.default_config(
      "omniglot" if modality == "image" else "ptb"))
  config.model.inference, config.model.svi_steps = inference, 2
  config.model.skip = not (modality == "image" and inference == "semi_amortized")
  config.train.epochs, config.train.batch_size = 2, 16
  config.train.num_logged_samples = 0
  if modality == "image":  # The loop is under test, not the PixelCNN: MLPs compile fast.
    config.model.encoder, config.model.decoder = "mlp", "mlp"
  config.data.data_dir = str(tmp_path / "no_such_folder")  # Never read: data are given.
  data = synthetic_image_data() if modality == "image" else _text_data()
  result = training.train_and_evaluate(config, str(tmp_path / "run"), data=data)

  run = workdir_lib.Workdir(tmp_path / "run")
  assert result == json.loads((run / workdir_lib.METRICS_FILE).read_text())
  assert result["data_source"] == data.source
  assert result["steps"] == 2 * data.training_batches(16, config.seed).steps_per_epoch
  for split in ("validation", "test"):
    scalars = result[split]
    assert np.isfinite(scalars["negative_elbo"]) and scalars["kl"] >= 0
    assert scalars["negative_elbo"] == pytest.approx(
        scalars["reconstruction_nll"] + scalars["kl"], rel=1e-5)
    assert sum(result[f"{split}_kl_per_dim"]) == pytest.approx(scalars["kl"], rel=1e-4)
  assert workdir_lib.checkpoint_step(run.checkpoint_path("latest")) == result["steps"]
  if modality == "text":
    assert run.read_vocabulary(data.vocabulary.size) == data.vocabulary
    assert result["test"]["perplexity_bound"] == pytest.approx(
        np.exp(result["test"]["negative_elbo_per_word"]), rel=1e-6)
  if inference == "semi_amortized":
    test = result["test"]
    assert test["amortization_gap"] == pytest.approx(
        test["amortized_negative_elbo"] - test["negative_elbo"], rel=1e-6, abs=1e-9)
    assert {"amortized_kl", "amortized_mi_aggregate", "amortized_active_units_cov_ge_0.01"
            } <= set(test)
  # The finished run resumes at its last step and reports the same best checkpoint.
  again = training.train_and_evaluate(config, str(run.path), data=data)
  assert again["best_checkpoint"] == result["best_checkpoint"]
  assert again["test"] == pytest.approx(result["test"], rel=1e-6)
  if inference == "semi_amortized":
    # Exported and verified by reloading; encode and score serve the amortized posterior.
    version = export.export_run(str(run.path), str(tmp_path / "serving"), iw_samples=3)
    assert (version / "saved_model.pb").is_file()


def test_a_validation_that_is_never_finite_ends_in_one_error_every_time(tmp_path):
  """No best checkpoint can exist: the run (and a rerun) stop naming the last checkpoint."""
  config = config_lib.apply_smoke(config_lib.image_config())
  config.model.encoder, config.model.decoder = "mlp", "mlp"
  config.train.epochs, config.train.batch_size, config.train.num_logged_samples = 1, 16, 0
  data = synthetic_image_data()
  data.validation = data.validation + np.float32(np.nan)
  for _ in range(2):
    with pytest.raises(training.NonFiniteLossError,
                       match=r"never finite.*last checkpoint is .*ckpt-8"):
      training.train_and_evaluate(config, str(tmp_path / "run"), data=data)
