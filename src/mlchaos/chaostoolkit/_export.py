"""An mlchaos experiment written as a Chaos Toolkit experiment, where that can be done.

What carries over:

* steady-state HTTP probes → Chaos Toolkit ``http`` probes with their expected status;
* each ``error_rate`` check (an arm's maximum, or its difference from control) → a
  ``send_requests`` probe judged by the ``error_rate_within`` tolerance on its interval: as many
  requests as the mlchaos run would send (rate times duration), built from the experiment's
  dataset, through its traffic target, the arms taking turns.
  Chaos Toolkit checks the hypothesis before the method and again after it, with the faults in
  place, so the checks are judged under fault as in mlchaos;
* faults on proxies that already run (``proxies[].connect``) → ``inject_fault`` actions in the
  method, with the experiment's lease (renewed while ``chaos run`` runs), and ``remove_fault``
  rollbacks; rollback HTTP actions without a token → ``http`` rollbacks.

What cannot, returned with the reason and written into the description: process faults (they
need the mlchaos agent), proxies mlchaos would start itself, the fault schedule (``start``,
``duration``: every fault is in place from the method to the rollbacks), other metrics (latency,
accuracy and the rest need mlchaos's observations and labels), guardrails and the sequential
kill switch, recovery checks, and rollback actions that send a token from a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlchaos.errors import ConfigError

if TYPE_CHECKING:
    from mlchaos.spec import Experiment

__all__ = ["to_chaostoolkit"]

_ROWS = 50  # request bodies carried over from the dataset
_MAX_REQUESTS = 5000  # per measurement, at most


def to_chaostoolkit(exp: Experiment, base_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """The Chaos Toolkit experiment, and what of ``exp`` it leaves out (and why)."""
    from mlchaos.spec import (  # noqa: PLC0415
        AgentFault,
        HttpAction,
        HttpProbe,
        KillFault,
        MetricCheck,
        TrafficConfig,
    )

    left: list[str] = []
    proxies = {p.name: p for p in exp.proxies}
    probes: list[dict[str, Any]] = []
    for p in exp.steady_state:
        if isinstance(p, HttpProbe) and p.method == "GET":
            probes.append(
                {
                    "type": "probe",
                    "name": p.name,
                    "tolerance": p.expect_status[0]
                    if len(p.expect_status) == 1
                    else p.expect_status,
                    "provider": {"type": "http", "url": p.url, "timeout": p.timeout.seconds},
                }
            )
        else:
            left.append(f"steady state '{p.name}': only GET HTTP probes carry over")
    traffic = exp.traffic
    measure: dict[str, Any] | None = None
    if isinstance(traffic, TrafficConfig):
        measure = _measurement(traffic, base_dir)
    else:
        left.append("live traffic: Chaos Toolkit sends its own requests (replay traffic only)")
    for i, check in enumerate(exp.hypothesis):
        name = check.name or f"hypothesis[{i}]"
        if (
            measure is None
            or not isinstance(check, MetricCheck)
            or check.metric != "error_rate"
            or check.max is None
        ):
            left.append(f"check '{name}': only error_rate checks with a max carry over")
            continue
        relative = check.relative_to
        if relative not in (None, "control"):
            left.append(f"check '{name}': relative to {relative}: only control carries over")
            continue
        arguments: dict[str, Any] = {"max": check.max.value, "arm": str(check.arm)}
        if relative:
            arguments["relative_to"] = "control"
        probes.append(
            {
                "type": "probe",
                "name": name,
                "tolerance": {
                    "type": "probe",
                    "name": f"{name}: judged on its interval",
                    "provider": {
                        "type": "python",
                        "module": "mlchaos.chaostoolkit.tolerances",
                        "func": "error_rate_within",
                        "arguments": arguments,
                    },
                },
                "provider": measure,
            }
        )

    method: list[dict[str, Any]] = []
    rollbacks: list[dict[str, Any]] = []
    used: dict[str, tuple[str, str]] = {}
    for i, fault in enumerate(exp.faults):
        if isinstance(fault, KillFault | AgentFault):
            left.append(f"faults[{i}] ({fault.type}): process faults need the mlchaos agent")
            continue
        spec = proxies[fault.target]
        if spec.connect is None:
            left.append(f"faults[{i}]: proxy '{spec.name}' is one mlchaos starts itself")
            continue
        control = (spec.connect.url, _path(spec.connect.token_file, base_dir))
        used[spec.name] = control
        method.append(
            {
                "type": "action",
                "name": f"inject faults[{i}] ({fault.type}) on proxy {spec.name}",
                "provider": {
                    "type": "python",
                    "module": "mlchaos.chaostoolkit.actions",
                    "func": "inject_fault",
                    "arguments": {
                        "proxy_url": control[0],
                        "token_file": control[1],
                        "rule": fault.rule().model_dump(mode="json"),
                        "lease": str(exp.lease),
                    },
                },
            }
        )
    if not method:
        raise ConfigError(
            "none of the faults carries over to Chaos Toolkit: " + "; ".join(left or ["none"])
        )
    if exp.faults:
        left.append(
            "the fault schedule (start, duration): every fault is in place from the "
            "method until the rollbacks"
        )
    for name, (url, token_file) in used.items():
        rollbacks.append(
            {
                "type": "action",
                "name": f"remove this run's faults from proxy {name}",
                "provider": {
                    "type": "python",
                    "module": "mlchaos.chaostoolkit.actions",
                    "func": "remove_fault",
                    "arguments": {"proxy_url": url, "token_file": token_file},
                },
            }
        )
    for action in exp.rollback:
        if isinstance(action, HttpAction) and action.token_file is None:
            provider: dict[str, Any] = {
                "type": "http",
                "url": action.url,
                "method": action.method,
                "timeout": action.timeout.seconds,
            }
            if action.body is not None:
                provider["arguments"] = action.body
            rollbacks.append({"type": "action", "name": action.name, "provider": provider})
        else:
            left.append(f"rollback '{action.name}': it sends a token from a file")
    if exp.guardrails:
        left.append("guardrails and the sequential kill switch")
    if exp.recovery is not None:
        left.append("the recovery check (time to recover)")
    description = (exp.description or "").strip()
    if left:
        description += "\n\nNot carried over from the mlchaos experiment: " + "; ".join(left) + "."
    document = {
        "version": "1.0.0",
        "title": exp.title,
        "description": description.strip(),
        "tags": ["mlchaos"],
        "steady-state-hypothesis": {"title": "the mlchaos hypothesis", "probes": probes},
        "method": method,
        "rollbacks": rollbacks,
    }
    return document, left


def _measurement(traffic: Any, base_dir: Path) -> dict[str, Any]:
    """The ``send_requests`` provider: bodies from the first rows of the dataset."""
    from mlchaos.traffic import RequestBuilder, load_dataset  # noqa: PLC0415

    dataset = load_dataset(_path(traffic.dataset, base_dir), traffic)
    builder = RequestBuilder.for_config(traffic, dataset)
    rows = range(min(_ROWS, dataset.rows))
    bodies = [builder.body([r], f"ctk-{r}") for r in rows]
    return {
        "type": "python",
        "module": "mlchaos.chaostoolkit.probes",
        "func": "send_requests",
        "arguments": {
            "url": builder.url,
            "bodies": bodies,
            # as many as the mlchaos run would judge: a bound of 1 point needs hundreds per arm
            "requests": min(
                _MAX_REQUESTS, round(traffic.rate.per_second * traffic.duration.seconds)
            ),
            "timeout": traffic.timeout.seconds,
        },
    }


def _path(path: str, base_dir: Path) -> str:
    p = Path(path)
    return str(p if p.is_absolute() else (base_dir / p).resolve())
