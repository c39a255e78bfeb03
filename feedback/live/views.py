"""`GET /api/v1/live`: one person's event stream over a websocket, resumable by seq."""

from __future__ import annotations

import asyncio
import logging
import secrets
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from feedback.accounts.auth import current_person, forget_person
from feedback.live import service
from feedback.live.hub import CLOSE_RESTART, CLOSE_SLOW, Subscriber
from feedback.ops.logs import REQUEST_ID
from feedback.ops.metrics import logged_websocket
from feedback.security import same_origin
from feedback.web import state

POLICY_VIOLATION = 1008
log = logging.getLogger("feedback.live")
PATH = "/api/v1/live"


async def live_socket(websocket: WebSocket) -> None:
    app = state(websocket)
    base_origin = "{0.scheme}://{0.netloc}".format(urlsplit(app.settings.base_url))
    # Closing before accept refuses the handshake (HTTP 403): cross-site websocket hijacking
    # and anonymous callers never get a socket.
    if websocket.headers.get("origin") is None or not same_origin(websocket.headers, base_origin):
        await websocket.close(code=POLICY_VIOLATION)
        return
    person = await current_person(websocket)
    if person is None:
        await websocket.close(code=POLICY_VIOLATION)
        return
    person_id = person.id
    # An idle socket lives for hours: keep the id, not the loaded row.
    del person
    forget_person(websocket)
    raw_after = websocket.query_params.get("after")
    # ASCII digits only: str.isdigit() also accepts "²", which int() rejects. Eighteen
    # digits stay below 2**63, so the value always fits the database's integer column.
    if raw_after is not None and not (
        raw_after.isascii() and raw_after.isdigit() and len(raw_after) <= 18
    ):
        await websocket.close(code=POLICY_VIOLATION)
        return

    async with app.db.transaction(write=False) as session:
        current = await service.last_seq(session, person_id=person_id)
        after = int(raw_after) if raw_after is not None else current
        resync = await service.needs_resync(session, person_id=person_id, after=after)
    # The name would keep the closed session (and its identity map) alive for as long as the
    # socket stays open: kilobytes per idle connection.
    del session
    subscriber = app.hub.subscribe(person_id, after=current if resync else after)
    subscriber.pause()
    try:
        await websocket.accept()
        if resync:
            await websocket.send_json({"type": "resync", "seq": current})
        # Also after a resync: an event committed between reading `current` and subscribing
        # was never offered to this subscriber, and only the table still has it.
        await _replay(websocket, subscriber)
        subscriber.resume()
        await _serve(websocket, subscriber)
    except WebSocketDisconnect:
        pass
    finally:
        app.hub.unsubscribe(subscriber)


async def _serve(websocket: WebSocket, subscriber: Subscriber) -> None:
    """Read until the client leaves; send from the mailbox whenever it fills.

    An idle socket runs no task of its own beyond this one: a sender task starts when a
    message arrives and ends when the mailbox is empty again.
    """
    sender: asyncio.Task[None] | None = None

    def start_sending() -> None:
        nonlocal sender
        if sender is None or sender.done():
            sender = asyncio.get_running_loop().create_task(_send(websocket, subscriber))
            sender.add_done_callback(_sent)

    subscriber.queue.on_put = start_sending
    if not subscriber.queue.empty():
        start_sending()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
    finally:
        subscriber.queue.on_put = None
        if sender is not None and not sender.done():
            sender.cancel()


def _sent(task: asyncio.Task[None]) -> None:
    # A client gone mid-send is routine; retrieving the error keeps asyncio from logging
    # "Task exception was never retrieved". Anything else is logged as the bug it is.
    if task.cancelled():
        return
    error = task.exception()
    if error is not None and not isinstance(error, WebSocketDisconnect | OSError | RuntimeError):
        log.error("live sender failed", exc_info=error)


async def _replay(websocket: WebSocket, subscriber: Subscriber) -> None:
    """Send every kept event after the client's seq, reading in chunks, no session held open."""
    db = state(websocket).db
    while True:
        async with db.transaction(write=False) as session:
            chunk = await service.events_after(
                session, person_id=subscriber.person_id, after=subscriber.last_seq
            )
        for message in chunk:
            await websocket.send_text(message.text)
            subscriber.last_seq = message.seq
        if len(chunk) < service.REPLAY_LIMIT:
            return


async def _send(websocket: WebSocket, subscriber: Subscriber) -> None:
    queue = subscriber.queue
    while not queue.empty():
        text = queue.get_nowait()
        if text == CLOSE_SLOW:
            await websocket.close(code=1013, reason="too slow; reconnect with ?after=<last seq>")
            return
        if text == CLOSE_RESTART:
            await websocket.close(code=1012, reason="server restarting; reconnect")
            return
        await websocket.send_text(text)


route = WebSocketRoute(PATH, live_socket)
routes = [route]


async def _live_app(scope: Scope, receive: Receive, send: Send) -> None:
    await live_socket(WebSocket(scope, receive, send))


class LiveFastPath:
    """Outermost middleware: live sockets go straight to `live_socket`.

    An idle socket keeps every frame between the server and its handler alive for as long
    as it stays open. The general middleware and the router add nothing this handler needs
    (it checks the Origin and the session itself), so skipping them saves several KiB per
    idle socket (see B3 in docs/benchmarks.md). The route stays in `routes` for url_for
    and the route list; this path gets there first.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        request_id = Headers(scope=scope).get("x-request-id", "")[:64] or secrets.token_hex(8)
        token = REQUEST_ID.set(request_id)
        try:
            await logged_websocket(_live_app, scope, receive, send)
        finally:
            REQUEST_ID.reset(token)
