"""A real uvicorn server on a free loopback port, and real clients to talk to it.

The server runs in a background thread with its own event loop, exactly as `feedback serve`
configures uvicorn (64 KiB incoming frames, no compression). Stopping and starting it again
keeps the port and the SQLite file, so a test can restart it under connected clients.
People are added straight into that file; everything else goes through HTTP and the
websocket, with httpx2 and the `websockets` client library.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
import uvicorn
from sqlmodel import col, select
from websockets.asyncio.client import ClientConnection, connect

from feedback.app import create_app
from feedback.crypto import Sealer
from feedback.db import Database
from feedback.models.mail import OutboxMail
from feedback.people import service as people
from feedback.web import AppState
from tests.conftest import TEST_SECRET, make_settings
from tests.factories import PASSWORD, person

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Server(uvicorn.Server):
    """uvicorn's server, remembering its loop so tests can run code next to the app."""

    loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)


class LiveServer:
    """One app on one database and one port, which can be stopped and started again."""

    def __init__(
        self,
        database: Path | str,
        *,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        send_buffer: int | None = None,
        **settings: Any,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/api/v1/live"
        self.settings = make_settings(database, base_url=self.base_url, **settings)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        # A small kernel send buffer on the listening socket (inherited by accepted ones)
        # makes a client that stops reading push back on the server after a few KiB.
        self.send_buffer = send_buffer
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        assert self._thread is None, "already running"
        config = uvicorn.Config(
            create_app(self.settings),
            ws_max_size=64 * 1024,
            ws_per_message_deflate=False,
            ws_ping_interval=self.ping_interval,
            ws_ping_timeout=self.ping_timeout,
            timeout_graceful_shutdown=3,
            log_level="warning",
            access_log=False,
        )
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.send_buffer is not None:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.setblocking(False)
        self._server = _Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listener]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server thread died while starting")
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not start within 15 s")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._thread is None or self._server is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=20)
        alive = self._thread.is_alive()
        self._thread = None
        self._server = None
        if alive:
            raise RuntimeError("the server did not stop within 20 s")

    async def restart(self) -> None:
        await asyncio.to_thread(self.stop)
        await asyncio.to_thread(self.start)

    async def call(self, fn: Callable[[AppState], Awaitable[T]]) -> T:
        """Run `fn(app_state)` on the server's own loop (to look at its hub, say)."""
        assert self._server is not None and self._server.loop is not None
        app_state: AppState = self._server.lifespan.state["app"]
        future = asyncio.run_coroutine_threadsafe(fn(app_state), self._server.loop)
        return await asyncio.wrap_future(future)


class User:
    """A logged-in person: an HTTP client holding their session cookie."""

    def __init__(self, server: LiveServer, email: str, http: httpx2.AsyncClient) -> None:
        self.server = server
        self.email = email
        self.http = http
        self.cookie = http.cookies["feedback_session"]

    async def ask(self, reviewers: list[str], **fields: Any) -> str:
        body = {"question": "How did my demo go?", "reviewers": reviewers, **fields}
        response = await self.http.post("/api/v1/requests", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def live(self, after: int | None = None, **kwargs: Any) -> Any:
        """`async with user.live(after=...) as ws`: this person's event stream."""
        url = self.server.ws_url + (f"?after={after}" if after is not None else "")
        return open_live(self.server, url, cookie=self.cookie, **kwargs)


def open_live(
    server: LiveServer,
    url: str | None = None,
    *,
    cookie: str | None = None,
    origin: str | None = "same",
    **kwargs: Any,
) -> Any:
    headers: dict[str, str] = {}
    if cookie is not None:
        headers["Cookie"] = f"feedback_session={cookie}"
    if origin == "same":
        headers["Origin"] = server.base_url
    elif origin is not None:
        headers["Origin"] = origin
    kwargs.setdefault("open_timeout", 5)
    kwargs.setdefault("close_timeout", 2)
    kwargs.setdefault("compression", None)
    return connect(url or server.ws_url, additional_headers=headers, **kwargs)


async def next_event(ws: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), within)
    return dict(json.loads(raw))


async def events_until(
    ws: ClientConnection, done: Callable[[dict[str, Any]], bool], within: float = 5.0
) -> list[dict[str, Any]]:
    """Every event up to and including the first for which `done` is true."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while True:
        event = await next_event(ws, max(0.01, deadline - time.monotonic()))
        seen.append(event)
        if done(event):
            return seen


async def quiet(ws: ClientConnection, seconds: float = 0.3) -> list[dict[str, Any]]:
    """Whatever else arrives within `seconds` (expected: nothing)."""
    extra: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        while True:
            extra.append(await next_event(ws, seconds))
    return extra


class World:
    """The server, direct access to its database file, and helpers to set people up."""

    def __init__(self, server: LiveServer, db: Database) -> None:
        self.server = server
        self.db = db
        self.sealer = Sealer(TEST_SECRET)
        self._clients: list[httpx2.AsyncClient] = []

    async def add(self, email: str, name: str | None = None, *, password: bool = True) -> None:
        """Add someone to the directory. Argon2 takes a good part of a second on a busy
        machine, so people who never log in (reviewers answering by link) get no password."""
        if password:
            await person(self.db, email, name=name)
            return
        async with self.db.transaction() as session:
            await people.add_person(session, email=email, name=name or email.split("@")[0])

    async def log_in(self, email: str) -> User:
        http = httpx2.AsyncClient(base_url=self.server.base_url, timeout=10)
        self._clients.append(http)
        response = await http.post("/api/v1/session", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return User(self.server, email, http)

    async def anonymous_http(self) -> httpx2.AsyncClient:
        http = httpx2.AsyncClient(base_url=self.server.base_url, timeout=10)
        self._clients.append(http)
        return http

    async def token_for(self, email: str, *, nth: int = -1) -> str:
        """The personal link token mailed to `email` (the last one unless told), from the outbox."""
        async with self.db.transaction(write=False) as session:
            mails = (
                await session.exec(
                    select(OutboxMail)
                    .where(OutboxMail.to_email == email)
                    .where(OutboxMail.template == "invitation")
                    .order_by(col(OutboxMail.created_at))
                )
            ).all()
        assert mails, f"no invitation mailed to {email}"
        sealed = mails[nth].sealed_context
        assert sealed is not None
        opened = self.sealer.open(sealed)
        assert opened is not None
        return str(opened["link"]).rsplit("/r/", 1)[1]

    async def close(self) -> None:
        for http in self._clients:
            await http.aclose()


@pytest.fixture
async def start_server(database_url: str) -> AsyncIterator[Callable[..., Awaitable[World]]]:
    """`world = await start_server(**settings)`: a running server on this test's database."""
    worlds: list[World] = []

    async def start(**options: Any) -> World:
        server = LiveServer(database_url, **options)
        await asyncio.to_thread(server.start)
        world = World(server, Database(server.settings))
        worlds.append(world)
        return world

    yield start
    for world in worlds:
        await world.close()
        await asyncio.to_thread(world.server.stop)
        await world.db.dispose()


@pytest.fixture
async def world(start_server: Callable[..., Awaitable[World]]) -> World:
    return await start_server()
