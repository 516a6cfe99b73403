"""The agent's guardian: every process fault the agent holds is undone when the agent dies.

A fault must not outlive the agent that holds its lease. The agent cannot promise that itself
(a SIGKILL or the OOM killer gives it no last word), so at start it spawns this small process,
in a session of its own, and tells it over a pipe, one JSON object per line, each fault it holds
(``{"op": "hold", "id", "pid", "created"}`` for a pause, ``{"op": "confine", "id",
"confinement"}`` for a process moved into a cgroup of ours, ``{"op": "partition", "id",
"partition"}`` for routing rules that cut two network namespaces apart) and each it let go
(``{"op": "release", "id"}``). When the agent exits, however it exits, the kernel closes the
pipe; the guardian reads end-of-file, sends SIGCONT to every process it still holds paused (if it
is still the same process: same start time), moves every confined one back out of our cgroups,
deletes every partition's rules, and exits.

It runs ``mlchaos.agent._guardian.main`` in a Python of its own; it needs nothing but psutil
(and ``ip`` and ``nsenter`` for partitions).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlchaos.agent._cgroup import Confinement
    from mlchaos.agent._netns import Partition

__all__ = ["Guardian", "main"]


def main() -> None:
    """Read hold/confine/release lines until end-of-file, then undo what is still held."""
    import signal  # noqa: PLC0415

    import psutil  # noqa: PLC0415

    from mlchaos.agent._cgroup import Confinement, release  # noqa: PLC0415
    from mlchaos.agent._netns import Partition  # noqa: PLC0415
    from mlchaos.agent._netns import release as rejoin  # noqa: PLC0415

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only end-of-file ends it
    held: dict[str, dict[str, object]] = {}
    while line := sys.stdin.buffer.readline():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            message = json.loads(line)
            if message["op"] == "release":
                held.pop(str(message["id"]), None)
            else:
                held[str(message["id"])] = message
    for message in held.values():
        with contextlib.suppress(psutil.Error, OSError, ValueError, KeyError):
            if message["op"] == "confine":
                release(Confinement.from_json(str(message["confinement"])))
                continue
            if message["op"] == "partition":
                rejoin(Partition.from_json(str(message["partition"])))
                continue
            proc = psutil.Process(int(str(message["pid"])))
            if proc.create_time() == message["created"]:
                proc.resume()


class Guardian:
    """The agent's side: spawns the guardian and keeps it told (restarting it if it died)."""

    def __init__(self) -> None:
        self._held: dict[str, str] = {}  # fault id → its line
        self._proc: subprocess.Popen[bytes] | None = None
        self._spawn()

    def hold(self, fault_id: str, pid: int, created: float) -> None:
        """A paused process: SIGCONT it if the agent dies."""
        self._tell(fault_id, {"op": "hold", "id": fault_id, "pid": pid, "created": created})

    def confine(self, fault_id: str, confinement: Confinement) -> None:
        """A process in a cgroup of ours: move it back if the agent dies."""
        message = {"op": "confine", "id": fault_id, "confinement": confinement.to_json()}
        self._tell(fault_id, message)

    def partition(self, fault_id: str, partition: Partition) -> None:
        """Routing rules that cut two namespaces apart: delete them if the agent dies."""
        message = {"op": "partition", "id": fault_id, "partition": partition.to_json()}
        self._tell(fault_id, message)

    def release(self, fault_id: str) -> None:
        self._held.pop(fault_id, None)
        self._send(json.dumps({"op": "release", "id": fault_id}) + "\n")

    def _tell(self, fault_id: str, message: Mapping[str, object]) -> None:
        line = self._held[fault_id] = json.dumps(message) + "\n"
        self._send(line)

    def close(self) -> None:
        """End the guardian (it resumes whatever is still held: nothing, after a clean stop)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _spawn(self) -> None:
        self._proc = subprocess.Popen(
            # not `-m`: the package is imported first, then runpy warns about this module
            [sys.executable, "-c", "from mlchaos.agent._guardian import main; main()"],
            stdin=subprocess.PIPE,
            start_new_session=True,  # a signal to the agent's group does not reach it
        )

    def _send(self, line: str) -> None:
        for _ in range(2):
            proc = self._proc
            if proc is not None and proc.stdin is not None and proc.poll() is None:
                try:
                    proc.stdin.write(line.encode())
                    proc.stdin.flush()
                    return
                except OSError:
                    pass
            self._spawn()  # it died: a new one, told everything still held
            line = "".join(self._held.values()) or line


if __name__ == "__main__":
    main()
