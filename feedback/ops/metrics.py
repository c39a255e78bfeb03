"""Prometheus metrics, one registry per app (never the process-global one, so several apps,
as in tests, never share counters), and the middleware that logs and times requests."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import col, select
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedback.models.mail import OutboxMail
from feedback.ops.logs import REQUEST_ID, redact

if TYPE_CHECKING:
    from feedback.db import Database
    from feedback.live.broker import Broker
    from feedback.live.hub import Hub

access_log = logging.getLogger("feedback.access")

UNMATCHED = "<unmatched>"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _LiveCollector(Collector):
    """Reads counters the hub and broker keep anyway, at scrape time."""

    def __init__(self, hub: Hub, broker: Broker) -> None:
        self.hub = hub
        self.broker = broker

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "feedback_live_sockets",
            "Open live websockets in this process",
            self.hub.connection_count,
        )
        yield CounterMetricFamily(
            "feedback_live_events_delivered",
            "Live events queued to a socket of this process",
            self.hub.delivered,
        )
        connected = GaugeMetricFamily(
            "feedback_broker_connected", "1 when the live broker is connected", labels=["kind"]
        )
        connected.add_metric([self.broker.kind], 1.0 if self.broker.connected else 0.0)
        yield connected
        dropped = getattr(self.broker, "dropped", 0)
        yield CounterMetricFamily(
            "feedback_broker_dropped",
            "Events the broker could not publish (other processes caught up from the table)",
            dropped,
        )


class Metrics:
    def __init__(self, hub: Hub, broker: Broker) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "feedback_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "feedback_http_request_duration_seconds",
            "HTTP request latency by route template and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events_written = Counter(
            "feedback_live_events_written", "Live events committed by this process", registry=r
        )
        self.outbox_backlog = Gauge(
            "feedback_mail_outbox_backlog",
            "Mail not yet sent and not given up (computed at scrape)",
            registry=r,
        )
        self.mail_failing = Gauge(
            "feedback_mail_failing",
            "Unsent mail whose last attempt failed and will be retried (computed at scrape)",
            registry=r,
        )
        self.mail_failed = Gauge(
            "feedback_mail_failed",
            "Mail given up after every attempt failed (computed at scrape)",
            registry=r,
        )
        self.database_up = Gauge(
            "feedback_database_up", "1 when the last scrape could read the database", registry=r
        )
        r.register(_LiveCollector(hub, broker))

    async def refresh(self, db: Database) -> None:
        """Gauges that come from the database, computed once per scrape."""
        try:
            async with db.transaction(write=False) as session:
                unsent = col(OutboxMail.sent_at).is_(None)
                alive = col(OutboxMail.failed_at).is_(None)
                backlog = (
                    await session.exec(select(func.count()).where(unsent).where(alive))
                ).one()
                failing = (
                    await session.exec(
                        select(func.count())
                        .where(unsent)
                        .where(alive)
                        .where(col(OutboxMail.last_error).is_not(None))
                    )
                ).one()
                failed = (
                    await session.exec(
                        select(func.count()).where(col(OutboxMail.failed_at).is_not(None))
                    )
                ).one()
        except Exception:
            self.database_up.set(0)
            return
        self.database_up.set(1)
        self.outbox_backlog.set(backlog)
        self.mail_failing.set(failing)
        self.mail_failed.set(failed)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return UNMATCHED
    if hasattr(route, "routes") or route.__class__.__name__ == "Mount":
        return f"{path}/{{path}}"
    return str(path)


class OpsMiddleware:
    """Outermost: gives every request an id (the X-Request-Id it came with, or a new one) that
    every log line carries, then logs and times it by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = headers.get("x-request-id", "")[:64] or secrets.token_hex(8)
        if "x-request-id" not in headers:
            # Inner middleware reads the id from the header: hand it the same one.
            scope["headers"] = [*scope["headers"], (b"x-request-id", request_id.encode())]
        token = REQUEST_ID.set(request_id)
        try:
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self._http(scope, receive, send)
        finally:
            REQUEST_ID.reset(token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        close_code: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "websocket.close":
                close_code.append(int(message.get("code", 1000)))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            access_log.info(
                "websocket %s closed %s after %.1fs",
                route_template(scope),
                close_code[0] if close_code else "by client",
                time.perf_counter() - started,
                extra={"route": route_template(scope), "kind": "websocket"},
            )

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except BaseException:
            if not status:
                status.append(500)
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            code = status[0] if status else 500
            method = scope["method"]
            metrics: Metrics | None = scope.get("state", {}).get("metrics")
            if metrics is not None:
                metrics.requests.labels(method, route, str(code)).inc()
                metrics.latency.labels(method, route, str(code)).observe(elapsed)
            access_log.info(
                "%s %s %d %.1fms",
                method,
                route if route != UNMATCHED else redact(scope.get("path", "")),
                code,
                elapsed * 1000,
                extra={
                    "method": method,
                    "route": route,
                    "status": code,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
