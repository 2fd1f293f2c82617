"""Semi-amortized inference: the refinement against a numpy re-derivation of the official
update, its end-to-end gradient against finite differences, K = 0 equal to the VAE, and
refinement steps that raise the ELBO of a trained model."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from conftest import synthetic_image_data
from skip_vae_tf import config as config_lib
from skip_vae_tf import objectives
from skip_vae_tf import tasks
from skip_vae_tf import training
from skip_vae_tf.models import inference as inference_lib
from skip_vae_tf.models import refinement

tfd = tfp.distributions
TARGET = np.array([[1.5, -2.0, 0.5], [0.0, 3.0, -1.0]])
_SEEDS = [tf.constant([0, k], tf.int32) for k in range(5)]


def _quadratic_terms(weight):
  """A smooth stand-in for (NLL, KL): weight * |mean - TARGET|^2 and sum(exp(logvar) -
  logvar); `weight` plays the decoder's parameters."""
  def terms(mean, log_variance, seed):
    del seed
    nll = weight * tf.reduce_sum((mean - TARGET) ** 2, axis=1)
    kl = tf.reduce_sum(tf.exp(log_variance) - log_variance, axis=1)
    return nll, kl
  return terms


def _numpy_official_steps(mean, log_var, weight, kl_weight, steps, lrs, momentum, max_norm):
  """OptimN2N.forward_mom on the quadratic: batch-mean loss, each gradient clipped by
  max_norm / (norm + 1e-6) when that is below 1, p_k = momentum p_{k-1} - g_k, x += lr p."""
  params, velocity = [mean.copy(), log_var.copy()], None
  batch = len(mean)
  for k in range(steps):
    grads = [2 * weight * (params[0] - TARGET) / batch,
             kl_weight * (np.exp(params[1]) - 1.0) / batch]
    clipped = []
    for g in grads:
      coefficient = max_norm / (np.sqrt(np.sum(g ** 2)) + 1e-6)
      clipped.append(g * coefficient if coefficient < 1 else g)
    velocity = ([-g for g in clipped] if k == 0
                else [momentum * v - g for v, g in zip(velocity, clipped)])
    params = [x + lr * v for x, lr, v in zip(params, lrs, velocity)]
  return params


@pytest.mark.parametrize("max_norm", [0.5, 100.0])  # Clipping active / inactive.
def test_steps_match_the_official_update(max_norm):
  rng = np.random.default_rng(0)
  mean, log_var = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
  refine = refinement.Refinement(steps=4, learning_rates=(0.7, 0.3), momentum=0.5,
                                 max_grad_norm=max_norm)
  new_mean, new_log_var, first, _ = refine.refine(
      _quadratic_terms(tf.constant(1.3, tf.float64)), tf.constant(mean), tf.constant(log_var),
      tf.constant(0.8, tf.float64), _SEEDS)
  expected = _numpy_official_steps(mean, log_var, 1.3, 0.8, 4, (0.7, 0.3), 0.5, max_norm)
  np.testing.assert_allclose(new_mean, expected[0], rtol=1e-12)
  np.testing.assert_allclose(new_log_var, expected[1], rtol=1e-12)
  np.testing.assert_allclose(first[0], 1.3 * np.sum((mean - TARGET) ** 2, axis=1), rtol=1e-12)


def _final_loss(refine, mean, log_var, weight):
  new_mean, new_log_var, _, _ = refine.refine(_quadratic_terms(weight), tf.constant(mean),
                                           tf.constant(log_var), 1.0, _SEEDS)
  nll, kl = _quadratic_terms(weight)(new_mean, new_log_var, None)
  return tf.reduce_mean(nll + kl)


