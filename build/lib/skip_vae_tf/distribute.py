"""tf.distribute strategies: which one, who writes the files, how data reach the replicas.

'default' is one device; 'mirrored' all GPUs, else all logical CPUs; 'multi_worker' is
MultiWorkerMirroredStrategy over the hosts of $TF_CONFIG (ring all-reduce); 'auto' picks
multi_worker when $TF_CONFIG names several tasks, else mirrored when there are several
GPUs, else default. Docs: docs/distributed.md.
"""

import hashlib
import json
import os

import numpy as np
import tensorflow as tf


def split_cpu(num_devices: int) -> None:
  """Splits the CPU into `num_devices` logical devices (multi-replica on one CPU, for
  MirroredStrategy tests); call before TF initialises its devices."""
  if num_devices > 1:
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * num_devices)


def cluster_size() -> int:
  """Tasks in the cluster that $TF_CONFIG describes (0 when it is unset)."""
  cluster = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("cluster", {})
  return sum(len(tasks) for name, tasks in cluster.items() if name in ("chief", "worker"))


def make_strategy(name: str) -> tf.distribute.Strategy:
  """The strategy `name` (see the module docstring). Create it before any other TF op
  runs (collectives are configured at startup)."""
  if name == "multi_worker" or (name == "auto" and cluster_size() > 1):
    return tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING))
  gpus = tf.config.list_logical_devices("GPU")
  if name == "default" or (name == "auto" and len(gpus) < 2):
    return tf.distribute.get_strategy()
  devices = gpus or tf.config.list_logical_devices("CPU")
  return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """Whether this process writes the run's files: the chief task, else worker 0 (a
  single-process strategy is always chief)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == "chief":
    return True
  return (resolver.task_type == "worker" and resolver.task_id == 0
          and "chief" not in resolver.cluster_spec().as_dict())


def task_id(strategy: tf.distribute.Strategy) -> int:
  """This process's task index in the cluster (0 for a single-process strategy)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  return resolver.task_id if resolver is not None and resolver.task_type else 0


def distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
  """`strategy.experimental_distribute_dataset` with each global batch split by element
  across workers (DATA sharding: our inputs are in-memory arrays, not files)."""
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return strategy.experimental_distribute_dataset(dataset.with_options(options))


def weights_fingerprint(model) -> str:
  """sha256 (16 hex digits) of a Keras model's trainable weights: equal on all workers of
  a healthy run. (Batch-norm moving statistics are each replica's running estimate from
  its own batches, as in Keras; checkpoints hold the chief's.)"""
  digest = hashlib.sha256()
  for variable in model.trainable_variables:
    digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
  return digest.hexdigest()[:16]
