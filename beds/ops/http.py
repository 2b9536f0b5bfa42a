"""Per-node HTTP endpoints: /live, /ready and /metrics (Prometheus text format).

Layer: operations. `/live` says the process answers; `/ready` says it should get traffic: it
is connected to RabbitMQ, its consumers are registered, it is not draining, and every datasource
answers a ping. Read replicas' states are shown there too, without deciding readiness. A bind
failure (port taken) is logged and the node keeps serving without them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from beds.config.ops import split_listen
from beds.log import get_logger

log = get_logger("beds.http")
Readiness = Callable[[], Awaitable[dict[str, Any]]]
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def passed(checks: dict[str, Any]) -> bool:
    """Ready when every check is True; a dict is information (read replicas' states), not a
    check: a lagging replica does not take the node out of service."""
    return all(v is True or isinstance(v, dict) for v in checks.values())


def health_app(readiness: Readiness, exposition: Callable[[], Awaitable[bytes]]) -> web.Application:
    async def live(_request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def ready(_request: web.Request) -> web.Response:
        checks = await readiness()
        ok = passed(checks)
        return web.json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=await exposition(), headers={"Content-Type": PROMETHEUS_TEXT})

    app = web.Application()
    app.router.add_get("/live", live)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app


class HttpEndpoint:
    """Serves an aiohttp application on `host:port` for as long as the node runs."""

    def __init__(self, app: web.Application, listen: str, what: str) -> None:
        self._app = app
        self._listen = listen
        self._what = what
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> bool:
        host, port = split_listen(self._listen)
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            log.error("http.unavailable", serves=self._what, listen=self._listen,
                      error=f"{exc.strerror or exc}",
                      hint="another process holds the port: set [ops] http_listen / "
                           "BEDS_HTTP_LISTEN (or [admin] dashboard_listen) per node")
            return False
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        log.info("http.listening", serves=self._what, host=host, port=self.port)
        return True

    async def stop(self) -> None:
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._runner.cleanup(), 5)
            self._runner = None
