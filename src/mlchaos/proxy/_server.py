"""One proxy process (or one proxy inside the runner's loop): data plane plus control API.

:class:`ProxyServer` binds its sockets itself so that a port in use or an upstream that is
down fails :meth:`ProxyServer.start` with a :class:`ProxyStartError` that says which, and
nothing stays bound after a failed start. :func:`serve_forever` is ``mlchaos proxy serve``.
"""

from __future__ import annotations

import asyncio
import errno
import json
import random
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from mlchaos.arms import Arm, ArmCode
from mlchaos.control import TokenSource, resolve_token
from mlchaos.errors import ProxyStartError
from mlchaos.observations import ObservationStore
from mlchaos.proxy._accept import Acceptor
from mlchaos.proxy._config import Address, Protocol, ProxyConfig, ToxiproxyConfig
from mlchaos.proxy._control import control_app
from mlchaos.proxy._faults import FaultTable
from mlchaos.proxy._http import HttpPlane
from mlchaos.proxy._live import LiveState
from mlchaos.proxy._metrics import ProxyCollector, exposition
from mlchaos.proxy._stats import ProxyStats, Recorder
from mlchaos.proxy._tcp import TcpPlane

__all__ = ["ProxyServer", "bind_socket", "serve_forever"]

_UPSTREAM_CHECK_TIMEOUT = 5.0


class ProxyServer:
    """A fault proxy: ``config.listen`` → ``config.upstream``, with a control API.

    ``token`` fixes the control token (else it comes from, or goes to, the token file);
    ``observations`` receives one record per request (http) or connection (tcp) — without a
    store the proxy only counts; ``seed`` makes arm assignment and fault draws reproducible.
    A proxy made through the Toxiproxy API has no control API of its own (``control_api``)
    and, as Toxiproxy's, starts whether or not its upstream is up (``check_upstream``).
    """

    def __init__(
        self,
        config: ProxyConfig,
        *,
        token: str | None = None,
        observations: ObservationStore | None = None,
        seed: int | None = None,
        control_api: bool = True,
        check_upstream: bool = True,
    ) -> None:
        self.config = config
        self._control_api = control_api
        self._check_upstream = check_upstream
        self._given_token = token
        self._recorder = Recorder(observations)
        self._rng = random.Random(seed)
        self.faults = FaultTable(
            config.protocol, config.control.default_lease, config.control.max_lease
        )
        self._token: TokenSource | None = None
        self._plane: HttpPlane | TcpPlane | None = None
        self._server: Acceptor | None = None
        self._control: web.AppRunner | None = None
        self._listen: Address | None = None
        self._arm_servers: list[Acceptor] = []
        self.arm_addresses: dict[str, Address] = {}
        """where each arm's own listener listens (tcp, ``arm_listen``)"""
        self._control_address: Address | None = None

    # -- properties ----------------------------------------------------------------------------

    @property
    def listen_address(self) -> Address:
        """The data-plane address actually bound (the real port when the config said 0)."""
        if self._listen is None:
            raise RuntimeError("the proxy is not started")
        return self._listen

    @property
    def control_address(self) -> Address:
        if self._control_address is None:
            raise RuntimeError("the proxy is not started")
        return self._control_address

    @property
    def control_url(self) -> str:
        addr = self.control_address
        host = f"[{addr.host}]" if ":" in addr.host else addr.host
        return f"http://{host}:{addr.port}"

    @property
    def token(self) -> str:
        if self._token is None:
            raise RuntimeError("the proxy is not started")
        return self._token.token

    @property
    def token_file(self) -> Path | None:
        """Where the token is written (None when the token was given to the constructor)."""
        return None if self._token is None else self._token.path

    @property
    def observations(self) -> ObservationStore | None:
        return self._recorder.store

    @property
    def started(self) -> bool:
        return self._server is not None

    def stats(self) -> ProxyStats:
        open_connections = 0 if self._plane is None else len(self._plane.conns)
        return self._recorder.snapshot(self.config.protocol, len(self.faults), open_connections)

    # -- life ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the upstream, bind the data plane and the control API; or fail, binding nothing."""
        if self._server is not None:
            raise RuntimeError("the proxy is already started")
        config = self.config
        if self._check_upstream:
            await _check_upstream(config.upstream)
        data_sock: socket.socket | None = bind_socket(config.listen, "the proxy")
        control_sock: socket.socket | None = None
        try:
            assert data_sock is not None
            self._listen = _bound(data_sock, config.listen)
            if self._control_api:
                self._token = resolve_token(
                    self._given_token, config.control.token_file, config.listen.port
                )
                control_sock = bind_socket(config.control.listen, "the control API")
                self._control_address = _bound(control_sock, config.control.listen)
            plane_type = HttpPlane if config.protocol is Protocol.HTTP else TcpPlane
            plane = self._plane = plane_type(config, self.faults, self._recorder, self._rng)
            live = None
            if isinstance(plane, HttpPlane):
                live = plane.live = LiveState(plane.assigner, config.control.default_lease)
            self._server = Acceptor(data_sock, plane.protocol)
            data_sock = None  # the server owns it now
            if isinstance(plane, TcpPlane):
                self._arm_listeners(plane)
            plane.start()
            if control_sock is None:
                return
            assert self._token is not None
            collector = ProxyCollector(config.name, self._recorder, self.faults)
            app = control_app(
                self.faults,
                self._token.token,
                self.stats,
                self._info,
                live,
                lambda: exposition(collector),
            )
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
            await runner.setup()
            self._control = runner
            site = web.SockSite(runner, control_sock)
            await site.start()
            control_sock = None
        except BaseException:
            if data_sock is not None:
                data_sock.close()
            if control_sock is not None:
                control_sock.close()
            await self.stop()
            raise

    def _arm_listeners(self, plane: TcpPlane) -> None:
        """One more listener per arm of ``arm_listen``: its connections are all of that arm."""
        for arm, address in self.config.arm_listen.items():
            sock = bind_socket(address, f"the proxy's {arm} listener")
            self._arm_servers.append(Acceptor(sock, plane.protocol_of(ArmCode.of(Arm(arm)))))
            self.arm_addresses[arm] = _bound(sock, address)

    @property
    def listening(self) -> bool:
        """False while taken down with :meth:`set_listening` (Toxiproxy's ``enabled``)."""
        return self._server is not None and self._server.is_serving()

    async def set_listening(self, on: bool) -> None:
        """Take the proxy down (its listener closed, every open connection cut) or bring it
        back on the same address; its faults stay as they are."""
        plane, server = self._plane, self._server
        if plane is None or server is None:
            raise RuntimeError("the proxy is not started")
        if on == self.listening:
            return
        if not on:
            server.close()
            plane.abort_all()
            return
        self._server = Acceptor(bind_socket(self.listen_address, "the proxy"), plane.protocol)

    async def stop(self) -> None:
        """Close the listeners, every open connection and the control API; drop all faults."""
        for extra in self._arm_servers:
            extra.close()
        self._arm_servers.clear()
        server, self._server = self._server, None
        plane, self._plane = self._plane, None
        control, self._control = self._control, None
        if server is not None:
            server.close()
        if plane is not None:
            if isinstance(plane, HttpPlane) and plane.live is not None:
                plane.live.clear()
            plane.close()
        if control is not None:
            await control.cleanup()
        self.faults.clear()
        token, self._token = self._token, None
        if token is not None and token.owned and token.path is not None:
            token.path.unlink(missing_ok=True)
        for _ in range(3):  # let the closed transports run their connection_lost callbacks
            await asyncio.sleep(0)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _info(self) -> dict[str, Any]:
        arms = self.config.arms
        return {
            "protocol": self.config.protocol.value,
            "listen": str(self._listen),
            "upstream": str(self.config.upstream),
            "arms": {"experiment": str(arms.experiment), "control": str(arms.control)},
            "arm_listen": {arm: str(a) for arm, a in self.arm_addresses.items()},
        }


