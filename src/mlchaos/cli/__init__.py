"""The ``mlchaos`` command; heavy modules load inside each command, so ``--help`` is fast."""

from mlchaos.cli._main import main

__all__ = ["main"]
