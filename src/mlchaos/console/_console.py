"""The rich console every command prints through."""

from __future__ import annotations

import os

from rich.console import Console

__all__ = ["make_console"]


def make_console() -> Console:
    """As wide as the terminal; 120 columns into a pipe or a CI log (unless COLUMNS says)."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 120
    return console