def test_end_to_end_gradient_equals_finite_differences_through_the_steps():
  rng = np.random.default_rng(1)
  mean, log_var = rng.normal(size=(2, 3)), 0.3 * rng.normal(size=(2, 3))
  weight = tf.Variable(0.9, dtype=tf.float64)
  refine = refinement.Refinement(steps=5, learning_rates=(0.4, 0.4), momentum=0.5,
                                 max_grad_norm=2.0)
  mean_t = tf.constant(mean)
  with tf.GradientTape() as tape:
    tape.watch(mean_t)
    loss = _final_loss(refine, mean_t, log_var, weight)
  grad_mean, grad_weight = tape.gradient(loss, [mean_t, weight])
  h = 1e-6
  numeric = np.zeros_like(mean)
  for index in np.ndindex(mean.shape):
    step = np.zeros_like(mean)
    step[index] = h
    numeric[index] = (float(_final_loss(refine, mean + step, log_var, weight))
                      - float(_final_loss(refine, mean - step, log_var, weight))) / (2 * h)
  np.testing.assert_allclose(grad_mean, numeric, rtol=1e-5, atol=1e-9)
  weight_numeric = (float(_final_loss(refine, mean_t, log_var, tf.constant(0.9 + h, tf.float64)))
                    - float(_final_loss(refine, mean_t, log_var,
                                        tf.constant(0.9 - h, tf.float64)))) / (2 * h)
  np.testing.assert_allclose(grad_weight, weight_numeric, rtol=1e-5)
  # Without end-to-end training the refined parameters are constants.
  detached = refinement.Refinement(steps=5, learning_rates=(0.4, 0.4), momentum=0.5,
                                   max_grad_norm=2.0, end_to_end=False)
  with tf.GradientTape() as tape:
    tape.watch(mean_t)
    loss = _final_loss(detached, mean_t, log_var, weight)
  assert tape.gradient(loss, mean_t) is None and np.any(grad_mean.numpy() != 0)


def _model(modality, inference, steps, end_to_end=True, dropout=0.0):
  config = config_lib.apply_smoke(config_lib.default_config(
      "omniglot" if modality == "image" else "ptb"))
  config.model.inference, config.model.svi_steps = inference, steps
  config.model.train_end_to_end = end_to_end
  if modality == "text":
    config.model.vocab_size, config.model.decoder_dropout = 30, dropout
  return tasks.for_config(config).build_model(config.model)


def _inputs(modality):
  rng = np.random.default_rng(2)
  if modality == "image":
    return (rng.random((4, 28, 28, 1)) < 0.3).astype(np.float32)
  x = rng.integers(4, 30, size=(4, 7)).astype(np.int32)
  x[:, 0], x[:, -1] = 2, 3
  return x


@pytest.mark.parametrize("modality", ["image", "text"])
def test_zero_steps_equal_the_amortized_vae(modality):
  vae, semi = _model(modality, "amortized", 0), _model(modality, "semi_amortized", 0)
  semi.set_weights(vae.get_weights())  # Weights and the sampling seed state.
  x = _inputs(modality)
  results = []
  for model in (vae, semi):
    with tf.GradientTape() as tape:
      terms = model(x, training=True, kl_weight=0.3)
      loss = tf.reduce_mean(objectives.weighted_loss(terms, 0.3))
    results.append((terms, tape.gradient(loss, model.trainable_variables)))
  (terms_vae, grads_vae), (terms_semi, grads_semi) = results
  for key in terms_vae:
    np.testing.assert_array_equal(terms_vae[key], terms_semi[key], err_msg=key)
  np.testing.assert_array_equal(terms_semi["amortized_negative_elbo"],
                                terms_semi["negative_elbo"])
  # The amortized text decoder sums its softmax gradient chunk by chunk, the semi-amortized
  # one all at once (text.LSTMDecoder.softmax_chunk): the same sums in another order.
  for a, b in zip(grads_vae, grads_semi):
    np.testing.assert_allclose(tf.convert_to_tensor(a), tf.convert_to_tensor(b),
                               **(dict(rtol=1e-5, atol=1e-8) if modality == "text" else {}))


def test_end_to_end_training_reaches_the_encoder_through_the_refinement():
  x = _inputs("image")
  gradients = {}
  for end_to_end in (True, False):
    model = _model("image", "semi_amortized", 3, end_to_end)
    model.set_weights(_model("image", "amortized", 0).get_weights())
    with tf.GradientTape() as tape:
      terms = model(x, training=True)
      loss = tf.reduce_mean(objectives.weighted_loss(terms, 1.0))
    gradients[end_to_end] = tape.gradient(loss, model.encoder.trainable_variables)
    assert all(g is not None and np.all(np.isfinite(g)) for g in gradients[end_to_end])
  assert any(np.any(a.numpy() != b.numpy()) for a, b in zip(gradients[True], gradients[False]))


