"""One entry point for every dataset: images (data.images) and text (data.text).

Both dataset classes answer the same questions, which is all the training loop and the
evaluation use: `num_examples(split)`, `labels(split)`, `first_examples(split, n)`,
`training_batches(batch_size, seed)`, `evaluation_batches(split, batch_size)` and
`evaluation_order(split)` (the order those batches visit the examples in, None = stored).
"""

from skip_vae_tf.data import images
from skip_vae_tf.data import text

Dataset = images.ImageDataset | text.TextDataset


def load_configured(data_config, seed: int) -> Dataset:
  """The dataset of a config's `data` section (see `skip_vae_tf.config`)."""
  if data_config.name in text.TEXT_DATASETS:
    return text.load_configured(data_config, seed)
  return images.load_configured(data_config, seed)
