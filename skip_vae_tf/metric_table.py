"""The one table of reported metrics: name, short label, description, unit, which direction is
better, protocol, and where each appears. TensorBoard descriptions (`summaries`), study
reports and their verdicts (`studies.report`), figures and the docs' metric list
(docs/metrics.md, checked by a test) read it; a new metric is one `register` call beside the
code that computes it, or one entry here.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Metric:
  """One reported scalar.

  Attributes:
    name: its key in eval_<split>.json, metrics.json, metrics.jsonl and TensorBoard.
    label: its column header in study reports.
    description: what it is, in units (TensorBoard's description).
    unit: 'nats', 'nats per word', 'count', 'fraction', 'perplexity'...
    better: 'lower', 'higher', or '' (neither: a diagnostic).
    protocol: where the definition comes from ('' when it is the textbook one).
    role: 'likelihood' (what a verdict calls better or worse), 'information' (what z
      carries: the paper's claim), or ''.
    validation: logged at each validation and an HParams metric.
    compared: a column of a study's paired (skip - no skip) differences.
  """
  name: str
  label: str
  description: str
  unit: str
  better: str = ""
  protocol: str = ""
  role: str = ""
  validation: bool = False
  compared: bool = False


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
  """Adds `metric` to the table (ValueError when its name is taken); returns it."""
  if metric.name in METRICS:
    raise ValueError(f"metric {metric.name!r} is already in the table")
  METRICS[metric.name] = metric
  return metric


def named(role: str = "", validation: bool | None = None,
          compared: bool | None = None) -> tuple[str, ...]:
  """Names of the metrics with the given role / flags, in table order."""
  return tuple(m.name for m in METRICS.values()
               if (not role or m.role == role)
               and (validation is None or m.validation == validation)
               and (compared is None or m.compared == compared))


for _metric in (
    Metric("iw_nll", "IW-NLL", "importance-weighted bound on -log p(x) with K samples, nats "
           "per example", "nats", "lower", "Burda et al. 2016", "likelihood", compared=True),
    Metric("negative_elbo", "-ELBO", "negative ELBO, nats per example (one posterior sample, "
           "analytic KL)", "nats", "lower", validation=True, compared=True),
    Metric("reconstruction_nll", "recon. NLL", "-log p(x|z) at z ~ q(z|x), nats per example",
           "nats", "lower", validation=True),
    Metric("kl", "KL", "KL(q(z|x) || p(z)), analytic, nats per example", "nats", "",
           role="information", validation=True, compared=True),
    Metric("mi_aggregate", "MI", "I_q(x;z) with q(z) aggregated over the whole split "
           "(Skip-VAE), nats", "nats", "higher", "Dieng et al. 2019 (official code)",
           "information", validation=True, compared=True),
    Metric("mi_minibatch_he2019", "MI (He)", "I_q(x;z) with q(z) aggregated per minibatch "
           "(He et al. 2019), nats", "nats", "higher", "He et al. 2019 (calc_mi)",
           "information", validation=True, compared=True),
    Metric("active_units_cov_ge_0.01", "AU >= .01", "latent dims with Cov_x(E_q[z|x]) >= 0.01 "
           "over the split", "count", "higher", "He et al. 2019 (calc_au)", "",
           validation=True, compared=True),
    Metric("active_units_cov_gt_0.02", "AU > .02", "latent dims with Cov_x(E_q[z|x]) > 0.02 "
           "over the split", "count", "higher", "Dieng et al. 2019 (official code)",
           "information", validation=True, compared=True),
    Metric("linear_probe_accuracy", "probe acc", "accuracy of a logistic regression on "
           "posterior means (labels: digits, Omniglot characters)", "fraction", "higher",
           role="information", compared=True),
    Metric("perplexity_bound", "PPL bound", "exp(negative_elbo_per_word): an upper bound on "
           "the perplexity", "perplexity", "lower", validation=True),
    Metric("perplexity_iw", "PPL (IW)", "exp(iw_nll_per_word): a tighter upper bound on the "
           "perplexity", "perplexity", "lower"),
    Metric("reconstruction_nll_per_word", "recon. NLL / word", "-log p(x|z) summed over the "
           "set / words, nats per word", "nats per word", "lower"),
    Metric("negative_elbo_per_word", "-ELBO / word", "negative ELBO summed over the set / "
           "words, nats per word", "nats per word", "lower"),
    Metric("iw_nll_per_word", "IW-NLL / word", "iw_nll summed over the set / words, nats per "
           "word", "nats per word", "lower"),
    Metric("amortization_gap", "amort. gap", "amortized minus refined negative ELBO "
           "(semi-amortized models), nats per example", "nats", ""),
):
  register(_metric)
