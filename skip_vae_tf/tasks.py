"""What differs between image and text runs, in one object per modality.

The training loop, evaluation and studies are written once; where images and text differ
(data, networks, per-word figures, summaries, IW chunk size) they call the run's task, a
`Task`: `ImageTask` or `TextTask`, chosen by `for_config`. Serving's differences are the
tasks' serving adapters (`skip_vae_tf.serving_adapters`).
"""

import math
import typing

import ml_collections
import numpy as np
import tensorflow as tf

from skip_vae_tf import config as config_lib
from skip_vae_tf import dataset_registry
from skip_vae_tf import precision
from skip_vae_tf import summaries
from skip_vae_tf import vocabulary as vocab
from skip_vae_tf.data import files
from skip_vae_tf.data import images
from skip_vae_tf.data import text as text_data
from skip_vae_tf.models import image_networks
from skip_vae_tf.models import inference
from skip_vae_tf.models import refinement
from skip_vae_tf.models import text as text_models
from skip_vae_tf.models import vae as vae_lib

_SAMPLE_SEED_OFFSET = 7919
_UNITS = ("nats per example; definitions in docs/metrics.md (mi_minibatch_he2019 uses "
          "minibatches of {mi_minibatch_size})")


def inference_from_config(model_config: ml_collections.ConfigDict
                          ) -> inference.Amortized:
  """The inference of a model config: `inference.Amortized`, or `inference.SemiAmortized`
  with the config's SA-VAE refinement."""
  if model_config.get("inference", "amortized") == "amortized":
    return inference.Amortized()
  # 'auto' is resolved when training starts (prepare.py); evaluation never needs it.
  second_order = model_config.get("svi_second_order", "auto")
  return inference.SemiAmortized(refinement.Refinement(
      steps=model_config.svi_steps, learning_rates=tuple(model_config.svi_learning_rates),
      momentum=model_config.svi_momentum, max_grad_norm=model_config.svi_max_grad_norm,
      end_to_end=model_config.train_end_to_end,
      second_order="exact" if second_order == "auto" else second_order))


@typing.runtime_checkable
class Task(typing.Protocol):
  """What a modality gives training, evaluation and studies; `ImageTask` and `TextTask`
  implement it (serving's side is `serving_adapters`)."""

  # Importance samples x examples per decoder call in the IW-NLL.
  iw_examples_per_call: int

  def load_data(self, data_config: ml_collections.ConfigDict, seed: int):
    """The dataset of `data_config` (`skip_vae_tf.data.datasets` interface)."""

  def adapt_config(self, config: ml_collections.ConfigDict, data) -> None:
    """Sets what the config takes from the data (text: the vocabulary size)."""

  def write_run_files(self, workdir, data) -> None:
    """Files a run writes beside its config (text: the vocabulary)."""

  def restore_run_files(self, workdir, config: ml_collections.ConfigDict) -> None:
    """Reads back what `write_run_files` wrote, for evaluation and export."""

  def build_model(self, model_config: ml_collections.ConfigDict) -> vae_lib.VAE:
    """A VAE from the config's `model` section, its variables created."""

  def derived_scalars(self, scalars: dict[str, float]) -> dict[str, float]:
    """Scalars with the figures derived from per-example means (text: per word)."""

  def units_note(self, config: ml_collections.ConfigDict) -> str:
    """What the numbers of a run's reports are measured in."""

  def hparams(self, model_config: ml_collections.ConfigDict) -> dict:
    """The modality's own knobs in the HParams dashboard."""

  def write_samples(self, writer, originals, reconstructions, samples, step: int) -> None:
    """Examples, their decodes and prior samples into TensorBoard."""

  def samples_record(self, originals, reconstructions, samples) -> dict[str, list]:
    """The same as JSON lists, for reports."""


