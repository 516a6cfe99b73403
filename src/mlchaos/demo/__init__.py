"""The demo ML service mlchaos experiments on (in progress, issue 3).

So far: :class:`ServiceGroup`, the supervisor that starts the demo's separate OS processes,
waits for each to announce its port, and guarantees none survives (orderly stop, process-group
kill, and a parent-death signal on Linux). Nothing but the CLI and tests imports this package.
"""

from mlchaos.demo._services import RunningService, ServiceGroup, ServiceSpec, ServiceStartError

__all__ = ["RunningService", "ServiceGroup", "ServiceSpec", "ServiceStartError"]
