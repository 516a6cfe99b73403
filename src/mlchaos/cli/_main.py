"""Argument parsing and the mapping of errors to one clear line and an exit code.

Exit codes: 0 hypothesis held, 1 hypothesis failed or experiment aborted, 2 invalid input,
3 the system or the tool could not run the experiment.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from mlchaos import __version__
from mlchaos.errors import EXIT_CANNOT_RUN, EXIT_INVALID, ConfigError, MlchaosError

if TYPE_CHECKING:
    from mlchaos.proxy import Address
    from mlchaos.safety import Admission

__all__ = ["main"]

_T = TypeVar("_T")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"mlchaos: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mlchaos",
        description="Chaos engineering for machine-learning services.",
        epilog="exit codes: 0 hypothesis held, 1 failed or aborted, 2 invalid input, "
        "3 could not run",
    )
    p.add_argument("--version", action="version", version=f"mlchaos {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    v = sub.add_parser("validate", help="check an experiment file and report every problem")
    v.add_argument("file", type=Path)
    v.set_defaults(func=_cmd_validate)

    i = sub.add_parser(
        "init",
        help="write a starter experiment for your own model server",
        description="Read the model's OIP v2 metadata, send it one request built from the "
        "dataset's first row, and write a commented experiment (a proxy in front of the model, "
        "replay traffic, an abort fault on the experiment arm, availability and accuracy "
        "checks) that `mlchaos run` runs as it is.",
    )
    i.add_argument(
        "--model-url", required=True, help="the model server, e.g. http://127.0.0.1:8080"
    )
    i.add_argument("--model", required=True, help="the model's name on the server")
    i.add_argument("--dataset", required=True, type=Path, help="CSV or Parquet rows to replay")
    i.add_argument("--label", help="the column of true labels (default: one named label, target…)")
    i.add_argument("--key", help="a column whose rows always go to the same arm")
    i.add_argument("--protocol", choices=["v2", "v1"], default="v2", help="default: v2 (OIP)")
    i.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    i.add_argument("--duration", type=float, default=30.0, help="seconds of traffic (default 30)")
    i.add_argument("--proxy-port", type=int, help="the proxy's port (default: a free one)")
    i.add_argument("--out", type=Path, default=Path("experiment.yaml"))
    i.add_argument("--force", action="store_true", help="overwrite --out")
    i.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS", help="wait for the model to load"
    )
    i.set_defaults(func=_cmd_init)

    s = sub.add_parser("schema", help="print the JSON Schema of experiment files")
    s.set_defaults(func=_cmd_schema)

    r = sub.add_parser("run", help="run an experiment")
    r.add_argument("file", type=Path)
    r.add_argument("--out", type=Path, help="directory for journal and summary (reports/RUN_ID)")
    r.add_argument("--quiet", action="store_true", help="print only the summary")
    r.add_argument(
        "--format",
        dest="formats",
        action="append",
        default=[],
        choices=["html", "junit", "markdown"],
        help="also write report.html / junit.xml / report.md next to the summary (repeatable)",
    )
    _safety_options(r)
    r.add_argument(
        "--confirm-production",
        action="store_true",
        help="required to run an experiment whose environment is production",
    )
    r.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve the runner's Prometheus metrics here while it runs (e.g. 127.0.0.1:9464)",
    )
    r.add_argument(
        "--wait-for-window",
        action="store_true",
        help="outside the schedule's windows, wait for the next one instead of refusing",
    )
    r.set_defaults(func=_cmd_run)

    reh = sub.add_parser(
        "rehearse",
        help="inject each fault with no traffic share, verify it, remove it, check rollback",
    )
    reh.add_argument("file", type=Path)
    reh.add_argument("--out", type=Path, help="directory for the rehearsal's journal")
    _safety_options(reh)
    reh.set_defaults(func=_cmd_rehearse)

    rep = sub.add_parser(
        "report",
        help="rebuild the summary of a run from its journal, or a report to read or for CI",
        description="Rebuild a run's summary from its journal alone and print it, or write it "
        "as one self-contained HTML file, JUnit XML (for CI) or Markdown (for a pull request). "
        "JOURNAL is a journal.jsonl, a run's directory or a sweep's directory (every run of "
        "the sweep, with its sweep.json).",
    )
    rep.add_argument("journal", type=Path, metavar="JOURNAL")
    rep.add_argument(
        "--format",
        choices=_REPORT_FORMATS,
        default="terminal",
        help="terminal (default): the summary table; json: the summary as JSON",
    )
    rep.add_argument("--out", type=Path, help="write the report to this file (default: stdout)")
    rep.add_argument("--json", type=Path, help="also write the JSON summary here ('-' = stdout)")
    rep.set_defaults(func=_cmd_report)

    hist = sub.add_parser(
        "history",
        help="every run under some folders, per experiment over time, regressions flagged",
        description="Index every journal.jsonl under the folders into a SQLite file (the "
        "journals stay the source of truth; the index follows them) and show, per experiment "
        "over time: verdict, time to detect and to recover, the experiment-vs-control error and "
        "accuracy differences with their intervals, degraded share, and each run's cost. A run "
        "is flagged a regression when the intervals say it was worse than the run before it.",
    )
    hist.add_argument("dirs", type=Path, nargs="+", metavar="DIR")
    hist.add_argument(
        "--format", choices=("html", "json", "markdown"), default="html", help="default: html"
    )
    hist.add_argument(
        "--out", type=Path, help="default: DIR/history.html for html, stdout for the others"
    )
    hist.add_argument("--db", type=Path, help="the index (default: DIR/history.sqlite)")
    hist.add_argument("--rebuild", action="store_true", help="re-read every journal")
    hist.set_defaults(func=_cmd_history)

    exp_ = sub.add_parser(
        "export",
        help="write an experiment for another tool (Chaos Toolkit)",
        description="Write an mlchaos experiment as a Chaos Toolkit experiment that uses "
        "mlchaos's extension (mlchaos.chaostoolkit), as far as it can be expressed; what cannot "
        "is listed on stderr and in the description.",
    )
    exp_.add_argument("file", type=Path)
    exp_.add_argument("--format", choices=("chaostoolkit",), required=True)
    exp_.add_argument("--out", type=Path, help="default: stdout")
    exp_.set_defaults(func=_cmd_export)

    px = sub.add_parser("proxy", help="the fault proxy")
    pxs = px.add_subparsers(dest="proxy_command", required=True, parser_class=_Parser)
    serve = pxs.add_parser(
        "serve",
        help="run a proxy as its own long-lived process",
        description="Run the proxy of --config, and/or Toxiproxy's REST API (--toxiproxy-api, "
        "or a toxiproxy: section of the config): with the API alone it is a drop-in "
        "toxiproxy-server whose toxics lapse when their client stops calling.",
    )
    serve.add_argument("--config", type=Path, help="the proxy's config (YAML)")
    serve.add_argument(
        "--toxiproxy-api",
        metavar="HOST:PORT",
        help="also serve Toxiproxy's REST API here (loopback only; e.g. 127.0.0.1:8474)",
    )
    serve.add_argument(
        "--announce", action="store_true", help="first print one JSON ready line (for supervisors)"
    )
    serve.set_defaults(func=_cmd_proxy_serve)

    h = sub.add_parser("halt", help="stop every running experiment now and remove all their faults")
    h.add_argument(
        "--disable", metavar="REASON", help="also refuse new runs until 'mlchaos enable'"
    )
    h.set_defaults(func=_cmd_halt)
    en = sub.add_parser("enable", help="clear the disable switch set by 'mlchaos halt --disable'")
    en.set_defaults(func=_cmd_enable)

    ag = sub.add_parser("agent", help="the agent that holds process faults under leases")
    ags = ag.add_subparsers(dest="agent_command", required=True, parser_class=_Parser)
    agserve = ags.add_parser(
        "serve",
        help="run the agent (loopback control API; its first line is a JSON ready line)",
    )
    agserve.add_argument("--port", type=int, default=0, help="control API port (0: any free)")
    agserve.add_argument("--token-file", help="bearer token file (created 0600 if absent)")
    agserve.set_defaults(func=_cmd_agent_serve)

    d = sub.add_parser(
        "demo",
        help="start the demo ML service, run the canonical experiments, print a summary",
        description="Start the demo ML service (gateway, two model replicas, fallback model, "
        "feature store, feature pipeline, fault proxies) on loopback, run each canonical "
        "experiment, print a summary table and stop everything. Exit 0 when every hypothesis "
        "held, 1 otherwise (naming each failed check).",
    )
    d.add_argument("--variant", choices=["resilient", "naive"], default="resilient")
    d.add_argument(
        "--feature-store",
        choices=["sqlite", "redis", "feast"],
        default="sqlite",
        help="redis: a real redis-server behind a TCP proxy (apt-get install redis-server); "
        "feast: a real feast serve, SQLite online store (make .venv-feast/.installed)",
    )
    d.add_argument(
        "--only", action="append", metavar="NAME", help="run only this experiment (repeatable)"
    )
    d.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="shorten each experiment's traffic (sweeps keep theirs)",
    )
    d.add_argument("--out", type=Path, default=Path("reports/demo"), help="default: reports/demo")
    d.add_argument("--quiet", action="store_true", help="no live progress")
    d.set_defaults(func=_cmd_demo)
    ds = d.add_subparsers(dest="demo_command", parser_class=_Parser, metavar="[up]")
    dup = ds.add_parser("up", help="start the demo service and keep it running")
    dup.add_argument("--variant", choices=["resilient", "naive"], default="resilient")
    dup.add_argument("--feature-store", choices=["sqlite", "redis", "feast"], default="sqlite")
    dup.add_argument(
        "--dir", type=Path, default=Path("reports/demo/up"), help="its working directory"
    )
    dup.set_defaults(func=_cmd_demo_up)

    up = sub.add_parser("upstream", help="the bundled toy model server for examples and tests")
    ups = up.add_subparsers(dest="upstream_command", required=True, parser_class=_Parser)
    userve = ups.add_parser("serve", help="serve the toy model (Open Inference Protocol v2)")
    userve.add_argument("--host", default="127.0.0.1")
    userve.add_argument("--port", type=int, default=8500)
    userve.set_defaults(func=_cmd_upstream_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except MlchaosError as exc:
        print(f"mlchaos: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mlchaos: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a traceback is a bug; show one line unless debugging
        if os.environ.get("MLCHAOS_DEBUG"):
            raise
        print(
            f"mlchaos: internal error: {type(exc).__name__}: {exc} "
            "(set MLCHAOS_DEBUG=1 for a traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_CANNOT_RUN
    return code


def _run_async_value(make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    import asyncio  # noqa: PLC0415

    with asyncio.Runner() as runner:
        return runner.run(make())


def _run_async(make: Callable[[], Coroutine[Any, Any, int]]) -> int:
    import asyncio  # noqa: PLC0415

    try:
        import uvloop  # noqa: PLC0415

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is absent on some platforms
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(make())


def _cmd_validate(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415

    from mlchaos.analysis import plan  # noqa: PLC0415
    from mlchaos.spec import TrafficConfig, load_experiment  # noqa: PLC0415

    exp = load_experiment(args.file)
    if isinstance(exp.traffic, TrafficConfig):  # the dataset, its label and key, offline
        from mlchaos.traffic import load_dataset  # noqa: PLC0415

        dataset = Path(exp.traffic.dataset)
        base = Path(args.file).resolve().parent
        load_dataset(dataset if dataset.is_absolute() else base / dataset, exp.traffic)
    print(
        f"{args.file}: valid — '{exp.title}': {len(exp.faults)} faults, "
        f"{len(exp.hypothesis)} hypothesis checks, {len(exp.guardrails)} guardrails"
    )
    for i, fault in enumerate(exp.faults):  # a process is shared: its fault reaches both arms
        if fault.type == "partition":
            print(f"  note: faults[{i}] (partition) cuts the network itself: it hits every arm")
        elif fault.type == "gpu_memory":
            print(
                f"  note: faults[{i}] (gpu_memory) takes a shared GPU's memory: it hits every arm"
            )
        elif fault.type in ("kill", "pause", "cpu", "memory"):
            print(f"  note: faults[{i}] ({fault.type}) acts on a whole process: it hits every arm")
    lines = plan(exp)
    if lines:
        print(
            f"sample size (at {exp.analysis.confidence} confidence, the fewest requests with "
            "which each check can hold):"
        )
    for line in lines:
        print(f"  {'warning: ' if line.short else ''}{line.describe()}")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from mlchaos.cli._init import InitOptions, init_experiment  # noqa: PLC0415

    if not (0 < args.rate <= 10_000 and 1 <= args.duration <= 86_400):
        raise ConfigError("--rate must be in (0, 10000] and --duration in [1, 86400] seconds")
    options = InitOptions(
        model_url=args.model_url,
        model=args.model,
        dataset=args.dataset,
        out=args.out,
        protocol=args.protocol,
        label=args.label,
        key=args.key,
        rate=args.rate,
        duration=args.duration,
        proxy_port=args.proxy_port,
        force=args.force,
        wait=max(args.wait, 0.0),
    )
    return _run_async(lambda: init_experiment(options))


def _cmd_schema(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from mlchaos.spec import experiment_schema  # noqa: PLC0415

    print(json.dumps(experiment_schema(), indent=2))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from mlchaos.cli._run import run_experiment_file  # noqa: PLC0415

    admission = _admission(args)
    metrics = _address(args.metrics, "--metrics") if args.metrics else None
    return _run_async(
        lambda: run_experiment_file(
            args.file,
            out=args.out,
            quiet=args.quiet,
            admission=admission,
            formats=args.formats,
            metrics=metrics,
        )
    )


def _address(text: str, option: str) -> Address:
    from pydantic import ValidationError  # noqa: PLC0415

    from mlchaos.proxy import Address  # noqa: PLC0415

    try:
        return Address.model_validate(text)
    except ValidationError:
        raise ConfigError(
            f"{option}: expected host:port such as 127.0.0.1:9464, got {text!r}"
        ) from None


def _cmd_rehearse(args: argparse.Namespace) -> int:
    from mlchaos.cli._run import rehearse_file  # noqa: PLC0415

    admission = _admission(args)
    return _run_async(lambda: rehearse_file(args.file, out=args.out, admission=admission))


def _safety_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--site",
        type=Path,
        help="site file with the blast-radius caps per environment "
        "(default: $MLCHAOS_SITE_CONFIG, else /etc/mlchaos/site.yaml, else built-in)",
    )


def _admission(args: argparse.Namespace) -> Admission:
    from mlchaos.safety import Admission, load_site  # noqa: PLC0415

    site, path = load_site(args.site)
    return Admission(
        site=site,
        site_path=path,
        confirm_production=getattr(args, "confirm_production", False),
        wait_for_window=getattr(args, "wait_for_window", False),
    )


_REPORT_FORMATS = ("terminal", "html", "junit", "markdown", "json")


def _cmd_export(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from mlchaos.chaostoolkit._export import to_chaostoolkit  # noqa: PLC0415
    from mlchaos.spec import load_experiment  # noqa: PLC0415

    exp = load_experiment(args.file)
    document, left = to_chaostoolkit(exp, Path(args.file).resolve().parent)
    text = json.dumps(document, indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        _write_report(args.out, text)
    for what in left:
        print(f"mlchaos export: not carried over: {what}", file=sys.stderr)
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    from mlchaos.report._history import index_runs, render_history  # noqa: PLC0415

    first = args.dirs[0]
    runs = index_runs(args.dirs, args.db or first / "history.sqlite", rebuild=args.rebuild)
    text = render_history(runs, args.format)
    out = args.out or (first / "history.html" if args.format == "html" else None)
    if out is None:
        sys.stdout.write(text)
    else:
        _write_report(out, text)
        flagged = sum(bool(r.regression) for r in runs)
        print(f"{len(runs)} runs, {flagged} regression(s) flagged: {out}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from mlchaos import report  # noqa: PLC0415

    runs, sweep = report.read_runs(args.journal)
    summaries = [r.summary.to_dict() for r in runs]
    as_json = json.dumps(
        summaries[0] if len(runs) == 1 else {"sweep": sweep, "runs": summaries}, indent=2
    )
    if args.json is not None and str(args.json) == "-":
        if args.format not in ("terminal", "json") and args.out is None:
            raise ConfigError(
                f"--json - and --format {args.format} would both write to stdout; "
                "give the report a file with --out"
            )
        print(as_json)
        if args.format == "terminal":  # the JSON alone, as before --format existed
            return 0
    elif args.json is not None:
        _write_report(args.json, as_json + "\n")
    if args.format == "terminal":
        _report_terminal(runs, args.out)
        return 0
    renderers = {
        "html": report.render_html,
        "junit": report.render_junit,
        "markdown": report.render_markdown,
    }
    text = as_json + "\n" if args.format == "json" else renderers[args.format](runs, sweep=sweep)
    if args.out is None:
        sys.stdout.write(text)
    else:
        _write_report(args.out, text)
        print(f"{args.format} report: {args.out}")
    return 0


def _report_terminal(runs: Sequence[Any], out: Path | None) -> None:
    from rich.console import Console  # noqa: PLC0415

    from mlchaos.console import make_console  # noqa: PLC0415
    from mlchaos.report import render_terminal  # noqa: PLC0415

    if out is None:
        for run in runs:
            render_terminal(run.summary, make_console())
        return
    try:
        with out.open("w", encoding="utf-8") as f:
            console = Console(file=f, width=120, no_color=True)
            for run in runs:
                render_terminal(run.summary, console)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror}") from None
    print(f"terminal report: {out}")


def _write_report(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def _cmd_proxy_serve(args: argparse.Namespace) -> int:
    from mlchaos.proxy import ProxyConfig, ToxiproxyConfig, serve_forever  # noqa: PLC0415
    from mlchaos.spec import load_model, validate_data  # noqa: PLC0415

    if args.config is None and args.toxiproxy_api is None:
        raise ConfigError("give --config FILE (a proxy), --toxiproxy-api HOST:PORT, or both")
    config = None if args.config is None else load_model(args.config, ProxyConfig)
    toxiproxy = None
    if args.toxiproxy_api is not None:
        given = None if config is None else config.toxiproxy
        data = {} if given is None else given.model_dump(mode="json")
        data["listen"] = args.toxiproxy_api
        toxiproxy = validate_data(data, ToxiproxyConfig, source="--toxiproxy-api")

    # Everything made so far (modules, the parsed config) lives as long as the process, so the
    # garbage collector's full passes need not walk it: they took 17 ms each, 2-3 ms frozen, and
    # at 1000 connections the http proxy's p99 fell from 45 to 28 ms (docs/architecture.md).
    gc.freeze()

    async def go() -> int:
        await serve_forever(config, toxiproxy=toxiproxy, announce=args.announce)
        return 0

    return _run_async(go)


def _cmd_halt(args: argparse.Namespace) -> int:
    from mlchaos.runner import halt  # noqa: PLC0415
    from mlchaos.safety import Registry  # noqa: PLC0415

    registry = Registry()
    report = _run_async_value(lambda: halt(registry, disable=args.disable))
    print(
        f"mlchaos halt: {len(report.stopped)} experiments stopped, "
        f"{report.faults_cleared} faults removed"
        + (f"; {len(report.stale)} entries of runners already gone dropped" if report.stale else "")
        + (f"; still running: {', '.join(report.still_running)}" if report.still_running else "")
        + (f"; unreachable: {', '.join(report.unreachable)}" if report.unreachable else "")
    )
    if args.disable is not None:
        print(f"mlchaos is disabled ({args.disable}); 'mlchaos enable' allows runs again")
    return EXIT_CANNOT_RUN if report.still_running else 0


def _cmd_enable(args: argparse.Namespace) -> int:
    from mlchaos.safety import Registry  # noqa: PLC0415

    was = Registry().enable()
    print("mlchaos enabled" if was else "mlchaos was not disabled")
    return 0


def _cmd_agent_serve(args: argparse.Namespace) -> int:
    from mlchaos.agent import serve_agent_forever  # noqa: PLC0415

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {args.port}")

    async def go() -> int:
        await serve_agent_forever(port=args.port, token_file=args.token_file)
        return 0

    return _run_async(go)


def _cmd_demo(args: argparse.Namespace) -> int:
    from mlchaos.console import make_console  # noqa: PLC0415
    from mlchaos.demo import EXPERIMENTS, run_demo  # noqa: PLC0415

    return _run_async(
        lambda: run_demo(
            args.out,
            make_console(),
            variant=args.variant,
            feature_store=args.feature_store,
            names=args.only or EXPERIMENTS,
            duration=args.duration,
            quiet=args.quiet,
        )
    )


def _cmd_demo_up(args: argparse.Namespace) -> int:
    from mlchaos.console import make_console  # noqa: PLC0415
    from mlchaos.demo import serve_demo  # noqa: PLC0415

    return _run_async(
        lambda: serve_demo(
            args.dir, make_console(), variant=args.variant, feature_store=args.feature_store
        )
    )


def _cmd_upstream_serve(args: argparse.Namespace) -> int:
    from mlchaos.testing import serve_upstream_forever  # noqa: PLC0415

    async def go() -> int:
        await serve_upstream_forever(args.host, args.port)
        return 0

    return _run_async(go)
