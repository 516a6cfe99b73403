"""Headless Chromium for the tests, driven over the DevTools Protocol with aiohttp.

Chromium is started as a process and spoken to over its DevTools websocket: no new
dependency. ``inspect_report`` opens a report from disk and returns what a person would see —
errors the page logged, its charts and their sizes, screenshots. Without ``chromium`` the
calling test skips with the install line, unless ``MLCHAOS_REQUIRE_CHROMIUM=1`` (as in CI),
where that is a failure.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import queue
import re
import shutil
import signal
import struct
import subprocess
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

WIDTH, HEIGHT = 1200, 900
TIMEOUT = 30.0


def chromium() -> str:
    exe = shutil.which("chromium")
    if exe is not None:
        return exe
    if os.environ.get("MLCHAOS_REQUIRE_CHROMIUM") == "1":
        pytest.fail("chromium is not installed (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


@contextlib.contextmanager
def headless_chromium(profile: Path) -> Iterator[str]:
    """A headless Chromium with its profile in ``profile``; yields its DevTools websocket URL.
    It runs in its own process group, which is killed afterwards (no orphaned renderer)."""
    exe = chromium()
    proc = subprocess.Popen(
        [
            exe,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:  # read stderr to its end, or Chromium blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        seen = []
        while True:
            line = lines.get(timeout=TIMEOUT)
            if line is None:
                pytest.fail("chromium exited before DevTools listened:\n" + "".join(seen))
            seen.append(line)
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                break
        yield match[1]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        reader.join(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


@dataclass
class Page:
    """One browser tab over the DevTools Protocol (flat session on the browser's socket)."""

    ws: Any
    session: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        await self.ws.send_json(message)
        while True:
            data = await asyncio.wait_for(self.ws.receive_json(), TIMEOUT)
            if data.get("id") == self.next_id:
                assert "error" not in data, f"{method}: {data['error']}"
                result: dict[str, Any] = data["result"]
                return result
            self.events.append(data)

    async def wait_for(self, method: str) -> dict[str, Any]:
        async def next_event() -> dict[str, Any]:
            while True:
                for i, e in enumerate(self.events):
                    if e.get("method") == method:
                        return self.events.pop(i)
                self.events.append(await self.ws.receive_json())

        return await asyncio.wait_for(next_event(), TIMEOUT)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"]["value"]

    async def open(self, url: str) -> None:
        self.events.clear()
        await self.send("Page.navigate", url=url)
        await self.wait_for("Page.loadEventFired")

    async def screenshot(self, scale: float = 1.0) -> bytes:
        clip = {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT, "scale": scale}
        shot = await self.send("Page.captureScreenshot", format="png", clip=clip)
        return base64.b64decode(shot["data"])

    def problems(self) -> list[str]:
        """Errors the page logged, exceptions it raised, dialogs it opened."""
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                out.append(f"console.error: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                out.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(f"log: {params['entry'].get('text')}")
            elif method == "Page.javascriptDialogOpening":
                out.append(f"dialog: {params.get('message')}")
        return out


async def with_page(ws_url: str, visit: Any) -> Any:
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(ws_url, max_msg_size=0) as ws,
    ):
        page = Page(ws)
        target = await page.send("Target.createTarget", url="about:blank")
        attached = await page.send(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        page.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )
        return await visit(page)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height


def png_colours(data: bytes) -> set[bytes]:
    """The distinct pixel colours of an 8-bit RGB(A) PNG, decoded with zlib and the five
    scanline filters of the PNG specification."""
    pos, idat = 8, b""
    width = height = bpp = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw, stride = zlib.decompress(idat), width * bpp
    prev, colours = bytearray(stride), set()
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        colours.update(bytes(line[i : i + 3]) for i in range(0, stride, bpp))
        prev = line
    return colours


async def _inspect(page: Page, report: Path) -> dict[str, Any]:
    await page.open("about:blank")
    blank = await page.screenshot()
    await page.open(report.as_uri())
    await asyncio.sleep(0.2)  # let late console messages arrive
    await page.send("Runtime.evaluate", expression="0")
    charts = await page.evaluate(
        "[...document.querySelectorAll('svg.chart')].map(e => {"
        " const r = e.getBoundingClientRect();"
        " return {name: e.dataset.chart, width: r.width, height: r.height}; })"
    )
    return {
        "problems": page.problems(),
        "charts": charts,
        "title": await page.evaluate("document.querySelector('h1').textContent"),
        "scripts": await page.evaluate("document.scripts.length"),
        "blank": blank,
        "shot": await page.screenshot(),
        "small": await page.screenshot(scale=0.25),
    }


def inspect_report(ws_url: str, report: Path) -> dict[str, Any]:
    """Open ``report`` in a new tab: problems logged, charts laid out, scripts, screenshots."""

    async def visit(page: Page) -> dict[str, Any]:
        return await _inspect(page, report)

    result: dict[str, Any] = asyncio.run(with_page(ws_url, visit))
    return result


def assert_renders(seen: dict[str, Any], report: Path) -> None:
    """The checks every report must pass in the browser: no error, no script, every chart laid
    out with a size, a screenshot of the viewport's size that is not blank."""
    assert seen["problems"] == [], report
    assert seen["scripts"] == 0, report
    expected_charts = report.read_text().count('<svg class="chart"')
    assert len(seen["charts"]) == expected_charts > 0, report
    for chart in seen["charts"]:
        assert chart["width"] > 100 and chart["height"] > 50, (report, chart)
    assert png_size(seen["shot"]) == (WIDTH, HEIGHT)
    assert png_size(seen["small"]) == (WIDTH // 4, HEIGHT // 4)
    assert seen["shot"] != seen["blank"]
    assert len(png_colours(seen["blank"])) <= 2  # what blank looks like to this check
    assert len(png_colours(seen["small"])) > 50, report  # text, charts, the coloured verdict
