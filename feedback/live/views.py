"""`GET /api/v1/live`: one person's event stream over a websocket, resumable by seq."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from feedback.accounts.auth import current_person, forget_person
from feedback.live import service
from feedback.live.hub import CLOSE_RESTART, CLOSE_SLOW, Subscriber
from feedback.ops.logs import REQUEST_ID
from feedback.ops.metrics import access_log
from feedback.security import same_origin
from feedback.web import state

POLICY_VIOLATION = 1008
log = logging.getLogger("feedback.live")
PATH = "/api/v1/live"
# Where _close notes the code it closed with, for the access log line.
_CLOSE_CODE = "feedback.close_code"


async def live_socket(websocket: WebSocket) -> None:
    app = state(websocket)
    base_origin = "{0.scheme}://{0.netloc}".format(urlsplit(app.settings.base_url))
    # Closing before accept refuses the handshake (HTTP 403): cross-site websocket hijacking
    # and anonymous callers never get a socket.
    if websocket.headers.get("origin") is None or not same_origin(websocket.headers, base_origin):
        await _close(websocket, POLICY_VIOLATION)
        return
    person = await current_person(websocket)
    if person is None:
        await _close(websocket, POLICY_VIOLATION)
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
        await _close(websocket, POLICY_VIOLATION)
        return
    _shed(websocket)

    async with app.db.transaction(write=False) as session:
        current = await service.last_seq(session, person_id=person_id)
        after = int(raw_after) if raw_after is not None else current
        resync = await service.needs_resync(session, person_id=person_id, after=after)
    # The name would keep the closed session (and its identity map) alive for as long as the
    # socket stays open: kilobytes per idle connection.
    del session
    hub = app.hub
    subscriber = hub.subscribe(person_id, after=current if resync else after)
    subscriber.pause()
    # Read until the client leaves; send from the mailbox whenever it fills. An idle
    # socket runs no task beyond this one: a sender task starts when a message arrives
    # and ends when the mailbox is empty again.
    sender: asyncio.Task[None] | None = None

    def start_sending() -> None:
        nonlocal sender
        if sender is None or sender.done():
            sender = asyncio.get_running_loop().create_task(_send(websocket, subscriber))
            sender.add_done_callback(_sent)

    try:
        await websocket.accept()
        if resync:
            await websocket.send_json({"type": "resync", "seq": current})
        # Also after a resync: an event committed between reading `current` and subscribing
        # was never offered to this subscriber, and only the table still has it.
        await _replay(websocket, subscriber)
        subscriber.resume()
        subscriber.queue.on_put = start_sending
        if not subscriber.queue.empty():
            start_sending()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
    except WebSocketDisconnect:
        pass
    finally:
        subscriber.queue.on_put = None
        if sender is not None and not sender.done():
            sender.cancel()
        hub.unsubscribe(subscriber)


def _shed(websocket: WebSocket) -> None:
    """Drop the request headers once the handshake has been checked.

    The scope's header list (a browser sends one or two KiB: cookies, user agent, ...) and
    Starlette's parsed copies of headers, cookies and query stay referenced for the
    socket's whole life, and nothing reads them after the checks above. Emptying them
    saves that much per idle socket (B3). If Starlette stops caching under these names,
    popping them does nothing.
    """
    websocket.scope["headers"] = []
    for cached in ("_headers", "_cookies", "_query_params"):
        websocket.__dict__.pop(cached, None)


async def _close(websocket: WebSocket, code: int, reason: str = "") -> None:
    websocket.scope[_CLOSE_CODE] = code
    await websocket.close(code=code, reason=reason)


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
            await _close(websocket, 1013, "too slow; reconnect with ?after=<last seq>")
            return
        if text == CLOSE_RESTART:
            await _close(websocket, 1012, "server restarting; reconnect")
            return
        await websocket.send_text(text)


route = WebSocketRoute(PATH, live_socket)
routes = [route]


async def entry(scope: Scope, receive: Receive, send: Send) -> None:
    """Where the app sends every websocket for PATH, ahead of its middleware and router.

    An idle socket keeps every frame between the server and its handler alive for as long
    as it stays open. The general middleware and the router add nothing this handler needs
    (it checks the Origin and the session itself), so skipping them saves several KiB per
    idle socket (see B3 in docs/benchmarks.md). This logs the socket's end as the access
    log does for everything else. The route stays in `routes` for url_for and the list.
    """
    scope["route"] = route
    request_id = Headers(scope=scope).get("x-request-id", "")[:64] or secrets.token_hex(8)
    token = REQUEST_ID.set(request_id)
    started = time.perf_counter()
    try:
        await live_socket(WebSocket(scope, receive, send))
    finally:
        access_log.info(
            "websocket %s closed %s after %.1fs",
            PATH,
            scope.get(_CLOSE_CODE, "by client"),
            time.perf_counter() - started,
            extra={"route": PATH, "kind": "websocket"},
        )
        REQUEST_ID.reset(token)