class ImageTask:
  """Binary 28x28 images: ResNet/MLP encoders, PixelCNN/MLP decoders, image summaries."""

  image_shape = images.IMAGE_SHAPE
  # Importance samples x images per decoder call in the IW-NLL.
  iw_examples_per_call = 500

  def load_data(self, data_config: ml_collections.ConfigDict,
                seed: int) -> images.ImageDataset:
    return dataset_registry.load(data_config, seed)

  def adapt_config(self, config: ml_collections.ConfigDict, data) -> None:
    """Records what the data decide in the config (nothing for images)."""
    del config, data

  def write_run_files(self, workdir, data) -> None:
    """Files an export needs beside the weights, written at the start of training."""
    del workdir, data

  def restore_run_files(self, workdir, config: ml_collections.ConfigDict) -> None:
    """Files an export needs beside the weights (none for images)."""
    del workdir, config

  def build_model(self, model_config: ml_collections.ConfigDict) -> vae_lib.VAE:
    """A VAE from the `model` section of an image config, its variables created."""
    m, shape = model_config, self.image_shape
    encoder = image_networks.build(image_networks.ENCODERS, "encoder", m, shape)
    decoder = image_networks.build(image_networks.DECODERS, "decoder", m, shape)
    return vae_lib.build_vae(encoder, decoder, m.latent_dim, m.skip, tf.zeros([1, *shape]),
                             inference_from_config(m))

  def derived_scalars(self, scalars: dict[str, float]) -> dict[str, float]:
    """Figures derived from per-example means (none for images)."""
    return dict(scalars)

  def units_note(self, config: ml_collections.ConfigDict) -> str:
    """What the numbers of a run's reports are measured in."""
    return _UNITS.format(mi_minibatch_size=config.train.mi_minibatch_size)

  def hparams(self, model_config: ml_collections.ConfigDict) -> dict:
    """The decoder's size in the HParams dashboard."""
    return {"decoder_layers": len(model_config.decoder_kernel_sizes),
            "decoder_channels": model_config.decoder_channels,
            "latent_feature_maps": model_config.latent_feature_maps}

  def write_samples(self, writer, originals, reconstructions, samples, step: int) -> None:
    summaries.write_images(writer, originals, reconstructions, samples, step)

  def samples_record(self, originals, reconstructions, samples) -> dict[str, list]:
    """The decodes of `summary_decodes` as JSON lists: (N, H, W) 0/1 pixels each."""
    as_lists = lambda images: np.asarray(images)[..., 0].astype(np.uint8).tolist()
    return {"originals": as_lists(originals), "reconstructions": as_lists(reconstructions),
            "prior_samples": as_lists(samples)}

class TextTask:
  """Sentences of token ids: LSTM encoder and decoder, per-word figures, text summaries.

  `vocabulary` is set by `adapt_config` (training) or `restore_run_files` (export).
  """

  iw_examples_per_call = 64  # A sentence's logits hold length x vocabulary floats.

  def __init__(self, vocabulary: vocab.Vocabulary | None = None):
    self.vocabulary = vocabulary

  def load_data(self, data_config: ml_collections.ConfigDict,
                seed: int) -> text_data.TextDataset:
    return dataset_registry.load(data_config, seed)

  def adapt_config(self, config: ml_collections.ConfigDict, data) -> None:
    """Records the data's vocabulary size in the model config (0 there means 'from the
    data')."""
    vocab_size = data.vocabulary.size
    if config.model.vocab_size not in (0, vocab_size):
      raise config_lib.ConfigError(
          f"model.vocab_size={config.model.vocab_size} but the {config.data.name} vocabulary "
          f"has {vocab_size} entries; leave model.vocab_size at 0")
    config.model.vocab_size = vocab_size
    self.vocabulary = data.vocabulary

  def write_run_files(self, workdir, data) -> None:
    """WORKDIR/vocabulary.txt: exports read it with the weights."""
    workdir.write_vocabulary(data.vocabulary)

  def restore_run_files(self, workdir, config: ml_collections.ConfigDict) -> None:
    """The vocabulary the run was trained with, from its workdir."""
    self.vocabulary = workdir.read_vocabulary(config.model.vocab_size)

  def build_model(self, model_config: ml_collections.ConfigDict) -> vae_lib.VAE:
    """A VAE from the `model` section of a text config, its variables created."""
    common = dict(vocab_size=model_config.vocab_size, embedding_dim=model_config.embedding_dim,
                  latent_dim=model_config.latent_dim, init_scale=model_config.init_scale)
    encoder = text_models.LSTMEncoder(hidden=model_config.encoder_hidden, name="encoder",
                                      **common)
    # Semi-amortized inference differentiates through the likelihood's gradients: its
    # decoder keeps the twice-differentiable softmax and LSTM gradients.
    model_inference = inference_from_config(model_config)
    twice_differentiable = model_inference.needs_second_derivative
    decoder = text_models.LSTMDecoder(
        hidden=model_config.decoder_hidden, skip=model_config.skip,
        dropout=model_config.decoder_dropout, max_decode_length=model_config.max_decode_length,
        softmax_chunk=0 if twice_differentiable else model_config.softmax_chunk,
        twice_differentiable=twice_differentiable, name="decoder", **common)
    return vae_lib.build_vae(encoder, decoder, model_config.latent_dim, model_config.skip,
                             tf.constant([[vocab.BOS_ID, vocab.EOS_ID]]), model_inference)

  def derived_scalars(self, scalars: dict[str, float]) -> dict[str, float]:
    """Adds the per-word figures to per-sentence means.

    `num_tokens` (mean predicted tokens per sentence: words and `</s>`, not `<s>`) is
    replaced by `words_per_sentence`; ratios of means are ratios of sums over the set:
    reconstruction_nll_per_word, negative_elbo_per_word (nats per word),
    perplexity_bound = exp(negative_elbo_per_word), and with `iw_nll` also iw_nll_per_word
    and perplexity_iw = exp(iw_nll_per_word). Perplexities overflow to inf, never raise.
    """
    scalars = dict(scalars)
    if "num_tokens" in scalars:
      words = scalars.pop("num_tokens")
      scalars["words_per_sentence"] = words
      scalars["reconstruction_nll_per_word"] = scalars["reconstruction_nll"] / words
      scalars["negative_elbo_per_word"] = scalars["negative_elbo"] / words
      scalars["perplexity_bound"] = _exp(scalars["negative_elbo_per_word"])
    if "words_per_sentence" in scalars and "iw_nll" in scalars:
      scalars["iw_nll_per_word"] = scalars["iw_nll"] / scalars["words_per_sentence"]
      scalars["perplexity_iw"] = _exp(scalars["iw_nll_per_word"])
    return scalars

  def units_note(self, config: ml_collections.ConfigDict) -> str:
    return ("nats per sentence, *_per_word in nats per word; a word is every token the "
            "decoder predicts (the words of the sentence and </s>, not <s>; <unk> counts); "
            "perplexities are exp(nats per word). "
            + _UNITS.format(mi_minibatch_size=config.train.mi_minibatch_size).split("; ", 1)[1])

  def hparams(self, model_config: ml_collections.ConfigDict) -> dict:
    return {"decoder_layers": len(model_config.decoder_hidden),
            "decoder_hidden": model_config.decoder_hidden[-1],
            "embedding_dim": model_config.embedding_dim,
            "decoder_dropout": float(model_config.decoder_dropout)}

  def write_samples(self, writer, originals, reconstructions, samples, step: int) -> None:
    summaries.write_text_samples(
        writer, *self.samples_record(originals, reconstructions, samples).values(), step)

  def samples_record(self, originals, reconstructions, samples) -> dict[str, list]:
    """The decodes of `summary_decodes` as sentences."""
    to_text = lambda rows: [self.vocabulary.to_text(ids) for ids in rows]
    return {"originals": to_text(originals), "reconstructions": to_text(reconstructions),
            "prior_samples": to_text(samples)}

