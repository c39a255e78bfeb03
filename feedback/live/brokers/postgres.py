"""PostgreSQL LISTEN/NOTIFY: wake-ups carry only recipient and seq; text comes from the table.

NOTIFY payloads are capped at 8000 bytes, far below what an event's text may need, so a
receiving hub treats a notification as "event seq exists for this person" and fetches
what its sockets have not delivered (Hub.wake). LISTEN needs a connection of its own that
is never returned to a pool, so this broker opens raw asyncpg connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from feedback.live.brokers import RemoteBroker
from feedback.live.events import LiveMessage
from feedback.live.hub import Hub

log = logging.getLogger("feedback.live")

CHANNEL = "feedback_live"
PAYLOAD_LIMIT = 7900  # bytes; PostgreSQL refuses 8000 and more
HEALTH_CHECK_SECONDS = 5.0


def plain_dsn(url: str) -> str:
    """asyncpg wants postgresql://, not SQLAlchemy's postgresql+asyncpg://."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def encode_wakes(origin: str, messages: list[LiveMessage]) -> list[str]:
    """Payloads of `origin r:s r:s ...`, the newest seq per recipient, each under the cap."""
    newest: dict[uuid.UUID, int] = {}
    for m in messages:
        newest[m.recipient_id] = max(m.seq, newest.get(m.recipient_id, 0))
    payloads: list[str] = []
    current = origin
    for recipient, seq in newest.items():
        item = f" {recipient.hex}:{seq}"
        if len(current) + len(item) > PAYLOAD_LIMIT:
            payloads.append(current)
            current = origin
        current += item
    if current != origin:
        payloads.append(current)
    return payloads


class PostgresBroker(RemoteBroker):
    kind = "postgresql"

    def __init__(
        self, url: str, hub: Hub, *, on_reconnect: Callable[[], None] | None = None
    ) -> None:
        super().__init__(hub, on_reconnect=on_reconnect)
        self.dsn = plain_dsn(url)
        # Shown in pg_stat_activity, so an operator (or a test) can find the listener.
        self.application_name = f"feedback-live-{self.origin}"
        self._sender: Any = None

    async def _listen(self, ready: Callable[[], None]) -> None:
        conn = await asyncpg.connect(
            self.dsn, timeout=5, server_settings={"application_name": self.application_name}
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._on_notify)
            ready()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(HEALTH_CHECK_SECONDS):
                        await lost.wait()
                if not lost.is_set():
                    # A server that vanished without closing the socket is only noticed by asking.
                    async with asyncio.timeout(HEALTH_CHECK_SECONDS):
                        await conn.fetchval("SELECT 1")
            raise ConnectionError("the LISTEN connection was closed")
        finally:
            conn.terminate()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        origin, _, items = payload.partition(" ")
        if origin == self.origin:
            return
        for item in items.split():
            try:
                recipient, seq = item.split(":")
                person_id, number = uuid.UUID(hex=recipient), int(seq)
            except ValueError:
                log.warning("ignored a malformed %s notification", CHANNEL)
                return
            self.received += 1
            self.hub.wake(person_id, number)

    async def _send(self, messages: list[LiveMessage]) -> None:
        if self._sender is None or self._sender.is_closed():
            self._sender = await asyncpg.connect(self.dsn, timeout=5)
        for payload in encode_wakes(self.origin, messages):
            await self._sender.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

    async def _reset_sender(self) -> None:
        if self._sender is not None:
            self._sender.terminate()
            self._sender = None

    async def _close(self) -> None:
        if self._sender is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._sender.close()
            self._sender = None
