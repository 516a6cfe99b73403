"""The whole demo service on loopback: world, feature store, pipeline, replicas, proxies, gateway.

:class:`DemoStack` trains the models, writes the dataset, starts every process through a
:class:`ServiceGroup` (dependencies first, independent ones together), puts an mlchaos proxy on
each of the gateway's links (replica A, replica B, feature store) and runs the supervisor's
control API. With ``clients`` (a rate) it also puts an edge proxy in front of the gateway and
starts the client simulator calling through it: live traffic, for live experiments. With
``prometheus`` it runs Prometheus scraping the replica proxies, with alert rules, and, when
``prometheus-alertmanager`` is installed, Alertmanager paging a webhook on :attr:`webhook`
(where the experiment's run receives the pages). With
``isolation`` the gateway, the feature store and both replicas each run in a network namespace
of their own on a bridge (:mod:`~mlchaos.demo._isolation`), linked directly rather than through
proxies, so that partitions between them are the kernel's. With ``gpu`` replica A's
per-inference workspace is GPU memory. Leaving ``async with`` stops
everything; nothing survives, however the demo ends.

Everything a user (or an experiment file) needs to reach it is in :attr:`DemoStack.variables`:
``${MLCHAOS_DEMO_GATEWAY}`` and friends, which the bundled experiments refer to.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import secrets
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self

from mlchaos.demo._isolation import IsolatedNetwork
from mlchaos.demo._prometheus import alertmanager_binary
from mlchaos.demo._serve import free_port
from mlchaos.demo._services import RunningService, ServiceGroup, ServiceSpec
from mlchaos.errors import ConfigError

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["REPLICAS", "DemoStack", "FeatureStore", "Variant"]

Variant = Literal["resilient", "naive"]
FeatureStore = Literal["sqlite", "redis", "feast"]
REPLICAS = ("replica-a", "replica-b")
_PROXIED = (*REPLICAS, "store")  # the gateway's links, each behind a proxy
_ISOLATED = ("gateway", *_PROXIED)  # in isolation mode: each in a network namespace of its own
_PY = (sys.executable, "-m", "mlchaos.demo")
_MLCHAOS = (sys.executable, "-m", "mlchaos")


@dataclass(frozen=True)
class _Link:
    """A fault proxy on one of the gateway's links."""

    name: str
    listen: str
    control: str
    token_file: Path


