"""Aggressive inference-network training (He et al. 2019): the encoder's inner loop on a
linear-Gaussian model, whose best diagonal posterior is known in closed form, its stopping
rule, and the training loop that alternates encoder-only and decoder-only updates."""

import json

import numpy as np
import tensorflow as tf

from conftest import synthetic_image_data
from skip_vae_tf import aggressive
from skip_vae_tf import config as config_lib
from skip_vae_tf import training


def test_encoder_updates_stop_when_a_window_mean_rises():
  losses = iter([5.0, 4.0, 3.0, 2.0, 2.5, 3.0])  # Window means 4.5, 2.5, 2.75.
  assert aggressive.encoder_updates(lambda: next(losses), max_steps=100, check_every=2) == 6
  falling = iter(np.linspace(10, 1, 50))
  assert aggressive.encoder_updates(lambda: next(falling), max_steps=30, check_every=5) == 30


def test_aggressive_training_ends_at_the_first_fall_of_mi():
  assert aggressive.still_aggressive(0.3, -np.inf)
  assert aggressive.still_aggressive(0.3, 0.3)
  assert not aggressive.still_aggressive(0.29, 0.3)


def test_encoder_updates_reach_the_best_diagonal_posterior_of_a_linear_gaussian_model():
  # p(z) = N(0, I_2), p(x|z) = N(W z + b, s^2 I_4), decoder fixed. The exact posterior has
  # precision P = I + W'W / s^2 and mean P^-1 W'(x - b) / s^2; the diagonal Gaussian
  # closest to it in KL(q||p) has that mean and variances 1 / P_dd.
  rng = np.random.default_rng(0)
  w, b, s2 = rng.normal(size=(4, 2)), rng.normal(size=4), 0.5
  precision = np.eye(2) + w.T @ w / s2
  gain = np.linalg.solve(precision, w.T) / s2  # Posterior mean = gain @ (x - b).
  x = (rng.normal(size=(512, 2)) @ w.T + b + rng.normal(size=(512, 4)) * np.sqrt(s2))
  x = tf.constant(x, tf.float32)
  a = tf.Variable(tf.zeros([4, 2]))
  c = tf.Variable(tf.zeros([2]))
  log_var = tf.Variable(tf.zeros([2]))
  decoder = [tf.constant(w, tf.float32), tf.constant(b, tf.float32)]
  optimizer = tf.keras.optimizers.Adam(0.05)

  def negative_elbo():  # Closed form: E_q ||x - Wz - b||^2 = ||x - Wm - b||^2 + tr(W'W V).
    mean, var = x @ a + c, tf.exp(log_var)
    residual = x - mean @ tf.transpose(decoder[0]) - decoder[1]
    expected = tf.reduce_sum(residual ** 2, 1) + tf.reduce_sum(
        tf.reduce_sum(decoder[0] ** 2, 0) * var)
    nll = 0.5 * expected / s2 + 2.0 * np.log(2 * np.pi * s2)
    kl = 0.5 * tf.reduce_sum(mean ** 2 + var - 1.0 - log_var, 1)
    return tf.reduce_mean(nll + kl)

  @tf.function
  def encoder_step():
    with tf.GradientTape() as tape:
      loss = negative_elbo()
    optimizer.apply_gradients(zip(tape.gradient(loss, [a, c, log_var]), [a, c, log_var]))
    return loss

  def update():  # One encoder-only update, as the training loop's inner steps.
    return float(encoder_step())

  steps = aggressive.encoder_updates(update, max_steps=3000, check_every=15)
  assert steps < 3000  # Stopped by its own rule.
  np.testing.assert_allclose(a.numpy(), gain.T, atol=2e-2)
  np.testing.assert_allclose(c.numpy(), -gain @ b, atol=2e-2)
  np.testing.assert_allclose(np.exp(log_var.numpy()), 1.0 / np.diag(precision), rtol=2e-2)
  np.testing.assert_allclose(decoder[0].numpy(), w.astype(np.float32))


def test_training_alternates_until_validation_mi_falls_and_checks_inside_epochs(tmp_path):
  config = config_lib.apply_smoke(config_lib.image_config())
  config.model.encoder, config.model.decoder = "mlp", "mlp"
  config.train.batch_size, config.train.epochs = 16, 3
  config.train.aggressive = True
  config.train.aggressive_max_steps, config.train.aggressive_check_every = 6, 2
  config.train.log_every_steps = 1
  config.train.check_every_steps, config.train.check_examples = 3, 40  # The in-epoch check.
  config.train.num_logged_samples, config.train.check_images_every_steps = 2, 6
  trainer = training.Trainer(config, str(tmp_path), synthetic_image_data())
  decoder_before = [v.numpy() for v in trainer.model.decoder.trainable_variables]
  encoder_before = [v.numpy() for v in trainer.model.encoder.trainable_variables]
  trainer.updates.encoder_update()
  assert all(np.array_equal(a, v.numpy())
             for a, v in zip(decoder_before, trainer.model.decoder.trainable_variables))
  assert not all(np.array_equal(a, v.numpy())
                 for a, v in zip(encoder_before, trainer.model.encoder.trainable_variables))
  trainer.train()
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  train = [r for r in records if r["split"] == "train"]
  mi = [r["mi_aggregate"] for r in records if r["split"] == "validation"]
  falls = [i for i in range(1, len(mi)) if mi[i] < mi[i - 1]]
  steps_per_epoch = trainer.steps_per_epoch
  # Aggressive (2 to 6 encoder updates per step) until the validation after the first
  # fall of MI, joint (no encoder updates) after it.
  end = (falls[0] + 1) * steps_per_epoch if falls else len(train)
  assert all(2 <= r["encoder_updates"] <= 6 for r in train[:end])
  assert all("encoder_updates" not in r for r in train[end:])
  assert trainer.updates.is_active() == (not falls)
  # The periodic check: a fixed validation subset every 3 steps but at validations.
  checks = [r for r in records if r["split"] == "validation_subset"]
  assert [r["step"] for r in checks] == [s for s in range(3, 3 * steps_per_epoch + 1, 3)
                                         if s % steps_per_epoch]
  assert all(0.0 <= r["kl"] and "mi_aggregate_stderr" in r for r in checks)
  assert list((tmp_path / "validation_subset").glob("events.out.tfevents.*"))
