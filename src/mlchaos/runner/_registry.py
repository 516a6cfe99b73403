"""Where running experiments announce themselves, so ``mlchaos halt`` can stop them all.

A private state directory (``$MLCHAOS_STATE_DIR``, default ``$XDG_RUNTIME_DIR/mlchaos/state``
or ``/tmp/mlchaos-UID/state``, mode 0700) holds one JSON file per running experiment — its pid
and the control APIs of the proxies it uses — and, while mlchaos is disabled, a ``disabled``
file with the reason. A runner refuses to start while that file exists.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["Registry"]


class Registry:
    """The running experiments and the disable switch, in one directory."""

    def __init__(self, root: Path | None = None) -> None:
        if root is None:
            from mlchaos.proxy._token import default_token_dir  # noqa: PLC0415

            env = os.environ.get("MLCHAOS_STATE_DIR")
            root = Path(env) if env else default_token_dir() / "state"
        self.root = root

    def _dir(self) -> Path:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.root

    # -- the disable switch ----------------------------------------------------------------------
    def disabled(self) -> str | None:
        """The reason mlchaos is disabled, or None when runs are allowed."""
        try:
            return (self.root / "disabled").read_text(encoding="utf-8").strip() or "no reason given"
        except FileNotFoundError:
            return None

    def disable(self, reason: str) -> None:
        (self._dir() / "disabled").write_text(reason.strip() + "\n", encoding="utf-8")

    def enable(self) -> bool:
        """Clear the switch; True when it was set."""
        try:
            (self.root / "disabled").unlink()
        except FileNotFoundError:
            return False
        return True

    # -- running experiments ---------------------------------------------------------------------
    def register(self, run_id: str, title: str) -> None:
        self._write(
            run_id,
            {
                "run_id": run_id,
                "pid": os.getpid(),
                "title": title,
                "started": time.time(),
                "proxies": [],
            },
        )

    def add_proxy(self, run_id: str, control: str, token: str) -> None:
        entry = self._read(self.root / f"{run_id}.json")
        if entry is not None:
            entry["proxies"].append({"control": control, "token": token})
            self._write(run_id, entry)

    def unregister(self, run_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / f"{run_id}.json").unlink()

    def runs(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        found = (self._read(p) for p in sorted(self.root.glob("*.json")))
        return [e for e in found if e is not None]

    def _write(self, run_id: str, entry: dict[str, Any]) -> None:
        path = self._dir() / f"{run_id}.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds tokens
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entry, f)
        tmp.replace(path)

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None
