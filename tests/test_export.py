"""SavedModel export, checked the way TF Serving would run it: in fresh processes,
`saved_model_cli show/run` (the session-based loader the server uses), `tf.saved_model.load`,
and PredictRequest / REST round trips, for VAE and Skip-VAE, image and text."""

import json
import os
import pathlib
import re
import resource
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from conftest import REPO_ROOT
from skip_vae_tf import config as config_lib
from skip_vae_tf import evaluation
from skip_vae_tf import export
from skip_vae_tf import serving
from skip_vae_tf import training
from skip_vae_tf import workdir as workdir_lib

CASES = [("omniglot", False), ("omniglot", True), ("ptb", False), ("ptb", True)]
# The fresh-process tests load the SavedModel in a new interpreter; serving does not depend
# on skips, so they take one case of each modality.
ONE_PER_MODALITY = pytest.mark.parametrize(
    "exported", [("omniglot", True), ("ptb", False)], indirect=True,
    ids=["omniglot-skip_True", "ptb-skip_False"])
SAVED_MODEL_CLI = str(pathlib.Path(sys.executable).parent / "saved_model_cli")
IW_SAMPLES = 5


def _env(data_dir, cache_dir):
  return dict(os.environ, SKIP_VAE_DATA_DIR=str(data_dir), SKIP_VAE_CACHE_DIR=str(cache_dir),
              TF_CPP_MIN_LOG_LEVEL="2")


