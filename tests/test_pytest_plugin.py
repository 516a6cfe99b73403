"""The pytest plugin, run by pytest itself (``pytester``): its fixture starts a real proxy in
front of a real upstream, faults change what the test's requests get, and assertions judged on
intervals pass only when the interval supports them, explaining a failure."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlchaos.testing import error_rate, is_error, latency_quantile
from tests.conftest import ROOT

UPSTREAM = """
import http.server, threading
import pytest

class Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

@pytest.fixture
def upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
"""

CALLS = '''
import time, urllib.error, urllib.request
from mlchaos.testing import error_rate, latency_quantile

def call(url, n):
    """n GETs: their statuses and latencies."""
    statuses, latencies = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                statuses.append(r.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
        latencies.append(time.perf_counter() - t0)
    return statuses, latencies
'''


def test_faults_through_the_fixture_reach_the_tests_requests(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(UPSTREAM)
    pytester.makepyfile(
        CALLS
        + """
def test_abort_then_healthy(mlchaos_proxy, upstream):
    proxy = mlchaos_proxy(upstream)
    with proxy.fault(abort=503) as fault:
        assert fault["id"]
        statuses, _ = call(proxy.url, 20)
        assert statuses == [503] * 20
    statuses, _ = call(proxy.url, 200)
    assert set(statuses) == {200}
    assert error_rate(statuses) <= 0.02  # 0 of 200: Wilson's upper bound is 1.9%

def test_latency_is_judged_on_its_interval(mlchaos_proxy, upstream):
    proxy = mlchaos_proxy(upstream)
    with proxy.fault(latency="30ms", probability=1.0):
        _, latencies = call(proxy.url, 100)
    assert latency_quantile(latencies, 0.5) >= 0.03
    assert proxy.stats()["arms"]["none"]["faults"] == 100
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_failed_assertion_shows_the_interval_and_says_violated_or_undecided(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(UPSTREAM)
    pytester.makepyfile(
        CALLS
        + """
def test_violated(mlchaos_proxy, upstream):
    proxy = mlchaos_proxy(upstream)
    with proxy.fault(abort=503, probability=0.5):
        statuses, _ = call(proxy.url, 200)
    assert error_rate(statuses) <= 0.01

def test_undecided():
    assert error_rate([200] * 20) <= 0.01  # 0 of 20: the interval reaches 16%
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*error rate *% [[]*%, *%] (n=200, 95% interval) <= 0.01",
            "*shown violated (the whole interval is past the bound)",
            "*error rate 0.00% [[]0.00%, 16.11%] (n=20, 95% interval) <= 0.01",
            "*not decided*more observations would narrow the interval",
        ]
    )


def test_a_test_run_that_dies_leaves_no_proxy_and_no_fault(pytester: pytest.Pytester) -> None:
    """SIGKILL of the test process mid-fault: the proxy dies with it (PR_SET_PDEATHSIG)."""
    pytester.makeconftest(UPSTREAM)
    pidfile = pytester.path / "proxy.pid"
    pytester.makepyfile(
        f"""
import os, signal
def test_dies(mlchaos_proxy, upstream):
    proxy = mlchaos_proxy(upstream)
    with proxy.fault(abort=503):
        open({str(pidfile)!r}, "w").write(str(proxy._proc.pid))
        os.kill(os.getpid(), signal.SIGKILL)
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == -9 or result.ret != 0
    pid = int(pidfile.read_text())
    import time

    deadline = time.monotonic() + 5
    while _alive(pid):
        assert time.monotonic() < deadline, f"proxy {pid} outlived the test run"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_bad_fault_arguments_get_one_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(UPSTREAM)
    pytester.makepyfile(
        """
import pytest
from mlchaos.errors import ConfigError, RunError

def test_bad(mlchaos_proxy, upstream):
    proxy = mlchaos_proxy(upstream)
    with pytest.raises(ConfigError, match="give one fault"):
        with proxy.fault(abort=503, reset=True):
            pass
    with pytest.raises(RunError, match="400"):
        with proxy.fault(abort=700):
            pass
    with pytest.raises(ConfigError, match="http or tcp"):
        mlchaos_proxy(upstream, protocol="udp")
"""
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_is_error_reads_booleans_exceptions_statuses_and_responses() -> None:
    class Response:
        status_code = 502

    assert [is_error(x) for x in (True, False, ValueError(), 200, 503, Response())] == [
        True,
        False,
        True,
        False,
        True,
        True,
    ]
    with pytest.raises(TypeError, match="cannot tell whether 'ok' is an error"):
        is_error("ok")
    assert repr(latency_quantile([0.01] * 10, 0.5)).startswith("p50 latency 10.0 ms")
    assert not (error_rate([True] * 3 + [False] * 97) >= 0.05)


def test_the_example_suite_passes() -> None:
    """``examples/pytest/``: the style, on the toy model served as a process."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples/pytest"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "passed" in run.stdout
