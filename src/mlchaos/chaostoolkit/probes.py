"""Chaos Toolkit probes: traffic through an mlchaos proxy, counted per arm; the proxy's counters.

``send_requests`` is the measurement a hypothesis is judged on: it sends ``requests`` requests
through the proxy, alternating the experiment and control arms with the ``x-mlchaos-arm``
header (so a fault aimed at one arm reaches only its half), and answers per arm the requests
sent and how many failed (a connection error, a timeout or a status of 500 or more).
"""

import json
import urllib.error
import urllib.request
from typing import Any

__all__ = ["proxy_stats", "send_requests"]

ARM_HEADER = "x-mlchaos-arm"


def send_requests(
    url: str,
    bodies: list[Any],
    requests: int = 200,
    arms: list[str] = ["experiment", "control"],  # noqa: B006 - read only; JSON-like default
    timeout: float = 2.0,
) -> dict[str, dict[str, int]]:
    """POST ``requests`` JSON ``bodies`` (in turn) to ``url``, the arms taking turns; per arm
    ``{"requests": n, "errors": k}``."""
    if not bodies or not arms or requests < 1:
        raise ValueError("give at least one body, one arm and one request")
    counts = {arm: {"requests": 0, "errors": 0} for arm in arms}
    for i in range(requests):
        arm = arms[i % len(arms)]
        request = urllib.request.Request(  # noqa: S310 - the proxy's http:// URL
            url,
            data=json.dumps(bodies[i % len(bodies)]).encode(),
            method="POST",
            headers={"Content-Type": "application/json", ARM_HEADER: arm},
        )
        counts[arm]["requests"] += 1
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            counts[arm]["errors"] += exc.code >= 500
        except OSError:  # refused, reset, timed out
            counts[arm]["errors"] += 1
    return counts


def proxy_stats(proxy_url: str, token_file: str) -> dict[str, Any]:
    """The proxy's counters (``GET /stats``): per arm, requests, errors and faults."""
    from mlchaos.chaostoolkit.actions import _call  # noqa: PLC0415

    return _call(proxy_url, token_file, "GET", "/stats", None)
