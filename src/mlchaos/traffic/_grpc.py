"""OIP v2 over gRPC (``inference.GRPCInferenceService``): ``ModelInfer`` and
``ModelMetadata`` with grpcio, converting to and from the JSON documents of the HTTP protocol,
so one request builder and one answer reader serve both.

The messages are described here, field by field, with the names and numbers of the published
``grpc_predict_v2.proto`` (KServe's Open Inference Protocol); protobuf ignores the fields
mlchaos does not describe, so an answer carrying more is read all the same. Describing them in
code spares a generated module and a protoc step. grpcio and protobuf are imported on first use.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from typing import Any

from mlchaos.observations import ErrorKind

__all__ = ["GrpcInference", "grpc_error"]

_PACKAGE = "inference"
_SERVICE = f"/{_PACKAGE}.GRPCInferenceService"
_CONTENTS = {  # datatype → field of InferTensorContents
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_RAW = {  # datatype → numpy dtype of raw_*_contents (little-endian)
    "BOOL": "?",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
# The load generator reconnects within 100 ms to 1 s of a lost connection (gRPC's defaults back off
# up to 2 min), so what it measures after a fault is the server's recovery, not its own backoff.
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)
# HTTP headers gRPC itself sets, which metadata may not carry
_RESERVED = frozenset({"content-type", "te", "user-agent", "host", "connection"})
# gRPC status → the HTTP status that means the same (the gRPC-HTTP mapping of google.rpc.Code)
_HTTP_STATUS = {
    1: 499,  # CANCELLED
    2: 500,  # UNKNOWN
    3: 400,  # INVALID_ARGUMENT
    4: 504,  # DEADLINE_EXCEEDED
    5: 404,  # NOT_FOUND
    6: 409,  # ALREADY_EXISTS
    7: 403,  # PERMISSION_DENIED
    8: 429,  # RESOURCE_EXHAUSTED
    9: 400,  # FAILED_PRECONDITION
    10: 409,  # ABORTED
    11: 400,  # OUT_OF_RANGE
    12: 501,  # UNIMPLEMENTED
    13: 500,  # INTERNAL
    14: 503,  # UNAVAILABLE
    15: 500,  # DATA_LOSS
    16: 401,  # UNAUTHENTICATED
}


# Each message: (field, number, type); "T*" is repeated. Messages nested in the published proto
# are top level here (names never travel on the wire, numbers do); its parameter maps are their
# wire form, repeated key/value entries.
_SCHEMA: dict[str, list[tuple[str, int, str]]] = {
    "InferParameter": [
        ("bool_param", 1, "bool"),
        ("int64_param", 2, "int64"),
        ("string_param", 3, "string"),
    ],
    "Parameter": [("key", 1, "string"), ("value", 2, "InferParameter")],
    "InferTensorContents": [
        ("bool_contents", 1, "bool*"),
        ("int_contents", 2, "int32*"),
        ("int64_contents", 3, "int64*"),
        ("uint_contents", 4, "uint32*"),
        ("uint64_contents", 5, "uint64*"),
        ("fp32_contents", 6, "float*"),
        ("fp64_contents", 7, "double*"),
        ("bytes_contents", 8, "bytes*"),
    ],
    "Tensor": [
        ("name", 1, "string"),
        ("datatype", 2, "string"),
        ("shape", 3, "int64*"),
        ("parameters", 4, "Parameter*"),
        ("contents", 5, "InferTensorContents"),
    ],
    "RequestedOutput": [("name", 1, "string"), ("parameters", 2, "Parameter*")],
    "ModelInferRequest": [
        ("model_name", 1, "string"),
        ("model_version", 2, "string"),
        ("id", 3, "string"),
        ("parameters", 4, "Parameter*"),
        ("inputs", 5, "Tensor*"),
        ("outputs", 6, "RequestedOutput*"),
        ("raw_input_contents", 7, "bytes*"),
    ],
    "ModelInferResponse": [
        ("model_name", 1, "string"),
        ("model_version", 2, "string"),
        ("id", 3, "string"),
        ("parameters", 4, "Parameter*"),
        ("outputs", 5, "Tensor*"),
        ("raw_output_contents", 6, "bytes*"),
    ],
    "ModelMetadataRequest": [("name", 1, "string"), ("version", 2, "string")],
    "ModelMetadataResponse": [
        ("name", 1, "string"),
        ("versions", 2, "string*"),
        ("platform", 3, "string"),
        ("inputs", 4, "Tensor*"),
        ("outputs", 5, "Tensor*"),
    ],
}


@functools.cache
def _messages() -> dict[str, Any]:
    """The message classes of ``_SCHEMA``, built once."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: PLC0415

    field = descriptor_pb2.FieldDescriptorProto
    scalars = {
        name: getattr(field, f"TYPE_{name.upper()}")
        for name in (
            "bool",
            "int32",
            "int64",
            "uint32",
            "uint64",
            "float",
            "double",
            "string",
            "bytes",
        )
    }
    proto = descriptor_pb2.FileDescriptorProto(
        name="mlchaos_oip_v2.proto", package=_PACKAGE, syntax="proto3"
    )
    for name, fields in _SCHEMA.items():
        message = proto.message_type.add(name=name)
        if name == "InferParameter":
            message.oneof_decl.add(name="parameter_choice")
        for field_name, number, kind in fields:
            base = kind.rstrip("*")
            added = message.field.add(
                name=field_name,
                number=number,
                label=field.LABEL_REPEATED if kind.endswith("*") else field.LABEL_OPTIONAL,
            )
            if base in scalars:
                added.type = scalars[base]
            else:
                added.type = field.TYPE_MESSAGE
                added.type_name = f".{_PACKAGE}.{base}"
            if name == "InferParameter":
                added.oneof_index = 0
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in _SCHEMA
    }


