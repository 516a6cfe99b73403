"""mlchaos as a Chaos Toolkit extension: inject and remove mlchaos proxy faults (leases renewed
while ``chaos run`` runs), measure each arm through the proxy, and judge the result on intervals.

Activities, by Chaos Toolkit's conventions (``"provider": {"type": "python", "module": ...,
"func": ..., "arguments": {...}}``):

* ``mlchaos.chaostoolkit.actions`` — ``inject_fault`` (a rule as in an experiment file, on a
  proxy's control API, renewed by a thread of this process until removed, so a crashed ``chaos
  run`` leaves nothing past one lease) and ``remove_fault``;
* ``mlchaos.chaostoolkit.probes`` — ``send_requests`` (requests through the proxy, split across
  the experiment and control arms by the ``x-mlchaos-arm`` header: per arm, requests and errors)
  and ``proxy_stats`` (the proxy's own counters);
* ``mlchaos.chaostoolkit.tolerances`` — ``error_rate_within``: an arm's error rate, or its
  difference from another arm's, judged on Wilson's or Newcombe's interval (it holds only when
  the whole interval is within the bound).

``chaos discover mlchaos`` lists them (:func:`discover`). ``mlchaos export --format
chaostoolkit FILE`` writes an mlchaos experiment as a Chaos Toolkit one that uses them.
"""

from typing import Any

__all__ = ["discover"]


def discover(discover_system: bool = True) -> Any:
    """Chaos Toolkit's discovery: this extension's actions and probes."""
    from chaoslib.discovery.discover import (  # type: ignore[import-not-found]  # noqa: PLC0415
        discover_actions,
        discover_probes,
        initialize_discovery_result,
    )

    from mlchaos import __version__  # noqa: PLC0415

    result = initialize_discovery_result("mlchaos", __version__, "mlchaos")
    result["activities"].extend(discover_actions("mlchaos.chaostoolkit.actions"))
    result["activities"].extend(discover_probes("mlchaos.chaostoolkit.probes"))
    result["activities"].extend(discover_probes("mlchaos.chaostoolkit.tolerances"))
    return result
