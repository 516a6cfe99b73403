"""OIP v2 over gRPC without a server: request documents become ``ModelInferRequest`` messages
(typed contents by datatype, typed parameters) and answers — typed or raw contents — become the
JSON the HTTP protocol answers. The wire itself is tested against real MLServer and KServe
(tests/servers)."""

from __future__ import annotations

import struct

from mlchaos.traffic._grpc import _messages, _request, _response, grpc_error


def test_a_request_document_becomes_typed_tensor_contents_and_parameters() -> None:
    document = {
        "id": "7",
        "parameters": {"content_type": "pd", "flag": True, "n": 3},
        "inputs": [
            {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [0.5, 1.0, 1.5, 2.0]},
            {"name": "t", "shape": [2], "datatype": "BYTES", "data": ["a", "bé"]},
            {
                "name": "k",
                "shape": [2],
                "datatype": "INT64",
                "data": [1, 2],
                "parameters": {"content_type": "np"},
            },
        ],
        "outputs": [{"name": "predict_proba"}],
    }
    wire = _request(document, "m", "2").SerializeToString()
    message = _messages()["ModelInferRequest"].FromString(wire)
    assert (message.model_name, message.model_version, message.id) == ("m", "2", "7")
    params = {p.key: p.value.WhichOneof("parameter_choice") for p in message.parameters}
    assert params == {"content_type": "string_param", "flag": "bool_param", "n": "int64_param"}
    x, t, k = message.inputs
    assert list(x.shape) == [2, 2] and list(x.contents.fp64_contents) == [0.5, 1.0, 1.5, 2.0]
    assert list(t.contents.bytes_contents) == [b"a", "bé".encode()]
    assert list(k.contents.int64_contents) == [1, 2]
    assert [o.name for o in message.outputs] == ["predict_proba"]


def test_answers_in_typed_contents_read_as_the_http_json() -> None:
    response = _messages()["ModelInferResponse"](model_name="m", model_version="1", id="7")
    typed = response.outputs.add(name="predict", datatype="INT64", shape=[2, 1])
    typed.contents.int64_contents.extend([0, 1])
    assert _response(response) == {
        "model_name": "m",
        "model_version": "1",
        "id": "7",
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [2, 1], "data": [0, 1]}],
    }


def test_answers_in_raw_contents_are_decoded_by_datatype() -> None:
    # Raw contents (Triton's way) are positional, one entry per output: little-endian values,
    # BYTES as 4-byte little-endian lengths each followed by its bytes.
    response = _messages()["ModelInferResponse"](model_name="m")
    response.outputs.add(name="proba", datatype="FP32", shape=[2])
    response.outputs.add(name="label", datatype="BYTES", shape=[2])
    response.raw_output_contents.extend(
        [struct.pack("<2f", 0.25, 0.75), b"\x03\x00\x00\x00cat\x03\x00\x00\x00dog"]
    )
    assert [o["data"] for o in _response(response)["outputs"]] == [[0.25, 0.75], ["cat", "dog"]]


def test_only_grpc_failures_are_read_as_grpc_status() -> None:
    assert grpc_error(ValueError("not gRPC")) is None