class GrpcInference:
    """A channel to an OIP v2 gRPC server; ``async with`` opens and closes it."""

    def __init__(self, target: str, model: str, version: str | None = None) -> None:
        self.address = target.removeprefix("grpc://")
        self.model = model
        self.version = version or ""
        self._channel: Any = None

    async def __aenter__(self) -> GrpcInference:
        import grpc  # noqa: PLC0415

        messages = _messages()
        self._channel = grpc.aio.insecure_channel(self.address, options=_CHANNEL_OPTIONS)
        self._infer = self._channel.unary_unary(
            f"{_SERVICE}/ModelInfer",
            request_serializer=messages["ModelInferRequest"].SerializeToString,
            response_deserializer=messages["ModelInferResponse"].FromString,
        )
        self._metadata = self._channel.unary_unary(
            f"{_SERVICE}/ModelMetadata",
            request_serializer=messages["ModelMetadataRequest"].SerializeToString,
            response_deserializer=messages["ModelMetadataResponse"].FromString,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def infer(
        self, document: Mapping[str, Any], headers: Mapping[str, str], deadline: float
    ) -> tuple[dict[str, Any], bool]:
        """Send a v2 JSON request document; the answer as v2 JSON, and whether a proxy marked
        it faulted (the ``x-mlchaos-fault`` metadata). Raises ``grpc.aio.AioRpcError``."""
        from mlchaos.arms import FAULT_HEADER  # noqa: PLC0415

        call = self._infer(
            _request(document, self.model, self.version),
            timeout=deadline,
            metadata=tuple(
                (k.lower(), v) for k, v in headers.items() if k.lower() not in _RESERVED
            ),
        )
        response = await call
        marks = list(await call.initial_metadata() or ()) + list(
            await call.trailing_metadata() or ()
        )
        return _response(response), any(key == FAULT_HEADER for key, _ in marks)

    async def model_metadata(self, deadline: float) -> dict[str, Any]:
        """``ModelMetadata`` of the model, as the HTTP protocol's JSON."""
        request = _messages()["ModelMetadataRequest"](name=self.model, version=self.version)
        answer = await self._metadata(request, timeout=deadline)
        return {
            "name": answer.name,
            "versions": list(answer.versions),
            "platform": answer.platform,
            "inputs": [_tensor_meta(t) for t in answer.inputs],
            "outputs": [_tensor_meta(t) for t in answer.outputs],
        }


def grpc_error(exc: BaseException) -> tuple[int, ErrorKind] | None:
    """A failed call as (HTTP-equivalent status, kind), or None for a non-gRPC exception: a
    server that could not be reached or dropped the connection is a client-side failure, like
    HTTP's; a status the server chose is its HTTP equivalent (UNAVAILABLE → 503)."""
    if "grpc" not in sys.modules:  # never imported: not a gRPC failure (an HTTP run's errors
        return None  # must not pay for importing grpcio)
    import grpc  # noqa: PLC0415

    if not isinstance(exc, grpc.aio.AioRpcError):
        return None
    code = exc.code()
    details = (exc.details() or "").lower()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return 0, ErrorKind.TIMEOUT
    if code == grpc.StatusCode.UNAVAILABLE:
        if "refused" in details or "failed to connect" in details:
            return 0, ErrorKind.CONNECT
        if any(w in details for w in ("reset", "socket closed", "connection closed", "eof")):
            return 0, ErrorKind.RESET
    return _HTTP_STATUS.get(code.value[0], 500), ErrorKind.OK


def _request(document: Mapping[str, Any], model: str, version: str) -> Any:
    messages = _messages()
    request = messages["ModelInferRequest"](
        model_name=model, model_version=version, id=str(document.get("id", ""))
    )
    _set_parameters(request.parameters, document.get("parameters") or {})
    for tensor in document.get("inputs", ()):
        added = request.inputs.add(
            name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
        )
        _set_parameters(added.parameters, tensor.get("parameters") or {})
        values = tensor["data"]
        if tensor["datatype"] == "BYTES":
            values = [str(v).encode() for v in values]
        getattr(added.contents, _CONTENTS[tensor["datatype"]]).extend(values)
    for output in document.get("outputs", ()):
        request.outputs.add(name=output["name"])
    return request


def _set_parameters(entries: Any, parameters: Mapping[str, Any]) -> None:
    for key, value in parameters.items():
        entry = entries.add(key=key)
        if isinstance(value, bool):
            entry.value.bool_param = value
        elif isinstance(value, int):
            entry.value.int64_param = value
        else:
            entry.value.string_param = str(value)


def _response(response: Any) -> dict[str, Any]:
    """A ``ModelInferResponse`` as the JSON an HTTP server would have answered."""
    raw = list(response.raw_output_contents)
    outputs = []
    for i, tensor in enumerate(response.outputs):
        if i < len(raw):
            data = _decode_raw(raw[i], tensor.datatype)
        else:
            field_name = _CONTENTS.get(tensor.datatype)
            data = list(getattr(tensor.contents, field_name)) if field_name else []
        if tensor.datatype == "BYTES":
            data = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in data]
        outputs.append(
            {
                "name": tensor.name,
                "datatype": tensor.datatype,
                "shape": list(tensor.shape),
                "data": data,
            }
        )
    return {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "id": response.id,
        "outputs": outputs,
    }


def _decode_raw(raw: bytes, datatype: str) -> list[Any]:
    """Raw tensor contents: little-endian values, or BYTES as 4-byte-length-prefixed items."""
    if datatype == "BYTES":
        items, pos = [], 0
        while pos + 4 <= len(raw):
            size = int.from_bytes(raw[pos : pos + 4], "little")
            items.append(raw[pos + 4 : pos + 4 + size])
            pos += 4 + size
        return items
    dtype = _RAW.get(datatype)
    if dtype is None:
        return []
    import numpy as np  # noqa: PLC0415

    values: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
    return values


def _tensor_meta(tensor: Any) -> dict[str, Any]:
    return {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
