"""The observation store: one record per request, held column by column.

Columns are typed Python arrays that grow by appending (cheap on the hot path) and are read as
numpy arrays without copying: 57 bytes a record. A proxy's records
(:meth:`ObservationStore.add_request`) wait in one flat list until the store is next read, or
until a few thousand have gathered: one append per request instead of one per column, and never
a long list of Python floats for the garbage collector to walk.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from mlchaos.arms import Arm, ArmCode

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "COLUMNS",
    "ErrorKind",
    "Observation",
    "ObservationStore",
    "class_code",
    "error_cause",
    "key_code",
]


class ErrorKind(IntEnum):
    """Why a request got no usable response (``OK`` when it got one, whatever its status)."""

    OK = 0
    TIMEOUT = 1
    CONNECT = 2
    RESET = 3
    PROTOCOL = 4
    OTHER = 5


_CAUSES = {
    ErrorKind.TIMEOUT: "client timeout",
    ErrorKind.CONNECT: "connection refused",
    ErrorKind.RESET: "connection reset",
    ErrorKind.PROTOCOL: "malformed answer",
    ErrorKind.OTHER: "other error",
}
INJECTED = "injected by mlchaos"


def error_cause(status: int, error: int, fault: int) -> str | None:
    """Why a request failed, in words (None: it did not). A failure whose answer carried a
    proxy's fault mark was injected; otherwise it is its transport error or its HTTP status."""
    if error == ErrorKind.OK and 200 <= status < 400:
        return None
    if fault:
        return INJECTED
    if error != ErrorKind.OK:
        return _CAUSES[ErrorKind(error)]
    return f"HTTP {status}"


# name → array typecode; the single place a new column is declared.
COLUMNS: dict[str, str] = {
    "arm": "b",  # ArmCode
    "start": "d",  # wall-clock start, seconds since the epoch (scheduled start for replay)
    "latency": "d",  # seconds from (scheduled) start to complete response
    "status": "h",  # HTTP status, 0 when no response
    "error": "b",  # ErrorKind
    "model": "h",  # index into ObservationStore.models, -1 when unknown
    "prediction": "d",  # NaN when none
    "label": "d",  # NaN when none
    "fault": "b",  # 1 when a proxy applied a fault to this request
    "degradation": "h",  # index into ObservationStore.degradations, -1 when none
    "feature_age": "d",  # seconds, age of the features the answer used; NaN when unknown
    "key": "q",  # key_code() of the key that chose the arm (a user, an entity); -1 when none
}
# What a column holds for a record that lacks it (an older journal): "none".
_MISSING: dict[str, float] = {"model": -1, "degradation": -1, "key": -1}
# The columns a proxy records (add_request), in order; the others are "none" for its records.
_REQUEST = ("arm", "start", "latency", "status", "error", "fault")
_REQUEST_NONE = {
    name: math.nan if code == "d" else _MISSING.get(name, 0)
    for name, code in COLUMNS.items()
    if name not in _REQUEST
}
# add_request moves its waiting records into the columns at this many values (4096 records). A
# list of millions, as a proxy nobody reads would grow, held 99 bytes a record (the columns take
# 57) and every full garbage collection walked it: 110 ms each at 1.6 million records.
_PENDING_MAX = 4096 * len(_REQUEST)


def class_code(text: str) -> float:
    """A class label that is text (``malignant``) as a number for the label and prediction
    columns: equal texts give equal codes, different texts different ones (a 48-bit hash,
    exact in a float)."""
    digest = hashlib.blake2b(text.encode(), digest_size=6, person=b"mlchaos-class").digest()
    return float(int.from_bytes(digest, "big"))


def key_code(key: str | None) -> int:
    """A key as a stable non-negative 63-bit code (the same in every process); -1 for None.
    Requests with the same key are not independent: the statistics cluster on this code."""
    if key is None:
        return -1
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@dataclass(frozen=True, slots=True)
class Observation:
    """One request as seen by the traffic generator or a proxy."""

    arm: Arm | None
    start: float
    latency: float
    status: int = 0
    error: ErrorKind = ErrorKind.OK
    model: str | None = None
    prediction: float = math.nan
    label: float = math.nan
    fault: bool = False
    degradation: str | None = None  # e.g. "cached_features,fallback_model"; None: not degraded
    feature_age: float = math.nan
    key: str | None = None


