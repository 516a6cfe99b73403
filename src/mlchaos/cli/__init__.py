"""The ``mlchaos`` command. Heavy modules are imported inside each command, so ``--help`` is fast."""

from mlchaos.cli._main import main

__all__ = ["main"]
