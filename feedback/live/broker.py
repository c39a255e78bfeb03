"""Brokers carry wake-ups between the process that committed an event and the processes
holding the recipients' sockets.

- memory:// (default) serves a single process: messages go straight to the local hub.
- redis://host:port/db fans messages (recipient, seq and the encoded text) out over one
  pub/sub channel.
- postgresql://... sends NOTIFY with only recipient and seq (payloads are capped at 8000
  bytes); receiving hubs fetch the text from the events table.

Every broker delivers to the local hub first, so sockets in the committing process never
wait on the network. The events table stays the truth: a lost wake-up only delays an event
until the periodic catch-up (`CatchUp`) or the next event for that person notices the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from feedback.live.events import LiveMessage
from feedback.live.hub import Hub

log = logging.getLogger("feedback.live")

# How often connected people's newest seqs are compared with what their sockets delivered.
CATCH_UP_SECONDS = 5.0


class Broker(Protocol):
    #: memory, redis or postgresql; shown by /readyz and in logs.
    kind: str

    @property
    def connected(self) -> bool: ...

    async def start(self) -> None: ...
    async def publish(self, messages: Sequence[LiveMessage]) -> None: ...
    async def stop(self) -> None: ...


class MemoryBroker:
    """Single process: hand messages straight to the local hub."""

    kind = "memory"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    @property
    def connected(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def publish(self, messages: Sequence[LiveMessage]) -> None:
        self.hub.publish(messages)

    async def stop(self) -> None:
        return None


Heads = Callable[[list[uuid.UUID]], Awaitable[dict[uuid.UUID, int]]]


class CatchUp:
    """Heals wake-ups a remote broker lost (a dropped connection, a restart of Redis).

    Every few seconds, one query reads the newest seq of each person with an open socket
    here; sockets behind it fetch the rest from the events table. A broker calls `now()`
    after it reconnects, since whatever was published meanwhile never reached it.
    """

    def __init__(self, hub: Hub, heads: Heads, *, interval: float = CATCH_UP_SECONDS) -> None:
        self.hub = hub
        self.heads = heads
        self.interval = interval
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.healed = 0  # wake-ups this loop had to supply; non-zero means a broker lost some

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def now(self) -> None:
        self._poke.set()

    async def once(self) -> int:
        positions = self.hub.positions()
        if not positions:
            return 0
        heads = await self.heads(list(positions))
        woken = 0
        for person_id, head in heads.items():
            if head > positions.get(person_id, head):
                self.hub.wake(person_id, head)
                woken += 1
        self.healed += woken
        return woken

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._poke.wait()
            self._poke.clear()
            try:
                await self.once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down: try again next round
                log.warning("live catch-up failed: %s: %s", type(exc).__name__, exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def make_broker(url: str, hub: Hub, *, on_reconnect: Callable[[], None] | None = None) -> Broker:
    """The broker FEEDBACK_BROKER_URL names. `on_reconnect` runs after a lost link is back."""
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        return MemoryBroker(hub)
    if scheme in {"redis", "rediss"}:
        from feedback.live.brokers.redis import RedisBroker

        return RedisBroker(url, hub, on_reconnect=on_reconnect)
    if scheme.startswith(("postgresql", "postgres")):
        from feedback.live.brokers.postgres import PostgresBroker

        return PostgresBroker(url, hub, on_reconnect=on_reconnect)
    raise ValueError(
        f"FEEDBACK_BROKER_URL {scheme}:// is not supported; use memory://, redis:// or postgresql://"
    )
