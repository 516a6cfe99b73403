"""Reports rebuilt from the journal alone: the terminal summary and the JSON summary, and the
readable reports — one self-contained HTML file, JUnit XML for CI, Markdown for a pull request.

``read_runs`` reads a journal (or a sweep's directory) into :class:`RunJournal` runs; each
``render_*`` takes those runs (and the sweep's results, if any) and returns the document.
"""

from mlchaos.report._html import render_html
from mlchaos.report._junit import render_junit
from mlchaos.report._markdown import render_markdown
from mlchaos.report._page import IndexEntry, render_index
from mlchaos.report._runs import RunJournal, read_runs
from mlchaos.report._summary import Summary, summarize
from mlchaos.report._terminal import render_terminal

__all__ = [
    "IndexEntry",
    "RunJournal",
    "Summary",
    "read_runs",
    "render_html",
    "render_index",
    "render_junit",
    "render_markdown",
    "render_terminal",
    "summarize",
]
