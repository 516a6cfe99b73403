"""mlchaos: chaos engineering for machine-learning services."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "discover"]


def discover(discover_system: bool = True) -> Any:
    """Chaos Toolkit's discovery (``chaos discover mlchaos`` looks for it here): the actions,
    probes and tolerances of :mod:`mlchaos.chaostoolkit`."""
    from mlchaos.chaostoolkit import discover as activities  # noqa: PLC0415

    return activities(discover_system)