def _checked(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
  result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def _make_run(workdir: pathlib.Path, dataset: str, skip: bool, data_dir, cache_dir) -> None:
  """A smoke-sized run's workdir (config.json, vocabulary, checkpoints) at its initial weights."""
  config = config_lib.apply_smoke(config_lib.default_config(dataset))
  config.model.skip = skip
  config.data.data_dir, config.data.cache_dir = str(data_dir), str(cache_dir)
  trainer = training.Trainer(config, str(workdir))
  trainer.state.latest.save(checkpoint_number=0)
  trainer.state.best.save(checkpoint_number=0)
  trainer.workdir.release()  # Other processes (bin/export.py) use the run next.


@pytest.fixture(scope="module", params=CASES, ids=[f"{d}-skip_{s}" for d, s in CASES])
def exported(request, tmp_path_factory, data_dir, cache_dir):
  dataset, skip = request.param
  root = tmp_path_factory.mktemp(f"{dataset}_skip_{skip}")
  _make_run(root / "run", dataset, skip, data_dir, cache_dir)
  version = export.export_run(str(root / "run"), str(root / "serving"), iw_samples=IW_SAMPLES)
  run = workdir_lib.Workdir(root / "run")
  config, task, model, _ = evaluation.restore_model(run, "best")
  task.restore_run_files(run, config)
  signatures = serving.Signatures(model, task, IW_SAMPLES, 0)
  inputs = serving.example_inputs(signatures, batch=3)
  expected = {name: {k: v.numpy() for k, v in tf.function(fn)(
      *[tf.constant(a) for a in inputs[name].values()]).items()}
              for name, fn in signatures.functions().items()}
  return types.SimpleNamespace(case=request.param, root=root, version=version,
                               signatures=signatures,
                               inputs=inputs, expected=expected,
                               is_text=config_lib.modality(config) == "text")


def _assert_outputs_equal(expected: dict, actual: dict, where: str) -> None:
  assert set(actual) == set(expected), where
  for key, value in expected.items():
    got = np.asarray(actual[key])
    if value.dtype.kind == "f":
      np.testing.assert_allclose(got, value, atol=1e-5, rtol=0, err_msg=f"{where} {key}")
    else:
      np.testing.assert_array_equal(got.astype(value.dtype), value, err_msg=f"{where} {key}")


def test_version_folder_and_export_info(exported):
  assert exported.version == exported.root / "serving" / "1"
  assert (exported.version / "saved_model.pb").is_file()
  assert not [p for p in (exported.root / "serving").iterdir() if p.name != "1"]
  info = json.loads((exported.version / "assets.extra" / export.EXPORT_INFO).read_text())
  assert info["checkpoint"].endswith("best/ckpt-0") and info["iw_samples"] == IW_SAMPLES
  assert info["signatures"] == list(serving.SIGNATURES)
  assert info["limits"] == {"max_batch": 256, "max_decodes": 64, "max_words": 400,
                            "max_tokens": 16384}


def _dtype_name(dtype: tf.DType) -> str:
  return {tf.float32: "DT_FLOAT", tf.int32: "DT_INT32", tf.int64: "DT_INT64",
          tf.string: "DT_STRING"}[dtype]


def _shape_text(shape) -> str:
  if isinstance(shape, tf.TensorShape) and shape.rank is None:
    return "unknown_rank"  # The signatures check shapes in the graph, naming the input.
  dims = ["-1" if d is None else str(d) for d in shape]
  return "()" if not dims else f"({dims[0]})" if len(dims) == 1 else f"({', '.join(dims)})"


def test_saved_model_cli_show_lists_every_signature(exported):
  result = _checked([SAVED_MODEL_CLI, "show", "--all", "--dir", str(exported.version)])
  blocks = dict(re.findall(r"signature_def\['(\w+)'\]:\n(.*?)Method name is",
                           result.stdout, re.S))
  for name, specs in exported.signatures.input_signatures().items():
    block = blocks[name]
    for spec in specs:
      assert re.search(rf"inputs\['{spec.name}'\] tensor_info:\s+dtype: {_dtype_name(spec.dtype)}"
                       rf"\s+shape: {re.escape(_shape_text(spec.shape))}", block), (name, spec)
    for key, value in exported.expected[name].items():
      dims = ["-1"] + [str(d) for d in value.shape[1:]] if value.ndim else []
      shape = _shape_text([None if d == "-1" else d for d in dims])
      assert re.search(rf"outputs\['{key}'\] tensor_info:\s+dtype: "
                       rf"{_dtype_name(tf.as_dtype(value.dtype) if value.dtype.kind != 'O' else tf.string)}"
                       rf"\s+shape: {re.escape(shape)}", block), (name, key, block)


# One signature per exported model through saved_model_cli (each run is a fresh process that
# loads TensorFlow): every signature on both modalities; the fresh-process test below sends
# every signature of every model.
CLI_SIGNATURE = {("omniglot", False): "encode", ("omniglot", True): "decode",
                 ("ptb", False): "score", ("ptb", True): "decode"}


def test_saved_model_cli_run_reproduces_the_in_process_model(exported):
  name = CLI_SIGNATURE[exported.case]
  folder = exported.root / f"cli_{name}"
  folder.mkdir()
  feeds = []
  for key, value in exported.inputs[name].items():
    np.save(folder / f"{key}.npy", value)
    feeds.append(f"{key}={folder / f'{key}.npy'}")
  _checked([SAVED_MODEL_CLI, "run", "--dir", str(exported.version), "--tag_set", "serve",
            "--signature_def", name, "--inputs", ";".join(feeds), "--outdir", str(folder / "out")])
  actual = {path.stem: np.load(path, allow_pickle=True) for path in (folder / "out").iterdir()}
  _assert_outputs_equal(exported.expected[name], actual, f"saved_model_cli run {name}")


def _rest_examples() -> list[dict]:
  """The complete JSON request bodies of docs/serving.md (elided ones, with '...', are not)."""
  bodies = []
  for block in re.findall(r"```json\n(.*?)```", (REPO_ROOT / "docs" / "serving.md").read_text(),
                          re.S):
    try:
      body = json.loads(block)
    except json.JSONDecodeError:
      continue
    if "inputs" in body or "instances" in body:
      bodies.append(body)
  return bodies


@ONE_PER_MODALITY
def test_fresh_process_serves_predict_requests_and_rest_bodies(exported):
  requests, responses = exported.root / "requests", exported.root / "responses"
  requests.mkdir()
  for name, inputs in exported.inputs.items():
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "skip_vae", name
    for key, value in inputs.items():
      request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    (requests / f"{name}.pb").write_bytes(request.SerializeToString())
  rest = _rest_examples() if exported.is_text else []
  for index, body in enumerate(rest):
    (requests / f"rest_{index}.json").write_text(json.dumps(body))
  _checked([sys.executable, str(REPO_ROOT / "tests" / "saved_model_runner.py"),
            str(exported.version), str(requests), str(responses)])
  for name in exported.inputs:
    response = predict_pb2.PredictResponse.FromString((responses / f"{name}.pb").read_bytes())
    assert response.model_spec.signature_name == name
    _assert_outputs_equal(exported.expected[name],
                          {k: tf.make_ndarray(v) for k, v in response.outputs.items()},
                          f"PredictResponse {name}")
  for index, body in enumerate(rest):
    outputs = json.loads((responses / f"rest_{index}.json").read_text())["outputs"]
    name = body["signature_name"]
    function = exported.signatures.functions()[name]
    columns = body.get("inputs") or {k: [row[k] for row in body["instances"]]
                                      for k in body["instances"][0]}
    specs = exported.signatures.input_signatures()[name]
    expected = tf.function(function)(*[tf.constant(columns[s.name], s.dtype) for s in specs])
    for key, value in expected.items():
      value = value.numpy()
      if value.dtype.kind == "O":
        assert outputs[key] == [v.decode() for v in value]
      else:
        np.testing.assert_allclose(outputs[key], value, atol=1e-5)
  if exported.is_text:
    assert len(rest) >= 3  # The docs' encode, score and sample examples ran.


def _messages(error: BaseException) -> str:
  """The error and the errors it was raised from or while handling, as one text."""
  texts = []
  while error is not None:
    texts.append(str(error))
    error = error.__cause__ or error.__context__
  return "\n".join(texts)


def test_wrong_dtype_or_shape_fails_at_the_signature_naming_the_input(exported):
  loaded = tf.saved_model.load(str(exported.version))
  encode = loaded.signatures["encode"]
  good = exported.inputs["encode"]
  first = exported.signatures.adapter.input_spec().name
  seed = tf.constant(good["seed"][:2])
  wrong_dtype = (tf.zeros([2, 28, 28, 1], tf.float64) if not exported.is_text
                 else tf.constant([1, 2]))
  with pytest.raises(Exception) as error:  # TF raises TypeError or InvalidArgumentError.
    encode(**{first: wrong_dtype, "seed": seed})
  assert f"name='{first}'" in _messages(error.value)
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(
      "input seed must be [batch] int64, one per example, got shape [1 2]")):
    encode(**{first: tf.constant(good[first][:2]), "seed": tf.constant([[1, 2]], tf.int64)})
  wrong_shape, expected = (
      (tf.zeros([2, 32, 32, 1]), "input x must be [batch, 28, 28, 1] float32 in [0, 1], got "
                                 "shape [2 32 32 1]") if not exported.is_text
      else (tf.constant([["a"], ["b"]]), "input text must be [batch] strings, one sentence "
                                         "each, got shape [2 1]"))
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(expected)):
    encode(**{first: wrong_shape, "seed": seed})
  latent_dim = exported.signatures.latent_dim
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(
      f"input z must be [batch, {latent_dim}] float32, got shape [2 {latent_dim + 1}]")):
    loaded.signatures["decode"](z=tf.zeros([2, latent_dim + 1]))


