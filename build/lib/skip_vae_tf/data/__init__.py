"""Datasets: raw-file verification, array loaders and tf.data input pipelines."""
