"""Toxiproxy's REST API, served by mlchaos: existing Toxiproxy clients drive mlchaos proxies.

The routes, JSON shapes and status codes are Toxiproxy 2's (``api.go``): ``GET /version``,
``GET/POST /proxies``, ``POST /populate``, ``GET/POST/PATCH/DELETE /proxies/{name}``,
``GET/POST /proxies/{name}/toxics``, ``GET/POST/PATCH/DELETE /proxies/{name}/toxics/{toxic}``
and ``POST /reset``; errors are ``{"error": "...", "status": N}``. A proxy made here is an
mlchaos TCP proxy (no control API of its own); the proxy ``mlchaos proxy serve`` was started
with is listed too, under its configured name, and takes toxics (an HTTP one takes those that
mean something for whole requests) but cannot be changed or removed here.

Unlike Toxiproxy, where a toxic lives until it is deleted, every toxic is a fault under a
lease (``toxiproxy.lease``, 60 s by default): each API call that names a proxy renews that
proxy's toxics, and a call about all proxies (``GET /proxies``, ``/populate``, ``/reset``)
renews them all. A test suite that dies mid-test leaves its toxics for one lease at most.

The API has no token (no Toxiproxy client sends one): it listens on loopback only, and, as
Toxiproxy does, refuses browsers (a ``Mozilla/`` user agent); it also refuses a ``Host`` that
is not a loopback name, so a web page cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from mlchaos import __version__
from mlchaos.errors import ConfigError, ProxyStartError
from mlchaos.proxy._config import Address, Protocol, ProxyConfig, ToxiproxyConfig, is_loopback
from mlchaos.proxy._rules import FaultArm
from mlchaos.proxy._server import ProxyServer, bind_socket
from mlchaos.proxy._toxics import Toxic, ToxicError, parse_toxic, toxic_rule, update_toxic

__all__ = ["ToxiproxyApi"]

_TOXIPROXY_VERSION = "2.12.0"  # the API this one follows
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _ApiError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(eq=False)
class _Proxy:
    """One proxy of the API: its server, and its toxics by name (each a fault of its table)."""

    name: str
    upstream: str
    server: ProxyServer
    own: bool = False  # the proxy `mlchaos proxy serve` was started with
    toxics: dict[str, Toxic] = field(default_factory=dict)
    fault_ids: dict[str, str] = field(default_factory=dict)
    unsubscribe: Callable[[], None] = lambda: None

    def json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": str(self.server.listen_address),
            "upstream": self.upstream,
            "enabled": self.server.listening,
            "toxics": [t.json() for t in self.toxics.values()],
        }


class ToxiproxyApi:
    """Toxiproxy's API over a set of mlchaos proxies (``own``: the one served anyway)."""

    def __init__(self, config: ToxiproxyConfig, own: ProxyServer | None = None) -> None:
        self.config = config
        self._proxies: dict[str, _Proxy] = {}
        self._own = own
        self._runner: web.AppRunner | None = None
        self._address: Address | None = None
        self._next_id = 0
        self._lock = asyncio.Lock()

    @property
    def address(self) -> Address:
        if self._address is None:
            raise RuntimeError("the Toxiproxy API is not started")
        return self._address

    @property
    def url(self) -> str:
        host = self.address.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.address.port}"

    async def start(self) -> None:
        if self._own is not None:
            own = self._own
            if self.config.lease.seconds > own.config.control.max_lease.seconds:
                raise ConfigError(
                    f"toxiproxy.lease ({self.config.lease}) is over the proxy's "
                    f"control.max_lease ({own.config.control.max_lease})"
                )
            self._add(_Proxy(own.config.name, str(own.config.upstream), own, own=True))
        sock = bind_socket(self.config.listen, "the Toxiproxy API")
        try:
            self._address = Address(host=self.config.listen.host, port=sock.getsockname()[1])
            app = web.Application(middlewares=[self._guard], client_max_size=1024 * 1024)
            self._routes(app)
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
            await runner.setup()
            self._runner = runner
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the API and every proxy made through it (the own proxy is its owner's)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        for proxy in list(self._proxies.values()):
            await self._remove(proxy)
        self._proxies.clear()

    # -- routes --------------------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/version", self._version)
        r.add_get("/proxies", self._index)
        r.add_post("/proxies", self._create)
        r.add_post("/populate", self._populate)
        r.add_post("/reset", self._reset)
        r.add_get("/proxies/{proxy}", self._show)
        r.add_post("/proxies/{proxy}", self._update)
        r.add_patch("/proxies/{proxy}", self._update)
        r.add_delete("/proxies/{proxy}", self._delete)
        r.add_get("/proxies/{proxy}/toxics", self._toxic_index)
        r.add_post("/proxies/{proxy}/toxics", self._toxic_create)
        r.add_get("/proxies/{proxy}/toxics/{toxic}", self._toxic_show)
        r.add_post("/proxies/{proxy}/toxics/{toxic}", self._toxic_update)
        r.add_patch("/proxies/{proxy}/toxics/{toxic}", self._toxic_update)
        r.add_delete("/proxies/{proxy}/toxics/{toxic}", self._toxic_delete)

    @web.middleware
    async def _guard(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.headers.get("User-Agent", "").startswith("Mozilla/"):
            return _error("User agent not allowed", 403)
        if not _loopback_host(request.host):
            return _error(f"Host {request.host!r} is not a loopback name", 403)
        try:
            async with self._lock:
                return await handler(request)
        except _ApiError as exc:
            return _error(str(exc), exc.status)
        except ToxicError as exc:
            return _error(str(exc), exc.status)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(exc.reason or "error", exc.status)

    async def _version(self, request: web.Request) -> web.Response:
        return _json({"version": _TOXIPROXY_VERSION, "mlchaos": __version__})

    async def _index(self, request: web.Request) -> web.Response:
        self._renew(self._proxies.values())
        return _json({name: p.json() for name, p in self._proxies.items()})

    async def _create(self, request: web.Request) -> web.Response:
        body = await _body(request)
        name, listen, upstream, enabled = _proxy_fields(body)
        if name in self._proxies:
            raise _ApiError("proxy already exists", 409)
        proxy = await self._make(name, listen, upstream, enabled)
        self._renew(self._proxies.values())
        return _json(proxy.json(), 201)

    async def _populate(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, list):
            raise _ApiError("bad request body: expected a JSON array of proxies", 400)
        wanted = [_proxy_fields(item, f" at proxy {i + 1}") for i, item in enumerate(body)]
        done: list[_Proxy] = []
        try:
            for name, listen, upstream, enabled in wanted:
                existing = self._proxies.get(name)
                if existing is not None and _same(existing, listen, upstream):
                    done.append(existing)
                    continue
                if existing is not None:
                    self._refuse_own(existing, "replace")
                    await self._remove(existing)
                done.append(await self._make(name, listen, upstream, enabled))
        except _ApiError as exc:
            answer = {"error": str(exc), "status": exc.status, "proxies": [p.json() for p in done]}
            return _json(answer, exc.status)
        self._renew(self._proxies.values())
        return _json({"proxies": [p.json() for p in done]}, 201)

    async def _reset(self, request: web.Request) -> web.Response:
        for proxy in self._proxies.values():
            for name in list(proxy.toxics):
                self._drop_toxic(proxy, name)
            await self._listen(proxy, True)
        return web.Response(status=204)

    async def _show(self, request: web.Request) -> web.Response:
        return _json(self._named(request).json())

    async def _update(self, request: web.Request) -> web.Response:
        proxy = self._named(request)
        body = await _body(request)
        if not isinstance(body, dict):
            raise _ApiError("bad request body: expected a JSON object", 400)
        listen = body.get("listen", str(proxy.server.listen_address))
        upstream = body.get("upstream", proxy.upstream)
        enabled = body.get("enabled", proxy.server.listening)
        if not isinstance(enabled, bool):
            raise _ApiError("bad request body: enabled must be true or false", 400)
        if not (isinstance(listen, str) and isinstance(upstream, str)):
            raise _ApiError("bad request body: listen and upstream must be host:port", 400)
        if not _same(proxy, listen, upstream):
            self._refuse_own(proxy, "move")
            toxics = list(proxy.toxics.values())
            await self._remove(proxy)
            proxy = await self._make(proxy.name, listen, upstream, enabled)
            for toxic in toxics:
                self._add_toxic(proxy, toxic)
        elif enabled != proxy.server.listening:
            if not enabled:
                self._refuse_own(proxy, "disable")
            await self._listen(proxy, enabled)
        return _json(proxy.json())

    async def _delete(self, request: web.Request) -> web.Response:
        proxy = self._named(request)
        self._refuse_own(proxy, "delete")
        await self._remove(proxy)
        return web.Response(status=204)

    async def _toxic_index(self, request: web.Request) -> web.Response:
        return _json([t.json() for t in self._named(request).toxics.values()])

    async def _toxic_create(self, request: web.Request) -> web.Response:
        proxy = self._named(request)
        toxic = parse_toxic(await _body(request))
        if toxic.name in proxy.toxics:
            raise _ApiError("toxic already exists", 409)
        self._add_toxic(proxy, toxic)
        return _json(toxic.json())

    async def _toxic_show(self, request: web.Request) -> web.Response:
        proxy = self._named(request)
        return _json(self._toxic(proxy, request).json())

    async def _toxic_update(self, request: web.Request) -> web.Response:
        proxy = self._named(request)
        toxic = update_toxic(self._toxic(proxy, request), await _body(request))
        self._add_toxic(proxy, toxic)
        return _json(toxic.json())

    async def _toxic_delete(self, request: web.Request) -> web.Response:
        proxy = self._named(request)
        self._drop_toxic(proxy, self._toxic(proxy, request).name)
        return web.Response(status=204)

    # -- the proxies and their toxics ----------------------------------------------------------

    def _named(self, request: web.Request) -> _Proxy:
        proxy = self._proxies.get(request.match_info["proxy"])
        if proxy is None:
            raise _ApiError("proxy not found", 404)
        self._renew([proxy])
        return proxy

    def _toxic(self, proxy: _Proxy, request: web.Request) -> Toxic:
        toxic = proxy.toxics.get(request.match_info["toxic"])
        if toxic is None:
            raise _ApiError("toxic not found", 404)
        return toxic

    async def _make(self, name: str, listen: str, upstream: str, enabled: bool) -> _Proxy:
        try:
            config = ProxyConfig.model_validate(
                {
                    "name": name if _LABEL.fullmatch(name) else "toxiproxy",
                    "protocol": "tcp",
                    "listen": listen,
                    "upstream": upstream,
                    "control": {"max_lease": f"{max(self.config.lease.seconds, 300.0)}s"},
                }
            )
        except ValidationError as exc:
            problems = "; ".join(str(e["msg"]) for e in exc.errors())
            raise _ApiError(f"bad request body: {problems}", 400) from None
        server = ProxyServer(config, control_api=False, check_upstream=False)
        try:
            await server.start()
        except ProxyStartError as exc:
            raise _ApiError(str(exc), 500) from None
        proxy = self._add(_Proxy(name, upstream, server))
        if not enabled:
            await server.set_listening(False)
        return proxy

    def _add(self, proxy: _Proxy) -> _Proxy:
        self._proxies[proxy.name] = proxy
        proxy.unsubscribe = proxy.server.faults.subscribe(lambda: self._prune(proxy))
        return proxy

    async def _remove(self, proxy: _Proxy) -> None:
        if self._proxies.get(proxy.name) is proxy:
            del self._proxies[proxy.name]
        proxy.unsubscribe()
        if proxy.own:
            for name in list(proxy.toxics):
                self._drop_toxic(proxy, name)
        else:
            await proxy.server.stop()

    async def _listen(self, proxy: _Proxy, on: bool) -> None:
        try:
            await proxy.server.set_listening(on)
        except ProxyStartError as exc:
            raise _ApiError(str(exc), 500) from None

    def _refuse_own(self, proxy: _Proxy, what: str) -> None:
        if proxy.own:
            raise _ApiError(
                f"cannot {what} proxy {proxy.name!r}: it is the proxy 'mlchaos proxy serve' "
                "was started with (stop that process instead); its toxics can be changed",
                409,
            )

    def _add_toxic(self, proxy: _Proxy, toxic: Toxic) -> None:
        """Add (or replace) ``toxic`` as a fault of the proxy's table, under the API's lease."""
        config = proxy.server.config
        if toxic.arm is not FaultArm.ALL and not _has_arms(config):
            raise ToxicError(
                f"attribute 'arm' needs a proxy that puts connections in arms; proxy "
                f"{proxy.name!r} puts none in any (a TCP proxy made here has no shares), so "
                "the toxic would never act"
            )
        rule = toxic_rule(toxic, config.protocol)
        fault_id = proxy.fault_ids.get(toxic.name)
        if fault_id is None:
            self._next_id += 1
            fault_id = f"toxic-{self._next_id}"
        try:
            proxy.server.faults.add(rule, self.config.lease, fault_id)
        except ConfigError as exc:
            raise ToxicError(str(exc)) from None
        proxy.toxics[toxic.name] = toxic
        proxy.fault_ids[toxic.name] = fault_id

    def _drop_toxic(self, proxy: _Proxy, name: str) -> None:
        del proxy.toxics[name]
        fault_id = proxy.fault_ids.pop(name)
        if fault_id in proxy.server.faults:
            proxy.server.faults.remove(fault_id)

    def _renew(self, proxies: Iterable[_Proxy]) -> None:
        for proxy in proxies:
            for fault_id in proxy.fault_ids.values():
                if fault_id in proxy.server.faults:
                    proxy.server.faults.renew(fault_id, self.config.lease)

    def _prune(self, proxy: _Proxy) -> None:
        """Forget the toxics whose lease lapsed (their faults are gone), saying so."""
        for name, fault_id in list(proxy.fault_ids.items()):
            if fault_id not in proxy.server.faults:
                del proxy.toxics[name], proxy.fault_ids[name]
                sys.stderr.write(
                    f"mlchaos proxy: toxic {name!r} of proxy {proxy.name!r} lapsed: no API "
                    f"call named its proxy for {self.config.lease} (toxiproxy.lease)\n"
                )


_LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # a proxy name that can be a metrics label


def _has_arms(config: ProxyConfig) -> bool:
    """Whether any request or connection of the proxy can be in an arm: an HTTP proxy reads it
    from a header or a key; a TCP one only has its shares and arm listeners."""
    arms = config.arms
    shares = arms.experiment.fraction + arms.control.fraction
    return config.protocol is Protocol.HTTP or shares > 0 or bool(config.arm_listen)


def _proxy_fields(body: object, where: str = "") -> tuple[str, str, str, bool]:
    """name, listen, upstream and enabled of a proxy in a request, checked as Toxiproxy does."""
    if not isinstance(body, dict):
        raise _ApiError(f"bad request body: expected a JSON object{where}", 400)
    name, upstream = body.get("name"), body.get("upstream")
    listen, enabled = body.get("listen") or "127.0.0.1:0", body.get("enabled", True)
    if not name:
        raise _ApiError(f"missing required field: name{where}", 400)
    if not upstream:
        raise _ApiError(f"missing required field: upstream{where}", 400)
    if not (isinstance(name, str) and isinstance(upstream, str) and isinstance(listen, str)):
        raise _ApiError(f"bad request body: name, listen and upstream are strings{where}", 400)
    if not isinstance(enabled, bool):
        raise _ApiError(f"bad request body: enabled must be true or false{where}", 400)
    return name, listen, upstream, enabled


def _same(proxy: _Proxy, listen: str, upstream: str) -> bool:
    """Whether ``listen`` and ``upstream`` are where the proxy already is (a port 0 asks for
    any port, so the one it has will do)."""
    if upstream != proxy.upstream:
        return False
    try:
        asked = Address.model_validate(listen)
    except ValidationError:
        return False
    bound = proxy.server.listen_address
    return asked.host == bound.host and asked.port in (0, bound.port)


def _loopback_host(host: str | None) -> bool:
    """Whether an HTTP ``Host`` (``name``, ``name:port``, ``[v6]:port``) names loopback."""
    if not host:
        return False
    if host.startswith("["):
        name = host[1 : host.find("]")]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return is_loopback(name)


async def _body(request: web.Request) -> object:
    raw = await request.read()
    try:
        return json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _ApiError(f"bad request body: {exc}", 400) from None


def _json(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message, "status": status}, status)