class DemoStack:
    """Start with ``async with DemoStack(run_dir, variant=...) as demo:``."""

    def __init__(
        self,
        run_dir: Path,
        *,
        variant: Variant = "resilient",
        feature_store: FeatureStore = "sqlite",
        seed: int = 7,
        clients: float | None = None,
        prometheus: bool = False,
        isolation: bool = False,
        gpu: bool = False,
    ) -> None:
        if isolation and feature_store != "sqlite":
            raise ConfigError("isolation mode runs the built-in feature store (sqlite)")
        self.run_dir = run_dir.resolve()
        self.variant = variant
        self.feature_store = feature_store
        self.seed = seed
        self.clients = clients
        self.prometheus = prometheus
        self.webhook: str | None = None
        """with Prometheus and Alertmanager: where the experiment's run receives the pages"""
        self.isolation = isolation
        self.gpu = gpu
        self.group = ServiceGroup(grace=3.0)
        self.network: IsolatedNetwork | None = None
        self._hosts: dict[str, str] = {}  # isolation mode: each isolated service's address
        self.links: dict[str, _Link] = {}
        self.accuracies: dict[str, float] = {}
        self._ports: dict[str, int] = {}
        self._control: web.AppRunner | None = None
        self.control_url = ""
        self.agent_url = ""
        self.control_token_file = self.run_dir / "tokens" / "supervisor.token"

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._control is not None:
            await self._control.cleanup()
            self._control = None
        await self.group.stop_all()
        if self.network is not None:
            await self.network.close()
            self.network = None

    async def _start(self) -> None:
        from mlchaos.demo._models import train_models  # noqa: PLC0415
        from mlchaos.demo._world import make_dataset, write_dataset  # noqa: PLC0415

        if self.feature_store == "redis" and importlib.util.find_spec("redis") is None:
            raise ConfigError(
                "the Redis feature store needs redis-py, an extra of the demo: "
                "pip install 'mlchaos[demo]'"
            )
        if self.feature_store == "feast":
            from mlchaos.demo._feast import find_feast  # noqa: PLC0415

            if find_feast() is None:
                raise ConfigError(
                    "the Feast feature store needs Feast: make .venv-feast/.installed (or set "
                    "MLCHAOS_FEAST to a feast executable)"
                )
        # Every start from fresh state: nothing of an earlier stack here (a store, Prometheus'
        # series, pid files, tokens) may leak into this one.
        for sub in ("models", "pids", "tokens", "prometheus"):
            shutil.rmtree(self.run_dir / sub, ignore_errors=True)
        for announced in self.run_dir.glob("proxy-*.json"):
            announced.unlink()
        for sub in ("models", "pids", "tokens"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        models = self.run_dir / "models"
        self.accuracies = await asyncio.to_thread(train_models, self.seed, models)
        write_dataset(make_dataset(self.seed), self.dataset)
        seed = str(self.seed)
        if self.isolation:
            self.network = IsolatedNetwork(self.group)
            await self.network.start()
            self.pidfile("netns-switch").write_text(f"{self.network.switch}\n", encoding="ascii")
        db = self.run_dir / "store.db"
        db.unlink(missing_ok=True)

        redis = self.feature_store == "redis"
        if redis:
            store = self._service("store", "redis")
        elif self.feature_store == "feast":
            feast_dir = str(self.run_dir / "feast")
            store = self._service("store", "feast", "--dir", feast_dir, ready_timeout=120.0)
        else:
            store = self._service("store", "store", "--db", str(db))
        await asyncio.gather(
            self._service("world", "world", "--seed", seed),
            store,
            *(
                self._service(r, "replica", "--model-dir", str(models), "--name", r, *gpu)
                for r, gpu in zip(REPLICAS, self._workspaces(), strict=True)
            ),
        )
        await asyncio.gather(
            self._service("pipeline", "pipeline", "--store", self.store_url(), "--seed", seed),
            *(
                self._proxy(name, "tcp" if redis and name == "store" else "http", name)
                for name in ([] if self.isolation else _PROXIED)
            ),
        )
        gateway_args = ["--variant", self.variant, "--model-dir", str(models)]
        if self.isolation:  # direct links: a partition between namespaces cuts them
            for r in REPLICAS:
                gateway_args += ["--replica", self.url(r)]
            gateway_args += ["--store", self.store_url()]
        else:
            for r in REPLICAS:
                gateway_args += ["--replica", self.links[r].listen]
            store_link = self.links["store"].listen
            gateway_args += [
                "--store",
                store_link.replace("http://", "redis://") if redis else store_link,
            ]
        await asyncio.gather(
            self._service("gateway", "gateway", *gateway_args), self._start_agent()
        )
        if self.clients is not None:
            await self._start_clients(self.clients)
        if self.prometheus:
            await self._start_prometheus()
        await self._start_control()

    def _workspaces(self) -> list[list[str]]:
        """Each replica's workspace options: with ``gpu``, replica A's is 64 MiB of GPU memory
        and B's host memory (a GPU replica with a CPU one beside it: one GPU cannot fail over
        to itself)."""
        if not self.gpu:
            return [[], []]
        return [["--workspace-device", "cuda", "--workspace-mib", "64"], []]

    async def _start_prometheus(self) -> None:
        """Prometheus scraping the replica proxies' metrics, with alert rules on them."""
        targets = []
        for name in REPLICAS:
            link = self.links[name]
            address = link.control.removeprefix("http://")
            targets += ["--target", f"proxy-{name}={address}:{link.token_file}"]
        if alertmanager_binary() is not None:  # then the alerts go on to page someone
            self.webhook = f"127.0.0.1:{free_port()}"
            await self._service(
                "alertmanager",
                "alertmanager",
                *("--dir", str(self.run_dir / "alertmanager"), "--webhook", self.webhook),
            )
            targets += ["--alertmanager", self.url("alertmanager").removeprefix("http://")]
        await self._service(
            "prometheus", "prometheus", "--dir", str(self.run_dir / "prometheus"), *targets
        )

    async def _start_clients(self, rate: float) -> None:
        """Live traffic: an edge proxy in front of the gateway (cohorts by entity id), and the
        client simulator calling the gateway through it."""
        key: dict[str, object] = {
            "key": {"json_field": "inputs.0.data.0"}
        }  # the entity id of an OIP v2 request
        await self._proxy("edge", "http", "gateway", arms=key)
        edge = self.links["edge"].listen
        await self._service(
            "clients",
            "clients",
            *("--target", edge, "--dataset", str(self.dataset)),
            *("--rate", f"{rate:g}", "--seed", str(self.seed)),
        )

    async def _service(
        self, name: str, kind: str, *args: str, ready_timeout: float = 20.0
    ) -> RunningService:
        port = self._ports.get(name, 0)  # a restart binds the same port again
        argv = [*_PY, kind, *args, "--port", str(port)]
        env = {}
        if self.network is not None and name in _ISOLATED:
            member = await self.network.add(name)
            self.pidfile(f"netns-{name}").write_text(f"{member.holder}\n", encoding="ascii")
            argv = [*member.enter(), *argv]
            env["MLCHAOS_DEMO_BIND"] = self._hosts[name] = member.address
        spec = ServiceSpec(name, argv, env=env, ready_timeout=ready_timeout)
        service = await self.group.start(spec)
        self._ports[name] = service.port
        self.pidfile(name).write_text(f"{service.pid}\n", encoding="ascii")
        return service

    async def _proxy(
        self, name: str, protocol: str, upstream: str, arms: dict[str, object] | None = None
    ) -> None:
        """A proxy named ``name`` in front of the service ``upstream``."""
        config = {
            "name": name,
            "protocol": protocol,
            "listen": "127.0.0.1:0",
            "upstream": f"127.0.0.1:{self._ports[upstream]}",
            "control": {"token_file": str(self.run_dir / "tokens" / f"{name}.token")},
            "arms": arms or {},
        }
        path = self.run_dir / f"proxy-{name}.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        argv = [*_MLCHAOS, "proxy", "serve", "--config", str(path), "--announce"]
        service = await self.group.start(ServiceSpec(f"proxy-{name}", argv, ready_timeout=20.0))
        control, token_file = service.info.get("control"), service.info.get("token_file")
        assert isinstance(control, str) and isinstance(token_file, str)
        self.links[name] = _Link(
            name, f"http://127.0.0.1:{service.port}", control, Path(token_file)
        )
        self.pidfile(f"proxy-{name}").write_text(f"{service.pid}\n", encoding="ascii")

    async def _start_agent(self) -> None:
        """The agent that pauses processes under leases (the pipeline-delay experiment)."""
        token_file = self.run_dir / "tokens" / "agent.token"
        token_file.unlink(missing_ok=True)
        argv = [*_MLCHAOS, "agent", "serve", "--token-file", str(token_file)]
        service = await self.group.start(ServiceSpec("agent", argv, ready_timeout=20.0))
        control = service.info.get("control")
        assert isinstance(control, str)
        self.agent_url = control
        self.pidfile("agent").write_text(f"{service.pid}\n", encoding="ascii")

    # ------------------------------------------------------------------ restart (rollback)
    async def restart(self, name: str) -> bool:
        """Start ``name`` again on its port if it is not running; True when it was restarted."""
        if self.group.running(name):
            return False
        old = self.group.service(name)
        argv = list(old.spec.argv)
        argv[-1] = str(self._ports[name])
        await self.group.stop(name)  # reap and clean up what is left of the dead one
        spec = ServiceSpec(name, argv, env=old.spec.env, ready_timeout=old.spec.ready_timeout)
        service = await self.group.start(spec)
        self.pidfile(name).write_text(f"{service.pid}\n", encoding="ascii")
        return True

    async def _start_control(self) -> None:
        """The supervisor's control API: list services, restart one; loopback, bearer token."""
        from aiohttp import web  # noqa: PLC0415

        token = secrets.token_urlsafe(32)
        self.control_token_file.write_text(token + "\n", encoding="utf-8")
        self.control_token_file.chmod(0o600)

        @web.middleware
        async def auth(request: web.Request, handler: _Handler) -> web.StreamResponse:
            given = request.headers.get("Authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return web.json_response({"error": "missing or wrong bearer token"}, status=401)
            return await handler(request)

        async def services(request: web.Request) -> web.Response:
            return web.json_response({"services": self.describe()})

        async def restart(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            if name not in self._ports:
                return web.json_response({"error": f"no service named {name!r}"}, status=404)
            restarted = await self.restart(name)
            return web.json_response({"name": name, "restarted": restarted})

        app = web.Application(middlewares=[auth])
        app.router.add_get("/services", services)
        app.router.add_post("/services/{name}/restart", restart)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._control = runner
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.control_url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    # ------------------------------------------------------------------ addresses
    @property
    def dataset(self) -> Path:
        return self.run_dir / "requests.csv"

    def pidfile(self, name: str) -> Path:
        return self.run_dir / "pids" / f"{name}.pid"

    def url(self, name: str) -> str:
        """The direct (unproxied) address of a service."""
        return f"http://{self._hosts.get(name, '127.0.0.1')}:{self._ports[name]}"

    def store_url(self) -> str:
        """The feature store's direct address: http://... (SQLite) or redis://..."""
        scheme = "redis" if self.feature_store == "redis" else "http"
        return f"{scheme}://{self._hosts.get('store', '127.0.0.1')}:{self._ports['store']}"

    def describe(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for name in self._ports:
            service = self.group.service(name)
            out.append(
                {
                    "name": name,
                    "pid": service.pid,
                    "running": service.running,
                    "url": self.store_url() if name == "store" else self.url(name),
                }
            )
        for link in self.links.values():
            out.append({"name": f"proxy-{link.name}", "url": link.listen, "control": link.control})
        out.append({"name": "agent", "url": self.agent_url})
        return out

    @property
    def variables(self) -> Mapping[str, str]:
        """The ``${...}`` variables the bundled experiment files use."""
        v = {
            "MLCHAOS_DEMO_DIR": str(self.run_dir),
            "MLCHAOS_DEMO_GATEWAY": self.url("gateway"),
            "MLCHAOS_DEMO_LABELS": self.url("world") + "/labels",
            "MLCHAOS_DEMO_DATASET": str(self.dataset),
            "MLCHAOS_DEMO_SUPERVISOR": self.control_url,
            "MLCHAOS_DEMO_AGENT": self.agent_url,
            # An HTTP store's proxy sees the arm header; a TCP one (Redis) cannot: all arms.
            "MLCHAOS_DEMO_STORE_PROTOCOL": "tcp" if self.feature_store == "redis" else "http",
            "MLCHAOS_DEMO_STORE_ARM": "all" if self.feature_store == "redis" else "experiment",
            "MLCHAOS_DEMO_PIPELINE": self.url("pipeline"),
            "MLCHAOS_DEMO_STORE": self.store_url(),
            "MLCHAOS_DEMO_FEATURE_STORE": self.feature_store,
        }
        for name in REPLICAS:
            v[f"MLCHAOS_DEMO_{_env(name)}"] = self.url(name)
        if "edge" in self.links:
            v["MLCHAOS_DEMO_EDGE"] = self.links["edge"].listen
        if self.prometheus:
            v["MLCHAOS_DEMO_PROMETHEUS"] = self.url("prometheus")
        if self.webhook is not None:
            v["MLCHAOS_DEMO_ALERTMANAGER"] = self.url("alertmanager")
            v["MLCHAOS_DEMO_WEBHOOK"] = self.webhook
        for link in self.links.values():
            v[f"MLCHAOS_DEMO_{_env(link.name)}_PROXY"] = link.control
        return v


def _env(name: str) -> str:
    return name.upper().replace("-", "_")


if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    _Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
