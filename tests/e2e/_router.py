"""A router that forwards every request to one upstream but, like many real routers, passes on
only the headers it knows: the ``x-mlchaos-arm`` header is lost on the way.

Run as ``python tests/e2e/_router.py UPSTREAM_PORT``; it prints ``ready PORT`` once listening.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp
from aiohttp import web


async def main(upstream: int) -> None:
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        url = f"http://127.0.0.1:{upstream}{request.path_qs}"
        headers = {"content-type": request.headers.get("content-type", "application/json")}
        async with session.request(
            request.method, url, data=await request.read(), headers=headers
        ) as resp:
            body = await resp.read()
            return web.Response(status=resp.status, body=body, content_type=resp.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"ready {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
