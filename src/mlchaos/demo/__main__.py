"""``python -m mlchaos.demo SERVICE [options]``: run one of the demo's processes.

Services (each binds ``127.0.0.1:--port``, 0 for an ephemeral port, prints one JSON ready line
``{"ready": true, "name": ..., "port": ...}`` and exits 0 on SIGTERM or SIGINT)::

    world    --seed N --port P                      the label service (ground truth)
    store    --db PATH --port P                     the feature store (Feast HTTP, SQLite)
    pipeline --store URL --seed N --interval S --port P
                                                    the feature pipeline (pushes to the store)
    replica  --model-dir DIR --name NAME [--work-ms MS] [--workspace-mib N]
             [--workspace-device host|cuda] --port P
                                                    one primary-model replica (OIP v2)
    gateway  --variant resilient|naive --replica URL --replica URL --store URL
             --model-dir DIR --port P [--model-timeout S] [--store-timeout S] [--cache-ttl S]
             [--max-feature-age S]
                                                    the service users call (OIP v2)
    redis    --port P                               a real redis-server (the Redis store)
    feast    --dir DIR --port P                     a real feast serve (the Feast store)
    clients  --target URL --dataset CSV [--rate R] [--seed N] --port P
                                                    the users: calls at R per second
    netns                                           holds a new network namespace (isolation
                                                    mode; prints port 0) until stopped
    prometheus --dir DIR --target NAME=HOST:PORT:TOKEN_FILE ... [--alertmanager H:P] --port P
                                                    Prometheus scraping the proxies
    alertmanager --dir DIR --webhook HOST:PORT --port P
                                                    Alertmanager paging the webhook
    accuracy [--seed N]                             print the models' measured accuracies

Bad options are one line on stderr and exit 2. Only the chosen service's module is imported.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

__all__ = ["main"]

_PROG = "python -m mlchaos.demo"
_EXIT_INVALID = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(_EXIT_INVALID, f"{self.prog}: error: {message}\n")


def _seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _ttl(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number of seconds, got {text!r}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 10_000:
        raise argparse.ArgumentTypeError(f"expected calls per second in (0, 10000], got {text!r}")
    return value


def _target(text: str) -> tuple[str, tuple[str, Path]]:
    name, _, rest = text.partition("=")
    host, _, tail = rest.partition(":")
    port, _, token = tail.partition(":")
    if not (name and host and port.isdigit() and token):
        raise argparse.ArgumentTypeError(f"expected NAME=HOST:PORT:TOKEN_FILE, got {text!r}")
    return name, (f"{host}:{port}", Path(token))


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {text!r}")
    return value


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"must be an http:// URL, got {text!r}")
    return text.rstrip("/")


def _store_url(text: str) -> str:
    """The feature store: the HTTP (Feast API) store's URL, or redis://host:port."""
    if text.startswith("redis://"):
        return text
    return _url(text)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=_PROG, description="Run one process of the mlchaos demo ML service.")
    sub = p.add_subparsers(dest="service", required=True, metavar="SERVICE", parser_class=_Parser)

    world = sub.add_parser("world", help="the label service: the simulation's ground truth")
    world.add_argument("--seed", type=int, default=7)

    store = sub.add_parser("store", help="the feature store (Feast HTTP API over SQLite)")
    store.add_argument("--db", type=Path, required=True, help="SQLite file (created if absent)")

    pipeline = sub.add_parser("pipeline", help="the feature pipeline, pushing to the store")
    pipeline.add_argument(
        "--store",
        type=_store_url,
        required=True,
        help="the feature store: http://... or redis://...",
    )
    pipeline.add_argument("--seed", type=int, default=7)
    pipeline.add_argument("--interval", type=_seconds, default=0.25, help="seconds per tick")

    replica = sub.add_parser("replica", help="one primary-model replica (OIP v2)")
    replica.add_argument("--model-dir", type=Path, required=True)
    replica.add_argument("--name", required=True)
    replica.add_argument(
        "--work-ms", type=float, default=1.0, help="CPU time each inference spends (default 1)"
    )
    replica.add_argument(
        "--workspace-mib", type=int, default=4, help="scratch memory per inference (default 4)"
    )
    replica.add_argument(
        "--workspace-device",
        choices=("host", "cuda"),
        default="host",
        help="where the scratch memory is: host memory, or the GPU's (CUDA driver API)",
    )

    gateway = sub.add_parser("gateway", help="the service users call (OIP v2, model 'churn')")
    gateway.add_argument("--variant", choices=("resilient", "naive"), default="resilient")
    gateway.add_argument("--replica", type=_url, action="append", required=True, dest="replicas")
    gateway.add_argument(
        "--store", type=_store_url, required=True, help="http://... or redis://..."
    )
    gateway.add_argument("--model-dir", type=Path, required=True)
    gateway.add_argument("--model-timeout", type=_seconds, default=0.25)
    gateway.add_argument("--store-timeout", type=_seconds, default=0.1)
    gateway.add_argument("--cache-ttl", type=_ttl, default=60.0)
    gateway.add_argument("--max-feature-age", type=_seconds, default=2.0)

    redis = sub.add_parser("redis", help="a real redis-server as the feature store")

    feast = sub.add_parser("feast", help="a real Feast feature server as the feature store")
    feast.add_argument("--dir", type=Path, required=True, help="the Feast repository to write")

    clients = sub.add_parser("clients", help="the users: call the service at a steady rate")
    clients.add_argument("--target", type=_url, required=True, help="the service (or its edge)")
    clients.add_argument("--dataset", type=Path, required=True, help="CSV: entity_id,x1,x2")
    clients.add_argument("--rate", type=_rate, default=200.0, help="calls per second")
    clients.add_argument("--seed", type=int, default=7)

    prometheus = sub.add_parser("prometheus", help="Prometheus scraping the proxies, alert rules")
    prometheus.add_argument("--dir", type=Path, required=True, help="config and data directory")
    prometheus.add_argument(
        "--target",
        type=_target,
        action="append",
        required=True,
        dest="targets",
        help="NAME=HOST:PORT:TOKEN_FILE, a proxy control API to scrape (repeatable)",
    )
    prometheus.add_argument("--alertmanager", metavar="HOST:PORT", help="send alerts there")

    alertmanager = sub.add_parser("alertmanager", help="Alertmanager paging the ML platform team")
    alertmanager.add_argument("--dir", type=Path, required=True, help="config and data directory")
    alertmanager.add_argument(
        "--webhook", metavar="HOST:PORT", required=True, help="the pager's webhook receiver"
    )

    sub.add_parser("netns", help="hold a new network namespace (isolation mode) until stopped")

    services = (
        world,
        store,
        pipeline,
        replica,
        gateway,
        redis,
        feast,
        clients,
        prometheus,
        alertmanager,
    )
    for service in services:
        service.add_argument("--port", type=_port, default=0, help="0: an ephemeral port")

    accuracy = sub.add_parser("accuracy", help="train the models and print their accuracies")
    accuracy.add_argument("--seed", type=int, default=7)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options and run the chosen service; its exit status."""
    args = _parser().parse_args(argv)
    from mlchaos.demo._serve import run_service  # noqa: PLC0415

    match args.service:
        case "world":
            from mlchaos.demo._world_service import serve_world  # noqa: PLC0415

            return run_service(lambda: serve_world(args.seed, args.port), "world")
        case "store":
            from mlchaos.demo._store import serve_store  # noqa: PLC0415

            return run_service(lambda: serve_store(args.db, args.port), "store")
        case "redis":
            from mlchaos.demo._redis import serve_redis  # noqa: PLC0415

            return run_service(lambda: serve_redis(args.port), "redis")
        case "feast":
            from mlchaos.demo._feast import serve_feast  # noqa: PLC0415

            return run_service(lambda: serve_feast(args.dir, args.port), "feast")
        case "pipeline":
            from mlchaos.demo._pipeline import serve_pipeline  # noqa: PLC0415

            return run_service(
                lambda: serve_pipeline(args.store, args.seed, args.interval, args.port),
                "pipeline",
            )
        case "replica":
            from mlchaos.demo._replica import serve_replica  # noqa: PLC0415

            return run_service(
                lambda: serve_replica(
                    args.model_dir,
                    args.name,
                    args.port,
                    args.work_ms,
                    args.workspace_mib,
                    args.workspace_device,
                ),
                args.name,
            )
        case "clients":
            from mlchaos.demo._clients import serve_clients  # noqa: PLC0415

            return run_service(
                lambda: serve_clients(args.target, args.dataset, args.rate, args.seed, args.port),
                "clients",
            )
        case "prometheus":
            from mlchaos.demo._prometheus import serve_prometheus  # noqa: PLC0415

            targets = dict(args.targets)
            return run_service(
                lambda: serve_prometheus(args.dir, targets, args.port, args.alertmanager),
                "prometheus",
            )
        case "alertmanager":
            from mlchaos.demo._prometheus import serve_alertmanager  # noqa: PLC0415

            return run_service(
                lambda: serve_alertmanager(args.dir, args.webhook, args.port), "alertmanager"
            )
        case "netns":
            from mlchaos.demo._isolation import hold  # noqa: PLC0415

            return hold()
        case "gateway":
            from mlchaos.demo._gateway import GatewayConfig, serve_gateway  # noqa: PLC0415

            config = GatewayConfig(
                variant=args.variant,
                replicas=tuple(args.replicas),
                store=args.store,
                model_timeout=args.model_timeout,
                store_timeout=args.store_timeout,
                cache_ttl=args.cache_ttl,
                max_feature_age=args.max_feature_age,
            )
            return run_service(lambda: serve_gateway(config, args.model_dir, args.port), "gateway")
        case _:
            return _accuracy(args.seed)


def _accuracy(seed: int) -> int:
    """Train the models in a temporary directory and print their measured accuracies."""
    import tempfile  # noqa: PLC0415

    from mlchaos.demo._logistic import LinearModel  # noqa: PLC0415
    from mlchaos.demo._models import staleness_accuracy, train_models  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="mlchaos-demo-") as tmp:
        accuracies = train_models(seed, Path(tmp))
        primary = LinearModel.load(Path(tmp) / "primary.json")
    stale = staleness_accuracy(primary, seed)
    out = sys.stdout
    out.write(f"demo models, seed {seed} (synthetic world; test rows at random times)\n\n")
    out.write("model      features                 accuracy (fresh features)\n")
    rows = (
        ("primary", "x1, x2, f1, f2, f3", accuracies["primary"]),
        ("fallback", "x1, x2", accuracies["fallback"]),
        ("constant", "(majority class)", accuracies["constant"]),
    )
    for name, features, value in rows:
        out.write(f"{name:<10} {features:<24} {value:6.1%}\n")
    out.write("\nprimary accuracy vs feature staleness\n")
    for age, value in stale.items():
        out.write(f"  {age:>4.0f} s stale  {value:6.1%}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