def test_saved_model_cli_rejects_a_wrong_shape_naming_the_input(exported, tmp_path):
  if exported.is_text:
    bad, expected = np.array([["a", "b"]], dtype=object), "input text must be [batch] strings"
    name = "text"
  else:
    bad, expected = np.zeros([2, 28, 28], np.float32), "input x must be [batch, 28, 28, 1]"
    name = "x"
  np.save(tmp_path / "bad.npy", bad)
  result = subprocess.run([SAVED_MODEL_CLI, "run", "--dir", str(exported.version), "--tag_set",
                           "serve", "--signature_def", "score", "--inputs",
                           f"{name}={tmp_path / 'bad.npy'}"], capture_output=True, text=True,
                          timeout=300, check=False, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode != 0
  assert expected in result.stderr


# ---- bin/export.py, versions, atomicity --------------------------------------------------

@pytest.fixture(scope="module")
def text_run(tmp_path_factory, data_dir, cache_dir):
  workdir = tmp_path_factory.mktemp("cli") / "run"
  _make_run(workdir, "ptb", True, data_dir, cache_dir)
  return workdir


def _export_cli(args, data_dir, cache_dir, preexec_fn=None):
  return subprocess.run([sys.executable, str(REPO_ROOT / "bin" / "export.py"), *args],
                        env=_env(data_dir, cache_dir), capture_output=True, text=True,
                        timeout=300, check=False, preexec_fn=preexec_fn)


def _full_disk():
  """preexec_fn: no file the export writes can grow past 20 kB (EFBIG, as a full disk)."""
  resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_cli_exports_increasing_versions(text_run, tmp_path, data_dir, cache_dir):
  serving_dir = tmp_path / "serving"
  (serving_dir / "7").mkdir(parents=True)  # An older version someone kept.
  (serving_dir / "notes").mkdir()
  for expected in ("8", "9"):
    result = _export_cli([f"--workdir={text_run}", f"--export_dir={serving_dir}",
                          "--checkpoint=latest", "--iw_samples=3"], data_dir, cache_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"Exported {serving_dir / expected}"
  assert sorted(p.name for p in serving_dir.iterdir()) == ["7", "8", "9", "notes"]
  info = json.loads((serving_dir / "9" / "assets.extra" / export.EXPORT_INFO).read_text())
  assert info["iw_samples"] == 3 and info["checkpoint"].endswith("checkpoints/ckpt-0")


def test_failed_verification_publishes_nothing(text_run, tmp_path, monkeypatch):
  def broken_verify(path, signatures, functions):
    del signatures, functions
    assert (path / "saved_model.pb").is_file()  # Written in full before the check.
    raise export.ExportError("verification failed: injected")
  monkeypatch.setattr(export, "verify", broken_verify)
  with pytest.raises(export.ExportError, match="injected"):
    export.export_run(str(text_run), str(tmp_path / "serving"))
  assert list((tmp_path / "serving").iterdir()) == []


def test_verification_catches_a_saved_model_that_differs(text_run, tmp_path):
  run = workdir_lib.Workdir(text_run)
  config, task, model, _ = evaluation.restore_model(run, "best")
  task.restore_run_files(run, config)
  serving.export_archive(serving.Signatures(model, task, 3, 0))[0].write_out(
      str(tmp_path / "saved"), verbose=False)
  with pytest.raises(export.ExportError, match="differs from the in-process model"):
    export.verify(tmp_path / "saved", serving.Signatures(model, task, 3, 1))


@pytest.mark.parametrize("breakage, message", [
    ("no_workdir", "config.json not found"),
    ("other_model", "does not hold the model that"),
    ("vocabulary", "does not match the model's vocab_size"),
    ("full_disk", "cannot write the export under"),
])
def test_cli_errors_are_one_line(breakage, message, text_run, tmp_path, data_dir, cache_dir):
  workdir = tmp_path / "run"
  if breakage != "no_workdir":
    shutil.copytree(text_run, workdir)
  if breakage == "other_model":
    saved = json.loads((workdir / "config.json").read_text())
    saved["model"]["decoder_hidden"] = [48]
    (workdir / "config.json").write_text(json.dumps(saved))
  if breakage == "vocabulary":
    lines = (workdir / workdir_lib.VOCABULARY_FILE).read_text().splitlines()
    (workdir / workdir_lib.VOCABULARY_FILE).write_text("\n".join(lines[:-1]) + "\n")
  result = _export_cli([f"--workdir={workdir}", f"--export_dir={tmp_path / 'serving'}"],
                       data_dir, cache_dir, _full_disk if breakage == "full_disk" else None)
  assert result.returncode != 0
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("export.py: error:") and message in last, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "serving").exists() or not list((tmp_path / "serving").iterdir())


def test_verification_tolerance_follows_float32_resolution():
  """A ~500-nat score resolved to one float32 ulp (6.1e-5) passes; a real difference not."""
  score = np.array([512.25, 0.125, 590.0], np.float32)
  one_ulp = np.nextafter(score, np.float32(np.inf))
  assert not np.allclose(score, one_ulp, atol=export.VERIFY_ATOL, rtol=0)  # The old check.
  assert export.outputs_agree(score, one_ulp)
  assert not export.outputs_agree(score, score + np.float32(1e-3))
  assert not export.outputs_agree(score, np.where([True, False, False], np.nan, score))
  assert export.outputs_agree(np.array([3, 4]), np.array([3, 4]))
  assert not export.outputs_agree(np.array([b"a"]), np.array([b"b"]))


def test_staging_folders_of_killed_exports_are_removed_and_live_ones_kept(tmp_path):
  finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                            capture_output=True, text=True, check=True)
  dead_pid, host = int(finished.stdout), export.socket.gethostname()
  dead = tmp_path / f".export-{host}-{dead_pid}-20261122120000000000"
  live = tmp_path / f".export-{host}-{os.getpid()}-20261122120000000000"
  elsewhere = tmp_path / f".export-other-host-{dead_pid}-20261122120000000000"
  version = tmp_path / "1"
  for folder in (dead, live, elsewhere, version):
    (folder / "variables").mkdir(parents=True)
  assert export.remove_stale_staging(tmp_path) == [dead]
  assert not dead.exists() and live.exists() and elsewhere.exists() and version.exists()


