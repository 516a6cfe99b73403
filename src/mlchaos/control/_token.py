"""The control API's bearer token: given, read from its file, or generated into a 0600 file.

Without a configured ``token_file`` the proxy uses a file of its own in a private directory:
``$XDG_RUNTIME_DIR/mlchaos/`` when that variable is set, else ``<tmp>/mlchaos-<uid>/``, created
with mode 0700. Its name carries the data-plane port (``proxy-8080.token``), or a random part
when the port is chosen by the system; the proxy deletes such a file when it stops.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlchaos.errors import ProxyStartError

__all__ = ["TokenSource", "default_token_dir", "resolve_token"]


@dataclass(frozen=True)
class TokenSource:
    """The token and where it lives; ``owned``: a default-path file the proxy deletes at stop.

    A default file left by a proxy that was killed is reused (and then owned) by the next
    proxy on the same port: the data port is bound before the token is resolved, so no live
    proxy can still be using it.
    """

    token: str
    path: Path | None
    owned: bool = False


def default_token_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "mlchaos"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"mlchaos-{uid}"


def resolve_token(
    token: str | None, token_file: str | None, listen_port: int, kind: str = "proxy"
) -> TokenSource:
    """The token to require: ``token`` if given, else the file's content, else a new one (in
    a default file named for ``kind`` and the port: ``proxy-8501.token``, ``agent-9100.token``)."""
    if token is not None:
        if not token.strip():
            raise ProxyStartError("the control API token must not be empty")
        return TokenSource(token.strip(), None)
    owned = token_file is None
    if token_file is None:
        directory = default_token_dir()
        _private_dir(directory)
        name = f"{kind}-{listen_port}" if listen_port else f"{kind}-{secrets.token_hex(4)}"
        path = directory / f"{name}.token"
    else:
        path = Path(token_file).expanduser()
    try:
        existing = _read(path)
        if existing is not None:
            return TokenSource(existing, path, owned=owned)
        new = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process wrote it first: use theirs
            existing = _read(path)
            if existing is None:
                raise
            return TokenSource(existing, path, owned=False)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new + "\n")
        return TokenSource(new, path, owned=owned)
    except OSError as exc:
        raise ProxyStartError(
            f"cannot read or create the control token file {path}: {exc.strerror or exc}"
        ) from None


def _private_dir(directory: Path) -> None:
    """Create ``directory`` 0700, or check that an existing one is ours and private."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.lstat()
    except OSError as exc:
        raise ProxyStartError(
            f"cannot create the token directory {directory}: {exc.strerror or exc}"
        ) from None
    if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        raise ProxyStartError(
            f"{directory} is not a directory of this user: it cannot hold the control token; "
            "set control.token_file to a private path"
        )
    if info.st_mode & 0o077:
        directory.chmod(0o700)


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not text:
        raise ProxyStartError(f"the control token file {path} is empty: delete it or write a token")
    return text