class ObservationStore:
    """Append-only columnar store of observations."""

    def __init__(self) -> None:
        self._cols: dict[str, array[Any]] = {name: array(code) for name, code in COLUMNS.items()}
        self._pending: list[float] = []  # add_request's records not yet in the columns, flat
        self.models: list[str] = []
        self._model_index: dict[str, int] = {}
        self.degradations: list[str] = []
        self._degradation_index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._cols["arm"]) + len(self._pending) // len(_REQUEST)

    def model_code(self, name: str | None) -> int:
        if name is None:
            return -1
        code = self._model_index.get(name)
        if code is None:
            code = self._model_index[name] = len(self.models)
            self.models.append(name)
        return code

    def degradation_code(self, name: str | None) -> int:
        if name is None:
            return -1
        code = self._degradation_index.get(name)
        if code is None:
            code = self._degradation_index[name] = len(self.degradations)
            self.degradations.append(name)
        return code

    def append(self, obs: Observation) -> None:
        self.add(
            arm=ArmCode.of(obs.arm),
            start=obs.start,
            latency=obs.latency,
            status=obs.status,
            error=obs.error,
            model=self.model_code(obs.model),
            prediction=obs.prediction,
            label=obs.label,
            fault=int(obs.fault),
            degradation=self.degradation_code(obs.degradation),
            feature_age=obs.feature_age,
            key=key_code(obs.key),
        )

    def add(
        self,
        *,
        arm: int,
        start: float,
        latency: float,
        status: int = 0,
        error: int = 0,
        model: int = -1,
        prediction: float = math.nan,
        label: float = math.nan,
        fault: int = 0,
        degradation: int = -1,
        feature_age: float = math.nan,
        key: int = -1,
    ) -> None:
        """Append one record from already-encoded values."""
        if self._pending:
            self._flush()
        c = self._cols
        c["arm"].append(arm)
        c["start"].append(start)
        c["latency"].append(latency)
        c["status"].append(status)
        c["error"].append(error)
        c["model"].append(model)
        c["prediction"].append(prediction)
        c["label"].append(label)
        c["fault"].append(fault)
        c["degradation"].append(degradation)
        c["feature_age"].append(feature_age)
        c["key"].append(key)

    def add_request(
        self, arm: int, start: float, latency: float, status: int, error: int, fault: int
    ) -> None:
        """Append one proxy's record (the hot path: no prediction, model or key). Like the
        rest of the store, for one thread: a proxy writes and reads it on its event loop."""
        pending = self._pending
        pending.extend((arm, start, latency, status, error, fault))
        if len(pending) >= _PENDING_MAX:
            self._flush()

    def _flush(self) -> None:
        """Move add_request's waiting records into the columns."""
        pending = self._pending
        if not pending:
            return
        cols = self._cols
        width = len(_REQUEST)
        for i, name in enumerate(_REQUEST):
            cols[name].extend(pending[i::width])
        count = len(pending) // width
        for name, none in _REQUEST_NONE.items():
            cols[name].extend(array(COLUMNS[name], [none]) * count)
        pending.clear()

    def column(self, name: str) -> npt.NDArray[Any]:
        """A read-only numpy view of one column (no copy)."""
        import numpy as np  # noqa: PLC0415 - keep the proxy and CLI start-up free of numpy

        self._flush()
        arr = self._cols[name]
        view: np.ndarray[Any, Any] = (
            np.frombuffer(arr, dtype=arr.typecode)
            if len(arr)
            else (np.empty(0, dtype=arr.typecode))
        )
        return view

    def columns(self, start: int = 0, stop: int | None = None) -> dict[str, list[Any]]:
        """Plain lists of a slice of every column, for the journal."""
        self._flush()
        return {name: arr[start:stop].tolist() for name, arr in self._cols.items()}

    def extend_columns(
        self,
        data: Mapping[str, Iterable[Any]],
        models: list[str],
        degradations: list[str] | None = None,
    ) -> None:
        """Append a batch written by :meth:`columns`, re-coding model and degradation indices
        to this store's; a column the batch lacks (an older journal) is filled with 'none'."""
        self._flush()
        recode = {
            "model": [self.model_code(m) for m in models],
            "degradation": [self.degradation_code(d) for d in degradations or []],
        }
        size = len(self)
        for name, values in data.items():
            if name not in self._cols:
                continue
            if name in recode:
                codes = recode[name]
                self._cols[name].extend(codes[v] if v >= 0 else -1 for v in values)
            else:
                self._cols[name].extend(_nan_safe(name, values))
        added = len(self._cols["arm"]) - size
        for name in COLUMNS.keys() - data.keys():
            missing = math.nan if COLUMNS[name] == "d" else _MISSING.get(name, 0)
            self._cols[name].extend([missing] * added)
        lengths = {len(a) for a in self._cols.values()}
        if len(lengths) != 1:
            raise ValueError("observation batch has columns of unequal length")

    def nbytes(self) -> int:
        self._flush()
        return sum(a.itemsize * len(a) for a in self._cols.values())


def _nan_safe(name: str, values: Iterable[Any]) -> Iterable[Any]:
    """JSON has no NaN: the journal writes null, which reads back as NaN in float columns."""
    if COLUMNS[name] == "d":
        return (math.nan if v is None else v for v in values)
    return values
