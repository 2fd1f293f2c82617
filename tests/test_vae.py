"""The VAE as a whole: checkpoints hold every variable and restore the same model."""

import numpy as np
import pytest
import tensorflow as tf

from skip_vae_tf import config as config_lib
from skip_vae_tf import tasks


@pytest.mark.parametrize("encoder,decoder", [("resnet_official", "pixelcnn_official"),
                                             ("resnet", "pixelcnn"), ("mlp", "mlp")])
def test_checkpoint_holds_every_variable_and_round_trips(tmp_path, encoder, decoder):
  model_config = config_lib.apply_smoke(config_lib.image_config()).model
  model_config.encoder, model_config.decoder = encoder, decoder
  model = tasks.ImageTask().build_model(model_config)
  x = (np.random.default_rng(0).random((4, 28, 28, 1)) < 0.3).astype(np.float32)
  model(x, training=True)  # Moves the batch-norm statistics away from their initial values.
  path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
  saved = [name for name, _ in tf.train.list_variables(path) if name.startswith("model/")]
  assert len(saved) == len(model.variables)

  restored = tasks.ImageTask().build_model(model_config)
  tf.train.Checkpoint(model=restored).read(path).assert_existing_objects_matched()
  for a, b in zip(model.variables, restored.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert model.count_params() == restored.count_params()
