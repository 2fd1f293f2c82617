"""What differs between image and text runs, in one object per modality.

The training loop, evaluation and serving are written once; where images and text differ
(data, networks, per-word figures, summaries, IW chunk size, serving inputs and outputs)
they call the run's task: `ImageTask` or `TextTask`, chosen by `for_config`.
"""

import math

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
from skip_vae_tf.models import refinement
from skip_vae_tf.models import text as text_models
from skip_vae_tf.models import vae as vae_lib

_SAMPLE_SEED_OFFSET = 7919
_UNITS = ("nats per example; definitions in docs/metrics.md (mi_minibatch_he2019 uses "
          "minibatches of {mi_minibatch_size})")


def check_not_empty(tensor: tf.Tensor, name: str) -> tf.Tensor:
  """`tensor` once its batch holds at least one example (`passed_only_if`)."""
  return passed_only_if(tf.shape(tensor)[0] > 0, tensor,
                        tf.constant(f"input {name} must hold at least one example"))


def check_shape(tensor: tf.Tensor, name: str, expected: list[int | None],
                description: str) -> tf.Tensor:
  """`tensor` after an in-graph check that its rank is len(`expected`) and each of its
  known sizes (None = any) matches; otherwise an InvalidArgumentError whose message ends
  "input <name> must be <description>, got shape [...]" (`passed_only_if`). Returned with
  that static shape. Serving signatures take inputs of any shape and check them here, so
  that a wrong one is named (a fixed signature shape is not checked by every loader)."""
  known = [axis for axis, size in enumerate(expected) if size is not None]
  padded = tf.concat([tf.shape(tensor), tf.zeros([len(expected)], tf.int32)], axis=0)
  ok = tf.logical_and(
      tf.equal(tf.rank(tensor), len(expected)),
      tf.reduce_all(tf.equal(tf.gather(padded, tf.constant(known, tf.int32)),
                              tf.constant([expected[a] for a in known], tf.int32))))
  message = tf.strings.format(f"input {name} must be {description}, got shape {{}}",
                              tf.shape(tensor), summarize=-1)
  return tf.ensure_shape(passed_only_if(ok, tensor, message), expected)


def passed_only_if(ok: tf.Tensor, tensor: tf.Tensor, message: tf.Tensor) -> tf.Tensor:
  """`tensor`, passed on only once the scalar `ok` is known true; otherwise an
  InvalidArgumentError whose message starts "assertion failed: [<message>]" (the first
  line TF Serving returns to a client; `serving.refusal`).

  The value flows through the branch that checks, so no op that uses it (whose own error
  would win) runs before. The refusing branch returns an empty tensor of another shape, so
  that graph optimizers cannot give the passed value the input's symbolic shape: they would
  then fold `ok` from what the ops downstream assume (a rank, a batch size) to true.
  """
  def refuse():
    with tf.control_dependencies([tf.debugging.Assert(ok, [message], summarize=1)]):
      return tf.zeros(tf.zeros([tf.rank(tensor)], tf.int32), tensor.dtype)
  return tf.cond(ok, lambda: tf.identity(tensor), refuse)


