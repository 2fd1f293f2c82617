"""Serving adapters: how each modality's signatures turn requests into model inputs and
decoder outputs into responses (`serving.Signatures` asks the run's adapter, `for_task`),
and the in-graph checks that name a bad input before any work.
"""

import numpy as np
import tensorflow as tf

from skip_vae_tf import tasks
from skip_vae_tf import vocabulary
from skip_vae_tf.models import text as text_models


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


class ImageServing:
  """Images in and out: x float32 [batch, 28, 28, 1] pixel values in [0, 1]."""

  def __init__(self, task: tasks.ImageTask):
    self.task = task

  def input_spec(self) -> tf.TensorSpec:
    """Any shape: `model_inputs` checks it, naming the input."""
    return tf.TensorSpec(None, tf.float32, name="x")

  def model_inputs(self, x: tf.Tensor, within_limits) -> tf.Tensor:
    """Signature input -> model input: its shape checked to be [batch, 28, 28, 1], its
    batch by `within_limits(x, batch)` and its pixel values to lie in [0, 1]."""
    x = check_shape(x, "x", [None, *self.task.image_shape],
                    f"[batch, {', '.join(map(str, self.task.image_shape))}] float32 in [0, 1]")
    x = within_limits(check_not_empty(x, "x"), tf.shape(x)[0])
    with tf.control_dependencies([
        tf.debugging.assert_greater_equal(x, 0.0, message="input x must hold pixel values in "
                                          "[0, 1] (a value is below 0 or NaN)"),
        tf.debugging.assert_less_equal(x, 1.0, message="input x must hold pixel values in "
                                       "[0, 1] (a value is above 1 or NaN)")]):
      return tf.identity(x)

  def decode(self, decoder, z: tf.Tensor) -> dict[str, tf.Tensor]:
    probabilities, decoded = decoder.greedy(z)
    return {"probabilities": probabilities, "images": decoded}

  def samples(self, samples: tf.Tensor) -> dict[str, tf.Tensor]:
    return {"images": samples}

  def score_counts(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
    del inputs
    return {}

  def resources(self) -> list:
    """Objects the SavedModel must track beside the model (none for images)."""
    return []

  def example_x(self, batch: int) -> np.ndarray:
    pixels = np.random.default_rng(0).uniform(size=(batch, *self.task.image_shape))
    return (pixels < 0.3).astype(np.float32)


class TextServing:
  """Text in and out: x (B,) whitespace-tokenized strings, tokenized in the graph with the
  run's vocabulary (the task's)."""

  def __init__(self, task: tasks.TextTask):
    self.task = task
    self._table = None  # The lookup table, made once.

  def input_spec(self) -> tf.TensorSpec:
    """Any shape: `model_inputs` checks it, naming the input."""
    return tf.TensorSpec(None, tf.string, name="text")

  def model_inputs(self, x: tf.Tensor, within_limits) -> tf.Tensor:
    """(B,) strings -> (B, L) int32 padded ids, tokenized in the graph. The words are
    counted before anything is split or padded (`within_limits(x, batch, longest)`), so a
    refused request costs about its own bytes."""
    x = check_not_empty(check_shape(x, "text", [None], "[batch] strings, one sentence each"),
                        "text")
    x = within_limits(x, tf.size(x), tf.reduce_max(vocabulary.word_counts(x)))
    return vocabulary.token_ids(x, self._lookup_table()).to_tensor(
        default_value=vocabulary.PAD_ID)

  def decode(self, decoder, z: tf.Tensor) -> dict[str, tf.Tensor]:
    return self.samples(decoder.greedy(z))

  def samples(self, tokens: tf.Tensor) -> dict[str, tf.Tensor]:
    return {"text": vocabulary.ids_to_text(tokens, tf.constant(self.task.vocabulary.tokens)),
            "tokens": tokens}

  def score_counts(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
    return {"num_words": text_models.num_predicted_tokens(inputs)}

  def resources(self) -> list:
    return [self._lookup_table()]

  def _lookup_table(self) -> tf.lookup.StaticHashTable:
    if self._table is None:
      with tf.init_scope():  # Eager, also when first asked for inside a traced function.
        self._table = self.task.vocabulary.lookup_table()
    return self._table

  def example_x(self, batch: int) -> np.ndarray:
    return np.array(["the", "what is the best way to learn ?"][:batch]
                    + [""] * max(0, batch - 2), dtype=object)


_ADAPTERS = {tasks.ImageTask: ImageServing, tasks.TextTask: TextServing}


def for_task(task: tasks.Task) -> ImageServing | TextServing:
  """The serving adapter of `task`'s modality."""
  return _ADAPTERS[type(task)](task)