@pytest.mark.parametrize("end_to_end", [True, False])
@pytest.mark.parametrize("modality", ["image", "text"])
def test_training_gradients_equal_differentiating_the_unrolled_steps(modality, end_to_end):
  """`VAE.terms_and_gradients` of a semi-amortized model (memory O(1) in the steps,
  recomputed backwards) against
  automatic differentiation through `VAE.call`'s unrolled refinement."""
  model = _model(modality, "semi_amortized", 3, end_to_end, dropout=0.3)
  x, state = _inputs(modality), model.get_weights()
  with tf.GradientTape() as tape:
    terms = model(x, training=True, kl_weight=0.7)
    loss = 0.25 * tf.reduce_sum(objectives.weighted_loss(terms, 0.7))
  expected = tape.gradient(loss, model.trainable_variables)
  model.set_weights(state)  # The same seeds and batch-norm statistics again.
  light_terms, gradients = model.terms_and_gradients(x, tf.constant(0.7), 0.25)
  for key in ("negative_elbo", "kl", "amortized_negative_elbo", "posterior_mean"):
    np.testing.assert_allclose(light_terms[key], terms[key], rtol=1e-5, err_msg=key)
  expected = [tf.convert_to_tensor(g).numpy() for g in expected]
  scale = max(np.abs(g).max() for g in expected)  # float32 noise is relative to this.
  for variable, want, got in zip(model.trainable_variables, expected, gradients):
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5 * scale, err_msg=variable.path)
  assert any(np.any(g.numpy() != 0) for g in gradients[:len(model.encoder.trainable_variables)])


@pytest.mark.parametrize("modality", ["image", "text"])
def test_finite_difference_gradients_approach_the_exact_ones(modality):
  """The official code's one-sided differences (`second_order='finite_difference'`) against
  reverse over reverse, on the same seeds: within float32 finite-difference error."""
  model = _model(modality, "semi_amortized", 3, True, dropout=0.3)
  x, state = _inputs(modality), model.get_weights()
  gradients = {}
  for second_order in ("exact", "finite_difference"):
    model.set_weights(state)
    model.inference.refinement = dataclasses.replace(model.inference.refinement,
                                                     second_order=second_order)
    _, grads = model.terms_and_gradients(x, tf.constant(0.7), 0.25)
    gradients[second_order] = np.concatenate(
        [tf.reshape(tf.convert_to_tensor(g), [-1]).numpy() for g in grads])
  exact, approximate = gradients["exact"], gradients["finite_difference"]
  relative_error = np.linalg.norm(approximate - exact) / np.linalg.norm(exact)
  assert relative_error < 5e-3, relative_error
  assert relative_error > 0  # The differences are not the exact path under another name.


def _mc_negative_elbo(model, x, posterior, noise):
  """-ELBO per example averaged over the fixed standard-normal draws `noise` (S, B, D)."""
  nll = tf.stack([-model.decoder.log_likelihood(
      x, posterior.distribution.loc + posterior.distribution.scale * eps) for eps in noise])
  return (tf.reduce_mean(nll, 0) + tfd.kl_divergence(posterior, model.prior())).numpy()


def test_refinement_steps_raise_the_elbo_of_a_trained_model(tmp_path):
  config = config_lib.apply_smoke(config_lib.image_config())
  config.model.encoder, config.model.decoder = "mlp", "mlp"
  config.train.batch_size, config.train.num_logged_samples = 16, 0
  data = synthetic_image_data()
  trainer = training.Trainer(config, str(tmp_path), data)
  trainer.train()
  model, x = trainer.model, data.test[:32]
  noise = tf.random.stateless_normal([16, len(x), model.latent_dim], [5, 6])
  values = []
  for steps in range(0, 5):
    model.inference = inference_lib.SemiAmortized(
        refinement.Refinement(steps=steps, learning_rates=(1.0, 1.0)))
    values.append(_mc_negative_elbo(model, x, model.posterior(x), noise).mean())
  assert all(b <= a + 1e-3 for a, b in zip(values, values[1:])), values
  assert values[-1] < values[0] - 0.05, values