async def serve_forever(
    config: ProxyConfig | None,
    *,
    toxiproxy: ToxiproxyConfig | None = None,
    print_fn: Callable[[str], object] = print,
    announce: bool = False,
) -> None:
    """Run one proxy, and/or Toxiproxy's API (``toxiproxy``, else ``config.toxiproxy``), until
    SIGINT or SIGTERM (or cancellation), then stop cleanly.

    With ``announce`` its first line is JSON for supervisors: ``{"ready": true, "port": ...,
    "control": URL, "token_file": PATH, "arm_ports": {...}, "toxiproxy": URL}`` (the port is
    the one the proxy listens on; keys of what is not served are null).
    """
    from mlchaos.proxy._toxiproxy import ToxiproxyApi  # noqa: PLC0415 - it imports this module

    if toxiproxy is None and config is not None:
        toxiproxy = config.toxiproxy
    if config is None and toxiproxy is None:
        raise ValueError("nothing to serve: give a proxy config or a Toxiproxy API address")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    server = None if config is None else ProxyServer(config)
    api = None if toxiproxy is None else ToxiproxyApi(toxiproxy, server)
    try:
        if server is not None:
            await server.start()
        if api is not None:
            await api.start()
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        if announce:
            ready = {
                "ready": True,
                "port": None if server is None else server.listen_address.port,
                "control": None if server is None else server.control_url,
                "token_file": None
                if server is None or server.token_file is None
                else str(server.token_file),
                "arm_ports": {}
                if server is None
                else {arm: a.port for arm, a in server.arm_addresses.items()},
                "toxiproxy": None if api is None else api.url,
            }
            print_fn(json.dumps(ready))
        if server is not None:
            print_fn(
                f"mlchaos proxy ({server.config.protocol.value}): {server.listen_address} → "
                f"{server.config.upstream}; control API {server.control_url} "
                f"(token file: {server.token_file}); Ctrl-C to stop"
            )
        if api is not None:
            print_fn(
                f"mlchaos proxy: Toxiproxy API on {api.url} (toxics lapse "
                f"{api.config.lease} after the last call naming their proxy); Ctrl-C to stop"
            )
        await stop.wait()
        print_fn("mlchaos proxy: stopping")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if api is not None:
            await api.stop()
        if server is not None:
            await server.stop()


async def _check_upstream(upstream: Address) -> None:
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await asyncio.wait_for(
            loop.create_connection(asyncio.Protocol, upstream.host, upstream.port),
            _UPSTREAM_CHECK_TIMEOUT,
        )
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ProxyStartError(
            f"upstream {upstream} is not accepting connections ({reason}): is it running?"
        ) from None
    transport.close()


def bind_socket(address: Address, what: str) -> socket.socket:
    try:
        infos = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise ProxyStartError(f"cannot listen on {address} for {what}: {exc}") from None
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        hint = " (is another process using it?)" if exc.errno == errno.EADDRINUSE else ""
        raise ProxyStartError(
            f"cannot listen on {address} for {what}: {exc.strerror or exc}{hint}"
        ) from None
    return sock


def _bound(sock: socket.socket, asked: Address) -> Address:
    port = int(sock.getsockname()[1])
    return Address(host=asked.host, port=port)
