"""Child processes that die with the process that started them, however it dies.

On Linux, :func:`dying_with_us` prefixes a command line with a tiny Python bootstrap that sets
``PR_SET_PDEATHSIG=SIGKILL`` and then execs the command (same pid), so the kernel kills the
child when its parent dies — even by SIGKILL, which gives the parent no last word. A bootstrap
rather than ``preexec_fn``: ``preexec_fn`` runs Python (here ctypes) between ``fork`` and
``exec`` in a possibly multi-threaded process, which can deadlock; the bootstrap runs in a fresh
single-threaded interpreter. It also closes the race where the parent dies before ``prctl``: it
checks that its parent is still the one that started it, and exits otherwise.

Limits: Linux only (elsewhere the command is returned as it is); it covers the child itself,
not grandchildren it spawns; and it fires when the *thread* that started the child exits.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

__all__ = ["dying_with_us"]

# Runs as ``python -I -S -c _BOOTSTRAP <parent pid> <argv...>``.
_BOOTSTRAP = """\
import ctypes, os, signal, sys
if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0) != 0:
    sys.exit("mlchaos bootstrap: prctl(PR_SET_PDEATHSIG) failed")
if os.getppid() != int(sys.argv[1]):
    sys.exit("mlchaos bootstrap: the supervisor is gone")
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as exc:
    print(f"mlchaos bootstrap: cannot run {sys.argv[2]!r}: {exc}", file=sys.stderr)
    sys.exit(127)
"""


def dying_with_us(argv: Sequence[str]) -> list[str]:
    """``argv``, started so that it dies when this process does (Linux; as it is elsewhere)."""
    if sys.platform != "linux":
        return list(argv)
    return [sys.executable, "-I", "-S", "-c", _BOOTSTRAP, str(os.getpid()), *argv]