def _exp(value: float) -> float:
  return math.exp(value) if value < 700 else math.inf



def build_model(task: Task, config: ml_collections.ConfigDict) -> vae_lib.VAE:
  """The run's VAE, its networks in `config.train.precision` (skip_vae_tf.precision)."""
  with precision.policy_scope(config.train.precision):
    return task.build_model(config.model)


_TASKS = {"image": ImageTask, "text": TextTask}


def hparams(task: Task, config: ml_collections.ConfigDict) -> dict:
  """The run's knobs in TensorBoard's HParams dashboard (VAE and Skip-VAE side by side)."""
  model, train = config.model, config.train
  return {"model": config_lib.model_name(config), "dataset": config.data.name,
          "skip": bool(model.skip),
          "latent_dim": model.latent_dim, "encoder": model.encoder, "decoder": model.decoder,
          "batch_size": train.batch_size, "optimizer": train.optimizer,
          "learning_rate": train.learning_rate,
          "kl_warmup_epochs": float(train.kl_warmup_epochs), "kl_schedule": train.kl_schedule,
          "beta": float(train.beta), "free_bits": float(train.free_bits),
          "inference": model.inference, "precision": train.precision, "seed": config.seed,
          **task.hparams(model)}


def summary_decodes(reconstruct_and_sample, data, split: str, count: int,
                    seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(originals, reconstructions, prior samples) of the first `count` examples of `split`
  and `count` prior draws, from `VAE.reconstruct_and_sample` (or its tf.function) with a
  seed derived from the run's `seed`: the pictures TensorBoard and study reports show."""
  originals = data.first_examples(split, count)
  reconstructions, samples = reconstruct_and_sample(
      originals, count, tf.constant([seed, _SAMPLE_SEED_OFFSET], tf.int32))
  return originals, reconstructions.numpy(), samples.numpy()


def load_and_record_data(task: Task, config: ml_collections.ConfigDict):
  """The config's dataset; config.data.data_dir is set to the absolute folder it came
  from ($SKIP_VAE_DATA_DIR included), so that evaluation and export in another shell, which
  read the run's config.json, find the same files."""
  folder = files.resolve_data_dir(config.data.data_dir)
  config.data.data_dir = str(folder.resolve()) if folder else ""
  return task.load_data(config.data, config.seed)


def for_config(config: ml_collections.ConfigDict) -> Task:
  """A fresh task object for the modality of `config` (`config.modality`)."""
  return _TASKS[config_lib.modality(config)]()