def refinement_from_config(model_config: ml_collections.ConfigDict
                           ) -> refinement.Refinement | None:
  """The SA-VAE refinement of a semi-amortized model config, else None (amortized)."""
  if model_config.get("inference", "amortized") == "amortized":
    return None
  return refinement.Refinement(
      steps=model_config.svi_steps, learning_rates=tuple(model_config.svi_learning_rates),
      momentum=model_config.svi_momentum, max_grad_norm=model_config.svi_max_grad_norm,
      end_to_end=model_config.train_end_to_end)


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
                             refinement_from_config(m))

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

  # ---- serving -------------------------------------------------------------------------

  def serving_input_spec(self) -> tf.TensorSpec:
    """Any shape: `serving_model_inputs` checks it, naming the input."""
    return tf.TensorSpec(None, tf.float32, name="x")

  def serving_model_inputs(self, x: tf.Tensor, within_limits) -> tf.Tensor:
    """Signature input -> model input: its shape checked to be [batch, 28, 28, 1], its
    batch by `within_limits(x, batch)` and its pixel values to lie in [0, 1]."""
    x = check_shape(x, "x", [None, *self.image_shape],
                    f"[batch, {', '.join(map(str, self.image_shape))}] float32 in [0, 1]")
    x = within_limits(check_not_empty(x, "x"), tf.shape(x)[0])
    with tf.control_dependencies([
        tf.debugging.assert_greater_equal(x, 0.0, message="input x must hold pixel values in "
                                          "[0, 1] (a value is below 0 or NaN)"),
        tf.debugging.assert_less_equal(x, 1.0, message="input x must hold pixel values in "
                                       "[0, 1] (a value is above 1 or NaN)")]):
      return tf.identity(x)

  def serving_decode(self, decoder, z: tf.Tensor) -> dict[str, tf.Tensor]:
    probabilities, decoded = decoder.greedy(z)
    return {"probabilities": probabilities, "images": decoded}

  def serving_samples(self, samples: tf.Tensor) -> dict[str, tf.Tensor]:
    return {"images": samples}

  def serving_score_counts(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
    del inputs
    return {}

  def serving_resources(self) -> list:
    """Objects the SavedModel must track beside the model (none for images)."""
    return []

  def serving_example_x(self, batch: int) -> np.ndarray:
    return (np.random.default_rng(0).uniform(size=(batch, *self.image_shape)) < 0.3).astype(
        np.float32)


class TextTask:
  """Sentences of token ids: LSTM encoder and decoder, per-word figures, text summaries.

  `vocabulary` is set by `adapt_config` (training) or `restore_run_files` (export).
  """

  iw_examples_per_call = 64  # A sentence's logits hold length x vocabulary floats.

  def __init__(self, vocabulary: vocab.Vocabulary | None = None):
    self.vocabulary = vocabulary
    self._table = None  # The serving signatures' lookup table, made once.

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
    twice_differentiable = model_config.inference == "semi_amortized"
    decoder = text_models.LSTMDecoder(
        hidden=model_config.decoder_hidden, skip=model_config.skip,
        dropout=model_config.decoder_dropout, max_decode_length=model_config.max_decode_length,
        softmax_chunk=0 if twice_differentiable else model_config.softmax_chunk,
        twice_differentiable=twice_differentiable, name="decoder", **common)
    return vae_lib.build_vae(encoder, decoder, model_config.latent_dim, model_config.skip,
                             tf.constant([[vocab.BOS_ID, vocab.EOS_ID]]),
                             refinement_from_config(model_config))

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

  # ---- serving -------------------------------------------------------------------------

  def serving_input_spec(self) -> tf.TensorSpec:
    """Any shape: `serving_model_inputs` checks it, naming the input."""
    return tf.TensorSpec(None, tf.string, name="text")

  def serving_model_inputs(self, x: tf.Tensor, within_limits) -> tf.Tensor:
    """(B,) strings -> (B, L) int32 padded ids, tokenized in the graph. The words are
    counted before anything is split or padded (`within_limits(x, batch, longest)`), so a
    refused request costs about its own bytes."""
    x = check_not_empty(check_shape(x, "text", [None], "[batch] strings, one sentence each"),
                        "text")
    x = within_limits(x, tf.size(x), tf.reduce_max(vocab.word_counts(x)))
    return vocab.token_ids(x, self._lookup_table()).to_tensor(default_value=vocab.PAD_ID)

  def serving_decode(self, decoder, z: tf.Tensor) -> dict[str, tf.Tensor]:
    return self.serving_samples(decoder.greedy(z))

  def serving_samples(self, tokens: tf.Tensor) -> dict[str, tf.Tensor]:
    return {"text": vocab.ids_to_text(tokens, tf.constant(self.vocabulary.tokens)),
            "tokens": tokens}

  def serving_score_counts(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
    return {"num_words": text_models.num_predicted_tokens(inputs)}

  def serving_resources(self) -> list:
    return [self._lookup_table()]

  def _lookup_table(self) -> tf.lookup.StaticHashTable:
    if self._table is None:
      with tf.init_scope():  # Eager, also when first asked for inside a traced function.
        self._table = self.vocabulary.lookup_table()
    return self._table

  def serving_example_x(self, batch: int) -> np.ndarray:
    return np.array(["the", "what is the best way to learn ?"][:batch]
                    + [""] * max(0, batch - 2), dtype=object)


def _exp(value: float) -> float:
  return math.exp(value) if value < 700 else math.inf


Task = ImageTask | TextTask


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
