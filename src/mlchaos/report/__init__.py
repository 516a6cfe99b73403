"""Reports rebuilt from the journal alone: terminal summary and JSON summary."""

from mlchaos.report._summary import Summary, summarize
from mlchaos.report._terminal import render_terminal

__all__ = ["Summary", "render_terminal", "summarize"]
