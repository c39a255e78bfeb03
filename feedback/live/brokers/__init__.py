"""Brokers that reach other processes: the shared reconnect and publish machinery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence

from feedback.live.events import LiveMessage
from feedback.live.hub import Hub

log = logging.getLogger("feedback.live")

# Commits waiting to go out. Past this the broker is down or hopelessly slow; dropping is
# safe because every receiving process catches up from the events table.
OUTGOING_LIMIT = 10_000
MAX_BACKOFF_SECONDS = 5.0
START_WAIT_SECONDS = 3.0


class RemoteBroker:
    """Delivers locally at once, sends to other processes from one background task, and
    keeps one listening connection, reopened with backoff whenever it drops."""

    kind = "remote"

    def __init__(self, hub: Hub, *, on_reconnect: Callable[[], None] | None = None) -> None:
        self.hub = hub
        # Messages carry their sender's origin so a process skips its own (already delivered).
        self.origin = uuid.uuid4().hex[:12]
        self.on_reconnect = on_reconnect
        self._outgoing: asyncio.Queue[list[LiveMessage]] = asyncio.Queue(maxsize=OUTGOING_LIMIT)
        self._listening = False
        self._first_listen = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.sent = 0
        self.dropped = 0
        self.received = 0
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        return self._listening

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen_forever()),
            loop.create_task(self._publish_forever()),
        ]
        # A healthy broker is connected before the first request; one that is down does not
        # stop the app: it keeps retrying and /readyz reports it until it is back.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_WAIT_SECONDS):
                await self._first_listen.wait()
        if not self._listening:
            log.warning(
                "live broker %s is not reachable yet; retrying in the background", self.kind
            )

    async def publish(self, messages: Sequence[LiveMessage]) -> None:
        self.hub.publish(messages)
        try:
            self._outgoing.put_nowait(list(messages))
        except asyncio.QueueFull:
            self.dropped += len(messages)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._listening = False
        await self._close()

    # Subclasses provide these.

    async def _listen(self, ready: Callable[[], None]) -> None:
        """Connect, subscribe, call ready(), then deliver until the connection fails."""
        raise NotImplementedError

    async def _send(self, messages: list[LiveMessage]) -> None:
        raise NotImplementedError

    async def _reset_sender(self) -> None:
        return None

    async def _close(self) -> None:
        return None

    # The machinery.

    def _ready(self) -> None:
        if self._first_listen.is_set():
            self.reconnects += 1
            log.info("live broker %s reconnected", self.kind)
        self._listening = True
        self._first_listen.set()
        # Whatever was published while we were not listening never reached us.
        if self.on_reconnect is not None:
            self.on_reconnect()

    async def _listen_forever(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._listen(self._ready)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._listening:
                    log.warning(
                        "live broker %s lost its connection (%s: %s); reconnecting",
                        self.kind,
                        type(exc).__name__,
                        exc,
                    )
                    backoff = 0.1
            self._listening = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _publish_forever(self) -> None:
        while True:
            batch = await self._outgoing.get()
            while not self._outgoing.empty():
                batch.extend(self._outgoing.get_nowait())
            try:
                await self._send(batch)
                self.sent += len(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.dropped += len(batch)
                log.warning(
                    "live broker %s could not publish %d events (%s: %s); other processes "
                    "will catch up from the events table",
                    self.kind,
                    len(batch),
                    type(exc).__name__,
                    exc,
                )
                await self._reset_sender()
