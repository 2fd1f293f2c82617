"""TensorBoard writing, read back from the event files: scalars with descriptions, KL per
dimension, images side by side, Markdown text escaped, the hparams session."""

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from skip_vae_tf import summaries


def _accumulator(logdir):
  accumulator = event_accumulator.EventAccumulator(str(logdir), size_guidance={"tensors": 0})
  accumulator.Reload()
  return accumulator


def _value(accumulator, tag):
  (event,) = accumulator.Tensors(tag)
  return event.step, tf.make_ndarray(event.tensor_proto)


def test_scalars_and_kl_per_dim(tmp_path):
  writer = tf.summary.create_file_writer(str(tmp_path))
  summaries.write_scalars(writer, {"negative_elbo": 91.5, "kl": 2.25}, step=7)
  summaries.write_kl_per_dim(writer, np.array([0.5, 1.75]), step=7)
  accumulator = _accumulator(tmp_path)
  assert _value(accumulator, "negative_elbo") == (7, pytest.approx(91.5))
  assert _value(accumulator, "kl_per_dim/dim_01")[1] == pytest.approx(1.75)
  metadata = accumulator.SummaryMetadata("kl")
  assert metadata.summary_description == summaries.SCALAR_DESCRIPTIONS["kl"]
  assert "kl_per_dim" in accumulator.Tags()["tensors"]


def test_images_put_each_reconstruction_beside_its_original(tmp_path):
  writer = tf.summary.create_file_writer(str(tmp_path))
  originals = np.zeros((2, 28, 28, 1), np.float32)
  reconstructions = np.ones((2, 28, 28, 1), np.float32)
  summaries.write_images(writer, originals, reconstructions, np.ones((3, 28, 28, 1)), step=1)
  accumulator = _accumulator(tmp_path)
  _, encoded = _value(accumulator, "reconstructions")
  # Width, height, then one PNG per image.
  assert encoded[:2].tolist() == [b"56", b"28"] and len(encoded) == 4
  image = tf.io.decode_png(encoded[2]).numpy()
  assert image[:, :28].max() == 0 and image[:, 28:].min() == 255
  assert len(_value(accumulator, "prior_samples")[1]) == 5


def test_text_samples_are_an_escaped_markdown_table(tmp_path):
  writer = tf.summary.create_file_writer(str(tmp_path))
  summaries.write_text_samples(writer, ["a | b", ""], ["x_y", "*z*"], ["s"], step=2)
  _, table = _value(_accumulator(tmp_path), "reconstructions")
  rows = table.item().decode().splitlines()
  assert rows[2] == "| a \\| b | x\\_y |" and rows[3] == "| (empty) | \\*z\\* |"


def test_run_info_writes_an_hparams_session(tmp_path):
  writer = tf.summary.create_file_writer(str(tmp_path))
  summaries.write_run_info(writer, {"skip": True, "seed": 3}, {"data_source": "synthetic"},
                           trial_id="skip_vae_seed3")
  accumulator = _accumulator(tmp_path)
  tags = accumulator.Tags()["tensors"]
  assert "_hparams_/experiment" in tags and "_hparams_/session_start_info" in tags
  assert _value(accumulator, "data_source")[1].item() == b"synthetic"
  content = lambda tag: accumulator.SummaryMetadata(tag).plugin_data.content
  session = hparams_metadata.parse_session_start_info_plugin_data(
      content("_hparams_/session_start_info"))
  assert session.group_name == "skip_vae_seed3"  # The trial's name in the dashboard.
  experiment = hparams_metadata.parse_experiment_plugin_data(content("_hparams_/experiment"))
  skip = next(h for h in experiment.hparam_infos if h.name == "skip")
  assert [v.bool_value for v in skip.domain_discrete.values] == [False, True]
