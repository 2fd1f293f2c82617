"""bin/train.py and bin/evaluate.py end to end on real PTB and the reduced Yahoo protocol."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
import tensorflow as tf

from conftest import REPO_ROOT
from skip_vae_tf import evaluation
from skip_vae_tf import evaluators
from skip_vae_tf import workdir as workdir_lib
from skip_vae_tf.data import text


def _run(script, args, data_dir, cache_dir, timeout=400):
  env = dict(os.environ, SKIP_VAE_DATA_DIR=str(data_dir), SKIP_VAE_CACHE_DIR=str(cache_dir),
             TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, str(REPO_ROOT / "bin" / script), *args], env=env,
                        capture_output=True, text=True, timeout=timeout, check=False)


def _tags(run_dir) -> set[str]:
  accumulator = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
  accumulator.Reload()
  tags = accumulator.Tags()
  return set(tags["tensors"]) | set(tags["histograms"])


def _text_summary(run_dir, tag: str) -> str:
  accumulator = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
  accumulator.Reload()
  proto = accumulator.Tensors(tag)[-1].tensor_proto
  return proto.string_val[0].decode()


TRAIN_TAGS = {"negative_elbo", "reconstruction_nll", "reconstruction_nll_per_word", "kl",
              "perplexity_bound", "tokens_per_sec", "learning_rate", "kl_weight",
              "mi_minibatch_he2019"}
VALIDATION_TAGS = {"negative_elbo", "reconstruction_nll_per_word", "kl", "mi_aggregate",
                   "mi_minibatch_he2019", "active_units_cov_ge_0.01", "perplexity_bound",
                   "kl_per_dim", "reconstructions", "prior_samples"}


@pytest.fixture(scope="module")
def ptb_run(tmp_path_factory, data_dir, cache_dir):
  workdir = tmp_path_factory.mktemp("ptb") / "run"
  first = _run("train.py", ["--smoke", "--dataset=ptb", "--skip=true",
                            "--config.train.epochs=1", f"--workdir={workdir}"],
               data_dir, cache_dir)
  assert first.returncode == 0, first.stderr[-3000:]
  return workdir, first


def test_ptb_smoke_run_writes_checkpoints_events_and_text(ptb_run):
  workdir, result = ptb_run
  assert "tokens/s" in result.stderr and "ppl bound" in result.stderr
  metrics = json.loads((workdir / "metrics.json").read_text())
  steps = metrics["steps"]
  assert steps > 0 and list((workdir / "checkpoints").glob(f"ckpt-{steps}.index"))
  assert list((workdir / "best").glob("ckpt-*.index"))
  assert "vocabulary of 10002 built from train" in metrics["data_source"]
  assert "per word" in metrics["units"] and "</s>" in metrics["units"]
  test = metrics["test"]
  assert test["perplexity_bound"] == pytest.approx(
      math.exp(test["negative_elbo"] / test["words_per_sentence"]), rel=1e-6)
  assert test["negative_elbo"] == pytest.approx(test["reconstruction_nll"] + test["kl"], rel=1e-5)
  assert TRAIN_TAGS <= _tags(workdir / "train")
  assert VALIDATION_TAGS <= _tags(workdir / "validation")
  reconstructions = _text_summary(workdir / "validation", "reconstructions")
  assert reconstructions.startswith("| validation sentence | greedy decode")
  # Lines: header, rule, and one row per logged sample (train.num_logged_samples = 4).
  assert len(reconstructions.splitlines()) == 2 + 4
  assert len(_text_summary(workdir / "validation", "prior_samples").splitlines()) == 2 + 4


def test_ptb_run_resumes_where_it_stopped(ptb_run, data_dir, cache_dir):
  workdir, _ = ptb_run
  steps = json.loads((workdir / "metrics.json").read_text())["steps"]
  result = _run("train.py", ["--smoke", "--dataset=ptb", "--skip=true",
                             "--config.train.epochs=2", f"--workdir={workdir}"],
                data_dir, cache_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"Resumed from step {steps}" in result.stderr
  assert json.loads((workdir / "metrics.json").read_text())["steps"] == 2 * steps


def test_evaluate_reports_per_word_metrics_for_text(ptb_run, data_dir, cache_dir):
  workdir, _ = ptb_run
  result = _run("evaluate.py", [f"--workdir={workdir}", "--iw_samples=4", "--iw_chunk=2",
                                "--max_examples=40"], data_dir, cache_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  scalars = json.loads((workdir / "eval_test.json").read_text())["metrics"]
  words = scalars["words_per_sentence"]
  assert scalars["iw_nll_per_word"] == pytest.approx(scalars["iw_nll"] / words, rel=1e-9)
  assert scalars["perplexity_iw"] == pytest.approx(math.exp(scalars["iw_nll_per_word"]))
  assert scalars["perplexity_bound"] == pytest.approx(math.exp(scalars["negative_elbo"] / words))
  assert "linear_probe_accuracy" not in scalars  # No labels for text.


def test_text_evaluation_is_in_stored_order_whatever_the_batch_size(ptb_run, data_dir):
  workdir, _ = ptb_run
  reports = [evaluation.evaluate_run(str(workdir), evaluation.EvaluationRequest(
      "validation", iw_samples=0, batch_size=size, data_dir=str(data_dir)))
             for size in (128, 7)]
  first, second = (r["metrics"] for r in reports)
  for name in ("kl", "words_per_sentence", "active_units_cov_ge_0.01"):
    assert first[name] == pytest.approx(second[name], rel=1e-5), name
  np.testing.assert_allclose(reports[0]["kl_per_dim"], reports[1]["kl_per_dim"], rtol=1e-5)
  # Means cannot see the order: compare per-example outputs, in the file's order, with the
  # model applied to each sentence alone (batches visit the sentences sorted by length).
  # float32: bfloat16 products depend on what else is in the batch (about 4e-4 relative).
  config, task, model, _ = evaluation.restore_model(workdir_lib.Workdir(workdir), "best",
                                                    "float32")
  config.data.data_dir = str(data_dir)
  data = task.load_data(config.data, config.seed)
  evaluator = evaluators.PosteriorEvaluator(model, tf.distribute.get_strategy(), 7, 500,
                                            jit_compile=False)
  kl = evaluator.outputs(data, "validation")["kl"]
  corpus = data.validation
  assert not np.array_equal(text.evaluation_order(corpus), np.arange(len(corpus)))
  for index in (0, 1, int(np.argmax(corpus.lengths)), len(corpus) - 1):
    alone = model(tf.constant(corpus.padded([index])))["kl"].numpy()[0]
    assert kl[index] == pytest.approx(alone, rel=1e-4), index


def test_yahoo_small_says_it_is_the_reduced_protocol(tmp_path, data_dir, cache_dir):
  result = _run("train.py", ["--smoke", "--dataset=yahoo_small", "--skip=false",
                             "--config.train.epochs=1", "--config.data.max_eval_examples=32",
                             f"--workdir={tmp_path}"], data_dir, cache_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "REDUCED PROTOCOL" in result.stderr
  metrics = json.loads((tmp_path / "metrics.json").read_text())
  assert "REDUCED PROTOCOL" in metrics["data_source"] and metrics["skip"] is False
  assert {"perplexity_bound", "mi_aggregate", "kl"} <= set(metrics["test"])
  assert "REDUCED PROTOCOL" in _text_summary(tmp_path, "data_source")
  assert VALIDATION_TAGS <= _tags(tmp_path / "validation")


@pytest.mark.parametrize("args,message", [
    (["--dataset=yahoo"], "--dataset=yahoo_small"),
    (["--dataset=ptb", "--config=configs/omniglot.py"],
     "'ptb' is a text dataset but the config is for image models"),
    (["--dataset=ptb", "--config.model.decoder_dropout=1.5"], "model.decoder_dropout"),
])
def test_text_misconfigurations_stop_with_a_one_line_error(args, message, tmp_path, data_dir,
                                                           cache_dir):
  result = _run("train.py", ["--smoke", f"--workdir={tmp_path}", *args], data_dir, cache_dir)
  assert result.returncode != 0
  assert message in result.stderr and "Traceback" not in result.stderr
