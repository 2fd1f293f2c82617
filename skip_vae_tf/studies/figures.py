"""A study's PNG figures (matplotlib, no display needed).

  curves.png       validation -ELBO, KL, MI and active units against the training step:
                   each group's mean over seeds, with a band from its lowest to its highest
  kl_per_dim.png   test KL of each latent dimension, sorted, each group's mean over seeds
  knob.png         (studies with a knob) test KL, MI, AU and NLL against the knob's values
  samples.png      (images) each group's first run: test images, their reconstructions from
                   the posterior mean, and prior samples
"""

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from skip_vae_tf import atomic  # pylint: disable=g-import-not-at-top,wrong-import-position
from skip_vae_tf import metric_table  # pylint: disable=g-import-not-at-top,wrong-import-position

CURVES = (("negative_elbo", "-ELBO (nats)"), ("kl", "KL (nats)"),
          ("mi_aggregate", "MI (nats)"), ("active_units_cov_ge_0.01", "active units"))
_DPI = 80


def _save(figure, folder: pathlib.Path, name: str) -> str:
  with atomic.replacing(folder / name, suffix=".png") as tmp:
    figure.savefig(tmp, dpi=_DPI, bbox_inches="tight")
  plt.close(figure)
  return name


def _groups(records: list[dict]) -> dict[str, list[dict]]:
  groups = {}
  for record in records:
    groups.setdefault(record["group"], []).append(record)
  return groups


def curves(records: list[dict], folder: pathlib.Path) -> str:
  figure, axes = plt.subplots(1, len(CURVES), figsize=(4 * len(CURVES), 3.2))
  for group, members in _groups(records).items():
    steps = sorted(set.intersection(*({r["step"] for r in m["curves"]} for m in members)))
    if not steps:
      continue
    for axis, (metric, label) in zip(axes, CURVES):
      values = np.array([[next(r[metric] for r in m["curves"] if r["step"] == s)
                          for s in steps] for m in members])
      line, = axis.plot(steps, values.mean(axis=0), label=group)
      if len(members) > 1:
        axis.fill_between(steps, values.min(axis=0), values.max(axis=0),
                          color=line.get_color(), alpha=0.2)
      axis.set_xlabel("training step")
      axis.set_ylabel(f"validation {label}")
  axes[0].legend(fontsize="small")
  figure.tight_layout()
  return _save(figure, folder, "curves.png")


def kl_per_dimension(records: list[dict], folder: pathlib.Path) -> str:
  figure, axis = plt.subplots(figsize=(6, 3.2))
  groups = _groups(records)
  width = 0.8 / len(groups)
  for index, (group, members) in enumerate(groups.items()):
    kl = np.sort(np.mean([m["kl_per_dim"] for m in members], axis=0))[::-1]
    axis.bar(np.arange(len(kl)) + index * width, kl, width, label=group)
  axis.set_xlabel("latent dimension (sorted by KL)")
  axis.set_ylabel("test KL per dimension (nats)")
  axis.legend(fontsize="small")
  return _save(figure, folder, "kl_per_dim.png")


def knob(study, summary: dict, folder: pathlib.Path) -> str:
  nll = "iw_nll" if "iw_nll" in summary["groups"][0]["metrics"] else "negative_elbo"
  panels = [(name, metric_table.METRICS[name].label)
            for name in ("kl", "mi_aggregate", "active_units_cov_ge_0.01", nll)]
  figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2))
  positions = np.arange(len(study.knob_labels))
  for model in study.config.models:
    # A partial study may lack a knob value: plot the values that have evaluated runs.
    groups = {g["knob_label"]: g for g in summary["groups"] if g["model"] == model}
    present = [i for i, label in enumerate(study.knob_labels) if label in groups]
    for axis, (metric, label) in zip(axes, panels):
      cells = [groups[study.knob_labels[i]]["metrics"].get(metric) for i in present]
      means = [c["mean"] if c else np.nan for c in cells]
      stds = [(c["std"] or 0.0) if c else 0.0 for c in cells]
      axis.errorbar(positions[present], means, yerr=stds, marker="o", capsize=3,
                    label=model)
      axis.set_xticks(positions, study.knob_labels)
      axis.set_xlabel(study.knob)
      axis.set_ylabel(f"test {label}")
  axes[0].legend(fontsize="small")
  figure.tight_layout()
  return _save(figure, folder, "knob.png")


def samples(records: list[dict], folder: pathlib.Path) -> str:
  firsts = [members[0] for members in _groups(records).values()]
  rows = [(f"{r['group']}: {kind.replace('_', ' ')}", np.array(r["samples"][kind]))
          for r in firsts for kind in ("originals", "reconstructions", "prior_samples")]
  figure, axes = plt.subplots(len(rows), 1, figsize=(8, 0.9 * len(rows) + 0.3))
  for axis, (title, images) in zip(np.atleast_1d(axes), rows):
    axis.imshow(np.concatenate(list(images), axis=1), cmap="gray_r", vmin=0, vmax=1,
                interpolation="nearest")
    axis.set_title(title, fontsize="small", loc="left")
    axis.axis("off")
  figure.tight_layout()
  return _save(figure, folder, "samples.png")


def write_all(study, records: list[dict], summary: dict, folder: pathlib.Path) -> list[str]:
  """Draws every figure that applies to the study; returns their file names."""
  names = [curves(records, folder), kl_per_dimension(records, folder)]
  if study.knob:
    names.append(knob(study, summary, folder))
  first_samples = records[0]["samples"]
  if first_samples and not isinstance(first_samples["originals"][0], str):
    names.append(samples(records, folder))
  return names
