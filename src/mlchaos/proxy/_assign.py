"""Arm assignment in the proxy: from the arm header, a stable hash of a key, or at random.

Order for one HTTP request:

1. an ``x-mlchaos-arm`` header decides (``experiment`` or ``control``; any other value puts the
   request in no arm), so arms propagate through a chain of proxies — except at a live edge,
   which never trusts a client's header;
2. else, when ``arms.key`` names a header or a JSON body field that the request carries, the
   salted stable hash of its value decides (:func:`mlchaos.arms.arm_for_key`), so the edge and
   a dependency agree without header propagation. A JSON field with one ``[*]`` names the keys
   of a batched request's rows (a Feast lookup of several entities): each row gets its own arm
   (:meth:`ArmAssigner.row_arms`), data faults change only the rows of their arm (``[#]`` in
   an edit's path), and the request counts in the experiment arm if any row does (else in
   control if any row does): other faults (aborts, latency) follow that arm;
3. else the configured shares decide at random — except under live cohorts
   (:mod:`mlchaos.proxy._live`), where such a request is in no arm.

A TCP connection has no header or body to read: the shares decide at random.
"""

from __future__ import annotations

import json
import random

from mlchaos.arms import ArmCode, ArmKey, ArmSplit, arm_for_key
from mlchaos.jsonpath import WILDCARD, PathPart, extract, locate, parse_path

__all__ = ["ARM_LINES", "ArmAssigner"]

_CODE_OF_VALUE = {b"experiment": ArmCode.EXPERIMENT, b"control": ArmCode.CONTROL}

# The arm header line written upstream and back to the client, per arm code.
ARM_LINES: tuple[bytes, bytes, bytes] = (
    b"",
    b"x-mlchaos-arm: experiment\r\n",
    b"x-mlchaos-arm: control\r\n",
)


class ArmAssigner:
    """Assigns arms by one proxy's :class:`ArmSplit`, with an injectable random source;
    live cohorts replace the split for a while (:meth:`set_live`, :meth:`reset`)."""

    __slots__ = (
        "_configured",
        "_control",
        "_experiment",
        "_random",
        "_salt",
        "batched",
        "json_path",
        "key_header",
        "live",
        "trust_header",
    )

    def __init__(self, split: ArmSplit, rng: random.Random) -> None:
        self._configured = split
        self._random = rng.random
        self.reset()

    def reset(self) -> None:
        """Back to the configured split."""
        split = self._configured
        self._use(split.experiment.fraction, split.control.fraction, split.salt, split.key)
        self.trust_header = True
        self.live = False

    def set_live(
        self,
        experiment: float,
        control: float,
        salt: str,
        key: ArmKey | None,
        *,
        trust_header: bool,
    ) -> None:
        """Live cohorts: these shares and salt, the key given (else the configured one), and
        no random assignment."""
        self._use(experiment, control, salt, key or self._configured.key)
        self.trust_header = trust_header
        self.live = True

    def _use(self, experiment: float, control: float, salt: str, key: ArmKey | None) -> None:
        self._experiment = experiment
        self._control = control
        self._salt = salt
        self.key_header: bytes | None = (
            key.header.lower().encode("latin-1") if key is not None and key.header else None
        )
        self.json_path: tuple[PathPart, ...] | None = (
            parse_path(key.json_field) if key is not None and key.json_field else None
        )
        self.batched = self.json_path is not None and WILDCARD in self.json_path

    def from_header(self, value: bytes) -> int:
        """The arm named by an ``x-mlchaos-arm`` header value (no arm for unknown values)."""
        return _CODE_OF_VALUE.get(value.strip().lower(), ArmCode.NONE)

    def for_key(self, key: bytes) -> int:
        return ArmCode.of(arm_for_key(key, self._experiment, self._control, self._salt))

    def at_random(self) -> int:
        """By the shares alone (the same rule as :func:`mlchaos.arms.arm_for_unit`, inlined)."""
        experiment = self._experiment
        control = self._control
        if (experiment == 0.0 and control == 0.0) or self.live:
            return 0
        u = self._random()
        if u < experiment:
            return 1  # ArmCode.EXPERIMENT
        return 2 if u < experiment + control else 0

    def body_key(self, body: bytes) -> bytes | None:
        """The configured JSON field of ``body``; None when it is absent or not JSON."""
        return json_key(body, self.json_path or ())

    def row_arms(self, body: bytes) -> list[int] | None:
        """Each row's arm in a batched request (its key at the ``[*]``), None when the body
        has no such rows; a row without a key is in no arm."""
        if not self.batched or not body or self.json_path is None:
            return None
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        keys = [_key_bytes(c[k]) for c, k in locate(document, self.json_path)]
        if not keys:
            return None
        return [ArmCode.NONE if k is None else self.for_key(k) for k in keys]


def json_key(body: bytes, path: tuple[PathPart, ...]) -> bytes | None:
    """The value at ``path`` in a JSON body, as the bytes to hash; None when absent.

    Strings hash as their text, numbers as they read in JSON (``1001``, not ``1001.0``) and
    booleans as ``true``/``false``: the same text the traffic generator hashes for a key.
    """
    if not path or not body:
        return None
    try:
        value: object = extract(json.loads(body), path)
    except (ValueError, UnicodeDecodeError):
        return None
    return _key_bytes(value)


def _key_bytes(value: object) -> bytes | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).encode()
