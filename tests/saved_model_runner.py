r"""Test helper, run as a fresh process: what a TF Serving server does with client requests.

  python tests/saved_model_runner.py SAVED_MODEL REQUEST_DIR OUT_DIR

Loads SAVED_MODEL with `tf.saved_model.load`; for each REQUEST_DIR/<name>.pb (a serialized
tensorflow_serving PredictRequest) writes OUT_DIR/<name>.pb, the PredictResponse of the
request's signature; for each REQUEST_DIR/<name>.json (a REST `:predict` body, columnar
"inputs" or row "instances") writes OUT_DIR/<name>.json, the REST response body.
"""

import base64
import json
import pathlib
import sys

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2


def _rest_value(array: np.ndarray):
  """An output as TF Serving's REST API writes it: nested lists, strings as UTF-8 text."""
  if array.dtype.kind in "SO":
    return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array).tolist()
  return array.tolist()


def _rest_inputs(body: dict, signature) -> dict[str, tf.Tensor]:
  """TF Serving's REST rules: columnar {"inputs": {name: value}} or row {"instances":
  [{name: value}, ...]}; values take the signature's dtypes; {"b64": ...} is bytes."""
  specs = signature.structured_input_signature[1]
  if "inputs" in body:
    columns = body["inputs"]
  else:
    columns = {name: [row[name] for row in body["instances"]] for name in specs}

  def decode(value):
    if isinstance(value, dict):
      return base64.b64decode(value["b64"])
    return [decode(v) for v in value] if isinstance(value, list) else value

  return {name: tf.constant(np.array(decode(columns[name]),
                                     dtype=object if spec.dtype == tf.string
                                     else spec.dtype.as_numpy_dtype))
          for name, spec in specs.items()}


def main(saved_model: str, request_dir: str, out_dir: str) -> None:
  loaded = tf.saved_model.load(saved_model)
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  for path in sorted(pathlib.Path(request_dir).iterdir()):
    if path.suffix == ".pb":
      request = predict_pb2.PredictRequest.FromString(path.read_bytes())
      signature = loaded.signatures[request.model_spec.signature_name]
      outputs = signature(**{name: tf.constant(tf.make_ndarray(proto))
                             for name, proto in request.inputs.items()})
      response = predict_pb2.PredictResponse()
      response.model_spec.CopyFrom(request.model_spec)
      for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
      (out / path.name).write_bytes(response.SerializeToString())
    elif path.suffix == ".json":
      body = json.loads(path.read_text())
      signature = loaded.signatures[body.get("signature_name", "serving_default")]
      outputs = signature(**_rest_inputs(body, signature))
      (out / path.name).write_text(json.dumps(
          {"outputs": {name: _rest_value(value.numpy()) for name, value in outputs.items()}}))


if __name__ == "__main__":
  main(*sys.argv[1:])
