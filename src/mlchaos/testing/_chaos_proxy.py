"""A fault proxy for a test: ``mlchaos proxy serve`` in front of the service under test.

:class:`ChaosProxy` starts the real proxy as a process of its own on loopback (a port the system
chooses, read back from its ready line), points the code under test at :attr:`ChaosProxy.url`,
and injects faults through the proxy's control API as context managers::

    with proxy.fault(abort=503, probability=0.2):
        ...  # a fifth of the requests through the proxy answer 503

A fault carries a lease like every mlchaos fault: a thread renews it while the ``with`` block
runs, and the proxy drops it by itself within one lease if the test process dies. Leaving the
block removes it. :meth:`ChaosProxy.close` stops the proxy (the pytest fixture does).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlchaos._children import dying_with_us
from mlchaos.control import StatusError, call_sync
from mlchaos.errors import ConfigError, ControlAPIError, RunError

__all__ = ["ChaosProxy"]

# The shorthand of :meth:`ChaosProxy.fault`: keyword → (rule type, the field its value sets).
_SHORTHAND = {
    "abort": ("abort", "status"),
    "latency": ("latency", "delay"),
    "reset": ("reset", None),
    "hang": ("hang", None),
    "refuse": ("refuse", None),
    "bandwidth": ("bandwidth", "bytes_per_second"),
}
_LEASE_S = 10.0
_START_TIMEOUT_S = 30.0


class ChaosProxy:
    """The proxy process in front of ``upstream`` (``host:port``); ``protocol`` http or tcp."""

    def __init__(self, upstream: str, *, protocol: str = "http", name: str = "pytest") -> None:
        if protocol not in ("http", "tcp"):
            raise ConfigError(f"protocol must be http or tcp, got {protocol!r}")
        self._dir = tempfile.TemporaryDirectory(prefix="mlchaos-pytest-")
        token_file = Path(self._dir.name) / "control.token"
        config = {
            "name": name,
            "protocol": protocol,
            "listen": "127.0.0.1:0",
            "upstream": upstream,
            "control": {"listen": "127.0.0.1:0", "token_file": str(token_file)},
        }
        path = Path(self._dir.name) / "proxy.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        argv = [sys.executable, "-m", "mlchaos", "proxy", "serve", "--config", str(path)]
        self._proc = subprocess.Popen(  # noqa: S603 - this Python, mlchaos, our config
            dying_with_us([*argv, "--announce"]),  # a crashed test run leaves no proxy behind
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready = self._ready()
        self.port = int(ready["port"])
        self.control = str(ready["control"])
        self._token = token_file.read_text(encoding="utf-8").strip()

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: where the code under test connects instead of the upstream."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @contextlib.contextmanager
    def fault(self, **spec: Any) -> Iterator[dict[str, Any]]:
        """Inject one fault for the ``with`` block; yields the proxy's answer (its id, lease).

        Either a shorthand — ``abort=503``, ``latency="50ms"`` (with ``jitter=``), ``reset=True``,
        ``hang=True``, ``refuse=True`` (tcp), ``bandwidth=BYTES_PER_S`` (tcp) — or a whole rule
        with ``type=`` and its fields as in an experiment file. ``probability`` (default 1) and
        ``arm`` (default ``all``: a test's requests carry no arm) apply to either.
        """
        rule = _rule(spec)
        answer = self._call("POST", "/faults", {"rule": rule, "lease": f"{_LEASE_S:g}s"})
        fault_id = str(answer["id"])
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(fault_id, stop), daemon=True)
        renewer.start()
        try:
            yield answer
        finally:
            stop.set()
            renewer.join()
            self._call("DELETE", f"/faults/{fault_id}", None, missing_ok=True)

    def stats(self) -> dict[str, Any]:
        """The proxy's counters: requests, errors and faults per arm."""
        return self._call("GET", "/stats", None)

    def close(self) -> None:
        """Stop the proxy (SIGTERM, then SIGKILL after 5 s) and remove its files."""
        proc = self._proc
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self._dir.cleanup()

    def __enter__(self) -> ChaosProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ready(self) -> dict[str, Any]:
        import selectors  # noqa: PLC0415

        stdout = self._proc.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            line = stdout.readline() if selector.select(_START_TIMEOUT_S) else ""
        try:
            ready: dict[str, Any] = json.loads(line)
            if ready.get("ready") is True:
                return ready
        except ValueError:
            pass
        self.close()
        raise RunError(f"the mlchaos proxy did not start: {line.strip() or 'no ready line'}")

    def _renew(self, fault_id: str, stop: threading.Event) -> None:
        while not stop.wait(_LEASE_S / 3):
            with contextlib.suppress(ControlAPIError):  # the next renewal may still make it
                self._call("POST", f"/faults/{fault_id}/renew", {"lease": f"{_LEASE_S:g}s"})

    def _call(
        self, method: str, path: str, body: object, *, missing_ok: bool = False
    ) -> dict[str, Any]:
        try:
            return call_sync(self.control, self._token, method, path, body)
        except StatusError as exc:
            if missing_ok and exc.status == 404:
                return {}
            raise


def _rule(spec: dict[str, Any]) -> dict[str, Any]:
    spec = dict(spec)
    named = [k for k in _SHORTHAND if k in spec]
    if len(named) + ("type" in spec) != 1:
        raise ConfigError(
            "give one fault: type=... with its fields, or one of "
            + ", ".join(f"{k}=" for k in _SHORTHAND)
        )
    rule: dict[str, Any] = {"arm": "all"}
    if named:
        kind, field = _SHORTHAND[named[0]]
        value = spec.pop(named[0])
        rule["type"] = kind
        if field is not None:
            rule[field] = value
    rule.update(spec)
    return rule