_REFUSED = {
    "encode_batch": "the batch of 257 exceeds the export limit of 256 per request "
                    "(bin/export.py --max_batch)",
    "score_batch": "the batch of 257 exceeds",
    "encode_empty": "must hold at least one example",
    "score_empty": "must hold at least one example",
    "encode_one_seed_for_two": "input seed must hold one int64 per example",
    "encode_three_seeds_for_two": "input seed must hold one int64 per example",
    "decode_batch": "input z: the batch of 65 exceeds the export limit of 64",
    "decode_empty": "input z must hold at least one example",
    "sample_0": "input num_samples must be >= 1",
    "sample_-5": "input num_samples must be >= 1",
    "sample_65": "input num_samples 65 exceeds the export limit of 64 per request "
                 "(bin/export.py --max_decodes)",
    "sample_20000": "input num_samples 20000 exceeds",
    "sample_2147483647": "input num_samples 2147483647 exceeds",
    "encode_words": "input text: a sentence of 2000000 exceeds the export limit of 400",
    "score_words": "input text: a sentence of 2000000 exceeds",
    # 16384 // 402 + 1 = 41 sentences of 400 words, padded to 402 tokens each.
    "encode_tokens": "(tokens) 16482 exceeds the export limit of 16384",
    "score_tokens": "(tokens) 16482 exceeds",
}


@ONE_PER_MODALITY
def test_every_limit_of_every_signature_refuses_before_any_work(exported, tmp_path):
  """Through the loaded SavedModel in a fresh process: each request is refused with its
  named message (as `serving.refusal` reads it), and the refusals together raise the
  process's peak RSS by less than 100 MB (padding the 2M-word line would take gigabytes)."""
  out = tmp_path / "refusals.json"
  _checked([sys.executable, str(REPO_ROOT / "tests" / "serving_refusals.py"),
            str(exported.version), str(out)], timeout=600)
  result = json.loads(out.read_text())
  expected = {case: message for case, message in _REFUSED.items()
              if exported.is_text or not case.endswith(("_words", "_tokens"))}
  assert set(result["refusals"]) == set(expected)
  for case, message in expected.items():
    assert message in result["refusals"][case], (case, result["refusals"][case])
    assert result["refusals"][case].startswith("input "), case
  assert result["peak_rss_growth_mb"] < 100, result
