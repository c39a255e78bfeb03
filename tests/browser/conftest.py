"""Fixtures for driving the real app in headless Chromium.

Each test gets a real uvicorn server on a free loopback port, on its own migrated SQLite
file, delivering mail over real SMTP to an in-process aiosmtpd server, so a reviewer's
link is opened exactly as it was emailed. One Chromium process is shared by each module;
every test opens its own contexts (separate cookies, viewports, online/offline state).

The sync Playwright API cannot run inside a running asyncio loop, and pytest-asyncio runs
in auto mode, so browser tests are plain sync functions and the server runs in a thread
with its own loop.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import pytest

from feedback.db import Database
from feedback.models.people import Role
from feedback.settings import Settings
from tests.conftest import make_settings, skip_or_fail
from tests.factories import PASSWORD, person

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips (or fails in CI) with the reason
    expect = None  # type: ignore[assignment]

T = TypeVar("T")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
# Pixel 7's size, as a touch phone; written out so it doesn't depend on Playwright's device list.
PHONE = {
    "viewport": {"width": 412, "height": 839},
    "device_scale_factor": 2.625,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36"
    ),
}
LINK = re.compile(r"https?://[^\s\"'<>]+/r/[A-Za-z0-9_\-]+")


def free_socket() -> socket.socket:
    """A listening-ready socket on a free loopback port; handing it to the server over
    avoids the race of picking a port number and binding it later."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync test code. Playwright's sync API keeps an
    event loop running on the test's thread, so asyncio.run needs a thread of its own."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(asyncio.run(make()))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


# Mail


class Mailbox:
    """Messages the app delivered over SMTP, by recipient."""

    def __init__(self) -> None:
        self._arrived: queue.Queue[EmailMessage] = queue.Queue()
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self._arrived.put(message)
        return "250 OK"

    def wait_for(self, to: str, timeout: float = 10) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages:
                if message["To"] == to:
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [m["To"] for m in self.messages]
                raise AssertionError(f"no mail to {to} within {timeout}s (got mail to {seen})")
            try:
                self.messages.append(self._arrived.get(timeout=remaining))
            except queue.Empty:
                continue

    def link_for(self, to: str, timeout: float = 10) -> str:
        """The personal answer link in the plain-text part of the invitation to `to`."""
        body = self.wait_for(to, timeout).get_body(preferencelist=("plain",))
        assert body is not None
        found = LINK.search(body.get_content())
        assert found, f"no /r/ link in the mail to {to}"
        return found.group(0)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    with closing(free_socket()) as sock:
        port = sock.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.port = port  # type: ignore[attr-defined]
    try:
        yield box
    finally:
        controller.stop()


# The server


@dataclass
class LiveServer:
    url: str
    settings: Settings
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def add_person(self, email: str, name: str, role: Role = Role.employee) -> None:
        """Add someone through the app's own services, on the server's database."""

        async def add() -> None:
            db = Database(self.settings)
            try:
                await person(db, email, name=name, role=role)
            finally:
                await db.dispose()

        run_async(add)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "uvicorn did not stop"


def start_server(settings_for: Callable[[str], Settings], *, sock: socket.socket) -> LiveServer:
    import uvicorn

    from feedback.app import create_app

    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    settings = settings_for(url)
    config = uvicorn.Config(
        create_app(settings),
        # Same websocket options as `feedback serve`.
        ws_max_size=64 * 1024,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=2,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return LiveServer(url=url, settings=settings, _server=server, _thread=thread)


@pytest.fixture
def server(database_url: str, mailbox: Mailbox) -> Iterator[LiveServer]:
    sock = free_socket()
    live = start_server(
        lambda url: make_settings(
            database_url,
            base_url=url,
            smtp_url=f"smtp://127.0.0.1:{mailbox.port}",  # type: ignore[attr-defined]
        ),
        sock=sock,
    )
    try:
        yield live
    finally:
        live.stop()
        sock.close()


# The browser


# Module scope, not session: while sync Playwright runs it keeps an event loop marked as
# running on this thread, which would break asyncio.run in every later non-browser test.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing; install Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_context(browser: Any, server: LiveServer) -> Iterator[Callable[..., Any]]:
    """Opens browser contexts on the server; closes them before the server stops, so no
    websocket is left for uvicorn's shutdown to wait for."""
    opened: list[Any] = []

    def open_context(device: dict[str, Any] | None = None, **options: Any) -> Any:
        context = browser.new_context(base_url=server.url, **(device or DESKTOP), **options)
        context.set_default_timeout(5000)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


def log_in(context: Any, email: str) -> None:
    """Log a context in through the API (the form itself is tested once, in the step 1 test)."""
    response = context.request.post("/api/v1/session", data={"email": email, "password": PASSWORD})
    assert response.status == 200, response.text()
