"""Chaos Toolkit actions: an mlchaos proxy fault injected, kept alive, and removed.

A fault is added with a lease on the proxy's control API; a daemon thread of the ``chaos run``
process renews it every third of its lease until ``remove_fault``. If ``chaos run`` dies, the
renewals stop and the proxy drops the fault within one lease — unlike a fault that lives until
someone deletes it.
"""

import threading
from pathlib import Path
from typing import Any

from mlchaos.control import StatusError, call_sync
from mlchaos.errors import ControlAPIError

__all__ = ["inject_fault", "remove_fault"]

_renewing: dict[str, threading.Event] = {}  # fault id → the event that stops its renewals


def inject_fault(
    proxy_url: str, token_file: str, rule: dict[str, Any], lease: str = "10s"
) -> dict[str, Any]:
    """Add ``rule`` (as in an mlchaos experiment file: ``{"type": "abort", "status": 503,
    "arm": "experiment", "probability": 0.2}``) to the proxy at ``proxy_url`` (its control
    API) with ``lease``, renewed until :func:`remove_fault`. Returns the proxy's answer (the
    fault's id and lease)."""
    answer = _call(proxy_url, token_file, "POST", "/faults", {"rule": rule, "lease": lease})
    fault_id = str(answer["id"])
    stop = _renewing[_key(proxy_url, fault_id)] = threading.Event()
    thread = threading.Thread(
        target=_renew, args=(proxy_url, token_file, fault_id, lease, stop), daemon=True
    )
    thread.start()
    return answer


def remove_fault(proxy_url: str, token_file: str, fault_id: str = "") -> dict[str, Any]:
    """Remove one fault (by id), or every fault this ``chaos run`` injected on that proxy
    (no id); renewals stop first. Returns the ids removed."""
    prefix = f"{proxy_url.rstrip('/')} "
    keys = (
        [_key(proxy_url, fault_id)] if fault_id else [k for k in _renewing if k.startswith(prefix)]
    )
    removed = []
    for key in keys:
        stop = _renewing.pop(key, None)
        if stop is not None:
            stop.set()
        fid = key.removeprefix(prefix)
        try:
            _call(proxy_url, token_file, "DELETE", f"/faults/{fid}", None)
        except StatusError as exc:
            if exc.status != 404:
                raise
            continue  # its lease ran out, or it was removed already
        removed.append(fid)
    return {"removed": removed}


def _key(proxy_url: str, fault_id: str) -> str:
    return f"{proxy_url.rstrip('/')} {fault_id}"


def _renew(
    proxy_url: str, token_file: str, fault_id: str, lease: str, stop: threading.Event
) -> None:
    every = _seconds(lease) / 3
    while not stop.wait(every):
        try:
            _call(proxy_url, token_file, "POST", f"/faults/{fault_id}/renew", {"lease": lease})
        except StatusError as exc:
            if exc.status == 404:
                return  # gone: removed, or its lease ran out
        except ControlAPIError:
            continue  # the next renewal may still make it


def _seconds(lease: str) -> float:
    from mlchaos.units import Duration  # noqa: PLC0415

    return Duration.parse(lease).seconds


def _call(proxy_url: str, token_file: str, method: str, path: str, body: object) -> dict[str, Any]:
    """One control-API call with the token from ``token_file``; ControlAPIError (StatusError
    with the status) when it fails."""
    token = Path(token_file).read_text(encoding="utf-8").strip()
    return call_sync(proxy_url, token, method, path, body)
