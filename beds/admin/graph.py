"""adminGraphBroker: collects the metric snapshots every node publishes and serves the dashboard.

Layer: operations (admin node). Snapshots arrive on the metrics exchange with key `node.<name>`; each
one feeds the ClusterView the admin node's services share (`ctx.shared["cluster"]`, also read by
`beds status`). Instance 0 serves the dashboard on `[admin] dashboard_listen`: the page and its
script (static files shipped in beds/admin/dashboard/) and `/api/cluster`, the view's summary,
which the page polls every second. Nothing is fetched from the network: machines may have none.
"""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from typing import Any

import msgspec
from aiohttp import web
from aiormq.abc import DeliveredMessage

from beds.admin.cluster import ClusterView
from beds.admin.service import QueueService
from beds.log import get_logger
from beds.ops.http import HttpEndpoint

log = get_logger("beds.admin.graph")
STATIC = {"/": ("index.html", "text/html"), "/dashboard.js": ("dashboard.js", "text/javascript")}


class GraphCollector(QueueService):
    no_ack = True   # a snapshot is disposable: the next one says more
    prefetch = 64

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.exchange = self.ctx.settings.ops.metrics_exchange
        self.keys = ("node.*",)
        self.view: ClusterView = self.ctx.shared.setdefault("cluster", ClusterView(
            self.ctx.settings.ops.snapshot_seconds, self.ctx.settings.admin.history_seconds))
        self._http: HttpEndpoint | None = None
        self._malformed = 0

    def queue_arguments(self) -> dict[str, Any]:
        # While no admin runs, snapshots must not pile up: only the last half minute, at most
        # a thousand, are kept. Fixed values, so a changed snapshot interval never makes the
        # declare disagree with the queue RabbitMQ already has.
        return {"x-queue-type": "classic", "x-message-ttl": 30_000, "x-max-length": 1_000,
                "x-overflow": "drop-head"}

    async def run(self, stop: asyncio.Event) -> None:
        if self.instance == 0 and self._http is None:
            listen = self.ctx.settings.admin.dashboard_listen
            if listen:
                endpoint = HttpEndpoint(dashboard_app(self.view), listen, "the dashboard")
                if await endpoint.start():
                    self._http = endpoint
        try:
            await super().run(stop)   # a lost channel raises: the page keeps serving meanwhile
        except asyncio.CancelledError:
            await self._close()
            raise
        finally:
            if stop.is_set():
                await self._close()

    async def _close(self) -> None:
        if self._http is not None:
            await self._http.stop()
            self._http = None

    async def handle(self, message: DeliveredMessage) -> None:
        try:
            self.view.add(msgspec.json.decode(message.body), time.time())
        except (msgspec.DecodeError, UnicodeDecodeError, ValueError) as exc:
            self._malformed += 1
            if self._malformed in (1, 10) or self._malformed % 1000 == 0:
                log.warning("snapshot.malformed", count=self._malformed, error=str(exc),
                            routing_key=getattr(message.delivery, "routing_key", None))


def dashboard_app(view: ClusterView) -> web.Application:
    """GET / (the page), /dashboard.js, /api/cluster (the summary as JSON)."""
    folder = resources.files("beds.admin") / "dashboard"
    pages = {path: (folder.joinpath(name).read_bytes(), kind)
             for path, (name, kind) in STATIC.items()}

    async def page(request: web.Request) -> web.Response:
        body, kind = pages[request.path]
        return web.Response(body=body, content_type=kind, charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    async def cluster(_request: web.Request) -> web.Response:
        return web.Response(body=msgspec.json.encode(view.summary()),
                            content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    app = web.Application()
    for path in pages:
        app.router.add_get(path, page)
    app.router.add_get("/api/cluster", cluster)
    return app
