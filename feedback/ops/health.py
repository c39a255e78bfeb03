"""GET /readyz (can this process serve?) and GET /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
import functools

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feedback import migrate
from feedback.web import state

CHECK_TIMEOUT_SECONDS = 3.0


@functools.cache
def _head(database_url: str) -> str | None:
    return migrate.head_revision(database_url)


async def readiness(request: Request) -> dict[str, str]:
    """Each check's verdict: "ok" or what is wrong, in words an operator can act on."""
    app = state(request)
    checks: dict[str, str] = {}
    try:
        revision = await asyncio.wait_for(
            migrate.current_revision(app.db.read_engine), timeout=CHECK_TIMEOUT_SECONDS
        )
    except Exception as exc:
        # The exception's text may carry the URL; its type is enough to act on.
        checks["database"] = f"unreachable ({type(exc).__name__})"
        checks["migrations"] = "unknown (database unreachable)"
    else:
        checks["database"] = "ok"
        head = _head(app.settings.database_url)
        checks["migrations"] = (
            "ok"
            if revision == head
            else f"at {revision or 'an empty schema'}, newest is {head}; run `feedback migrate`"
        )
    broker = app.broker
    checks["broker"] = "ok" if broker.connected else f"{broker.kind} broker not connected"
    return checks


async def readyz(request: Request) -> Response:
    checks = await readiness(request)
    failing = [name for name, verdict in checks.items() if verdict != "ok"]
    if not failing:
        return JSONResponse({"status": "ready", "checks": checks})
    detail = "; ".join(f"{name}: {checks[name]}" for name in failing)
    return JSONResponse(
        {"status": "unavailable", "error": "unavailable", "detail": detail, "checks": checks},
        status_code=503,
        headers={"cache-control": "no-store"},
    )


async def metrics(request: Request) -> Response:
    collected = request.state.metrics
    await collected.refresh(state(request).db)
    return Response(collected.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


routes = [
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
