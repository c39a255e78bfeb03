"""The live hub: fans committed events out to open sockets without ever awaiting one.

Each socket has a bounded queue. Publishing only does put_nowait; a socket whose queue is
full is told to close (code 1013) and resumes by seq. Seqs are per person and contiguous,
so a subscriber that sees a gap (a lost or reordered wake-up) fetches the missing events
from the events table, which is the truth; the broker is only a hint.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

from feedback.live.events import LiveMessage

# Sentinels put in a queue to make its socket close, with the close code to use.
CLOSE_SLOW = "\x00slow"  # 1013 Try Again Later: the client fell behind
CLOSE_RESTART = "\x00restart"  # 1012 Service Restart: reconnect, maybe to another process

log = logging.getLogger("feedback.live")

FetchMissing = Callable[[uuid.UUID, int], Awaitable[list[LiveMessage]]]


class Mailbox:
    """A bounded FIFO of texts for one socket, with the part of asyncio.Queue's interface
    the hub and the socket use. Lighter than a Queue: an idle socket holds an empty list and
    nothing else, no waiter futures, and `on_put` lets the socket start a sender only when
    there is something to send."""

    __slots__ = ("_items", "_maxsize", "_waiter", "on_put")

    def __init__(self, maxsize: int) -> None:
        # A list, not a deque: an empty deque already holds a 64-slot block (over 500
        # bytes), and a mailbox is nearly always empty. Mailboxes are short, so pop(0) is cheap.
        self._items: list[str] = []
        self._maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None
        self.on_put: Callable[[], None] | None = None

    def put_nowait(self, text: str) -> None:
        if len(self._items) >= self._maxsize:
            raise asyncio.QueueFull
        self._items.append(text)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self.on_put is not None:
            self.on_put()

    def get_nowait(self) -> str:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop(0)

    async def get(self) -> str:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def clear(self) -> None:
        self._items.clear()

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class Subscriber:
    """One open socket of one person."""

    __slots__ = (
        "hub",
        "person_id",
        "queue",
        "last_seq",
        "highest_seen",
        "overflowed",
        "_paused",
        "_catching_up",
    )

    def __init__(self, hub: Hub, person_id: uuid.UUID, *, after: int, queue_size: int) -> None:
        self.hub = hub
        self.person_id = person_id
        self.queue = Mailbox(queue_size)
        self.last_seq = after
        self.highest_seen = after
        self.overflowed = False
        self._paused = False
        self._catching_up: asyncio.Task[None] | None = None

    def offer(self, message: LiveMessage) -> None:
        """Called by the hub for each committed event of this person. Never blocks."""
        if self.overflowed or message.seq <= self.last_seq:
            return
        self.highest_seen = max(self.highest_seen, message.seq)
        if self._paused or self._catching_up is not None:
            return
        if message.seq != self.last_seq + 1:
            self._start_catch_up()
            return
        self._put(message)

    def wake(self, seq: int) -> None:
        """A hint without the text (e.g. a PostgreSQL NOTIFY): event `seq` exists in the table."""
        if self.overflowed or seq <= self.last_seq:
            return
        self.highest_seen = max(self.highest_seen, seq)
        if self._paused or self._catching_up is not None:
            return
        self._start_catch_up()

    def _put(self, message: LiveMessage) -> None:
        try:
            self.queue.put_nowait(message.text)
        except asyncio.QueueFull:
            self._overflow()
            return
        self.last_seq = message.seq
        self.hub.delivered += 1

    def _overflow(self) -> None:
        self.overflowed = True
        self.queue.clear()
        self.queue.put_nowait(CLOSE_SLOW)

    def _start_catch_up(self) -> None:
        self._catching_up = asyncio.get_running_loop().create_task(self._catch_up())

    def pause(self) -> None:
        """Hold live messages back while the socket replays from the table."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        if self.highest_seen > self.last_seq:
            self._start_catch_up()

    async def _catch_up(self) -> None:
        try:
            while self.highest_seen > self.last_seq and not self.overflowed:
                before = self.last_seq
                missing = await self.hub.fetch_missing(self.person_id, self.last_seq)
                for message in missing:
                    if message.seq == self.last_seq + 1 and not self.overflowed:
                        self._put(message)
                if self.last_seq == before and not self.overflowed:
                    # The table cannot fill the gap (those events are no longer kept).
                    # Waiting would leave the socket silent for good; closing makes the
                    # client reconnect with ?after, where it is told to resync.
                    self._overflow()
        except Exception:
            # Same if the table cannot be read: the client resumes by seq when it can.
            log.exception("live catch-up failed; closing the socket so the client resumes")
            if not self.overflowed:
                self._overflow()
        finally:
            self._catching_up = None

    def cancel(self) -> None:
        if self._catching_up is not None:
            self._catching_up.cancel()


class Hub:
    """All subscribers of this process, by person."""

    def __init__(self, *, fetch_missing: FetchMissing, queue_size: int) -> None:
        self.fetch_missing = fetch_missing
        self.queue_size = queue_size
        # Lists, not sets: most people have one or two sockets, and an empty set alone
        # costs more than a short list.
        self._subscribers: dict[uuid.UUID, list[Subscriber]] = defaultdict(list)
        self.delivered = 0

    def subscribe(self, person_id: uuid.UUID, *, after: int) -> Subscriber:
        subscriber = Subscriber(self, person_id, after=after, queue_size=self.queue_size)
        self._subscribers[person_id].append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subscriber.cancel()
        subscribers = self._subscribers.get(subscriber.person_id)
        if subscribers is not None:
            if subscriber in subscribers:
                subscribers.remove(subscriber)
            if not subscribers:
                del self._subscribers[subscriber.person_id]

    def publish(self, messages: Iterable[LiveMessage]) -> None:
        for message in messages:
            for subscriber in tuple(self._subscribers.get(message.recipient_id, ())):
                subscriber.offer(message)

    def wake(self, person_id: uuid.UUID, seq: int) -> None:
        """Fetch from the table up to `seq` for this person's sockets (text-less brokers)."""
        for subscriber in tuple(self._subscribers.get(person_id, ())):
            subscriber.wake(seq)

    def positions(self) -> dict[uuid.UUID, int]:
        """The lowest seq any socket of each connected person has delivered (for catch-up)."""
        return {
            person_id: min(s.last_seq for s in subscribers)
            for person_id, subscribers in self._subscribers.items()
            if subscribers
        }

    def close_all(self) -> None:
        """Ask every socket to close (shutdown); clients resume elsewhere by seq."""
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber.overflowed = True
                subscriber.queue.clear()
                subscriber.queue.put_nowait(CLOSE_RESTART)

    @property
    def connection_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())
