"""The application factory: settings in, a Starlette app out."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import Receive, Scope, Send

from feedback import migrate
from feedback.accounts import views as accounts_views
from feedback.answers import views as answers_views
from feedback.api import views as api_views
from feedback.crypto import Sealer
from feedback.db import Database
from feedback.errors import FeedbackError, Unavailable
from feedback.live import service as live_service
from feedback.live import views as live_views
from feedback.live.broker import CatchUp, MemoryBroker, make_broker
from feedback.live.events import LiveMessage, committed_messages
from feedback.live.hub import Hub
from feedback.mail import views as mail_views
from feedback.mail.outbox import Outbox
from feedback.mail.sender import MailSender
from feedback.models.people import Person
from feedback.ops import health
from feedback.ops.metrics import Metrics, OpsMiddleware
from feedback.paths import web_dir
from feedback.people import views as people_views
from feedback.requests import views as requests_views
from feedback.security import SecurityMiddleware
from feedback.settings import Settings, load_settings
from feedback.web import (
    AppState,
    error_response,
    handle_feedback_error,
    handle_http_error,
    handle_unexpected,
)

log = logging.getLogger("feedback")


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(web_dir() / "templates"))
    t.env.globals["static"] = lambda path: f"/static/{path}"
    return t


class FeedbackApp(Starlette):
    """The app, with one shortcut: live sockets go straight to their handler.

    An idle live socket keeps every coroutine frame between the server and its handler
    alive while it stays open, often for hours; the middleware stack and router add about
    4 KiB per socket and nothing the handler needs (see `feedback.live.views.entry`).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == live_views.PATH:
            scope["app"] = self
            await live_views.entry(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, run_migrations: bool = False) -> Starlette:
    settings = settings or load_settings()
    secret_key = settings.resolved_secret_key()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if run_migrations:
            await migrate.upgrade_async(settings.database_url)
        db = Database(settings)
        db.start()

        async def fetch_missing(person_id: Any, after: int) -> list[LiveMessage]:
            async with db.transaction(write=False) as session:
                return await live_service.events_after(session, person_id=person_id, after=after)

        async def heads(person_ids: list[Any]) -> dict[Any, int]:
            async with db.transaction(write=False) as session:
                rows = await session.exec(
                    select(Person.id, Person.last_event_seq).where(col(Person.id).in_(person_ids))
                )
                return {person_id: int(seq) for person_id, seq in rows}

        hub = Hub(fetch_missing=fetch_missing, queue_size=settings.live_queue_size)
        catch_up = CatchUp(hub, heads)
        broker = make_broker(settings.broker_url, hub, on_reconnect=catch_up.now)
        metrics = Metrics(hub, broker)
        sealer = Sealer(secret_key)
        sender = MailSender(db=db, settings=settings, sealer=sealer)

        async def after_commit(session: AsyncSession) -> None:
            messages = committed_messages(session)
            if messages:
                metrics.events_written.inc(len(messages))
                await broker.publish(messages)
            if session.info.pop("mail_queued", False):
                if sender.enabled:
                    sender.wake()
                else:
                    log.info(
                        "mail kept in the outbox (FEEDBACK_SMTP_URL is unset; admins see it at /admin/outbox)"
                    )

        db.after_commit.append(after_commit)
        await broker.start()
        # In one process every event reaches the hub directly; across processes a wake-up
        # can be lost, and the periodic catch-up finds it in the events table.
        if not isinstance(broker, MemoryBroker):
            catch_up.start()
        sender_task = asyncio.create_task(sender.run_forever()) if sender.enabled else None
        state = AppState(
            settings=settings,
            db=db,
            hub=hub,
            broker=broker,
            outbox=Outbox(base_url=settings.base_url, sealer=sealer),
            templates=templates(),
        )
        # Everything loaded so far (modules, the app, its engines) lives as long as the app:
        # keep it out of the cycle collector's full passes, which would otherwise walk it
        # all and stall every live socket for tens of milliseconds (B1's max: 80 -> 6 ms).
        gc.freeze()
        try:
            yield {"app": state, "metrics": metrics}
        finally:
            gc.unfreeze()
            hub.close_all()
            await catch_up.stop()
            if sender_task is not None:
                sender_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender_task
            await broker.stop()
            await db.dispose()

    routes = [
        *api_views.routes,
        *accounts_views.routes,
        *people_views.routes,
        *requests_views.routes,
        *answers_views.routes,
        *live_views.routes,
        *mail_views.routes,
        *health.routes,
        Mount("/static", app=StaticFiles(directory=str(web_dir() / "static")), name="static"),
    ]
    return FeedbackApp(
        routes=routes,
        middleware=[
            Middleware(OpsMiddleware),
            Middleware(SecurityMiddleware, base_url=settings.base_url),
        ],
        exception_handlers={
            FeedbackError: handle_feedback_error,
            # Outside Database.transaction (connecting, a pool's first query) a lost database
            # surfaces as the driver's or the OS's error; the user sees a 503 all the same.
            ConnectionError: handle_database_error,
            DBAPIError: handle_database_error,
            HTTPException: handle_http_error,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )


async def handle_database_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ConnectionError) or (isinstance(exc, DBAPIError) and _lost_connection(exc)):
        log.warning("database unreachable: %s", type(exc).__name__)
        return error_response(
            request, Unavailable("The database is unavailable right now; try again shortly.")
        )
    return await handle_unexpected(request, exc)


def _lost_connection(exc: DBAPIError) -> bool:
    if exc.connection_invalidated or isinstance(exc.orig, OSError):
        return True
    name = type(exc.orig).__name__ if exc.orig is not None else ""
    return name in {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "InterfaceError",
        "CannotConnectNowError",
        "AdminShutdownError",
    }


def app_from_env() -> Starlette:
    """The factory `feedback serve --workers N` hands uvicorn (workers re-import the app, so
    it must be built from the environment; migrations already ran in the parent)."""
    from feedback.ops.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_format)
    return create_app(settings)
