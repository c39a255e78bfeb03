"""The hub on its own: publishing never waits, one slow socket never hurts another, and a gap
in the seqs is filled from the events table (the truth), in order, exactly once."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import uuid

from sqlmodel import col, delete

from feedback.db import Database
from feedback.live import service as live_service
from feedback.live.events import LiveMessage, record_event
from feedback.live.hub import CLOSE_SLOW, Hub, Subscriber
from feedback.models.live import LiveEvent
from feedback.people import service as people


async def new_person(db: Database, email: str) -> uuid.UUID:
    async with db.transaction() as session:
        return (await people.add_person(session, email=email, name=email.split("@")[0])).id


async def record(db: Database, person_id: uuid.UUID, count: int) -> list[LiveMessage]:
    """Commit `count` events for one person, as services do, and return their messages."""
    async with db.transaction() as session:
        return [
            await record_event(
                session,
                recipient_id=person_id,
                type="request.progress",
                request_id=None,
                data={"progress": {"invited": count, "received": i}},
            )
            for i in range(count)
        ]


def table_backed_hub(db: Database, *, queue_size: int = 8) -> tuple[Hub, list[int]]:
    """A hub whose fetch_missing reads the real events table, counting its calls."""
    calls: list[int] = []

    async def fetch_missing(person_id: uuid.UUID, after: int) -> list[LiveMessage]:
        calls.append(after)
        async with db.transaction(write=False) as session:
            return await live_service.events_after(session, person_id=person_id, after=after)

    return Hub(fetch_missing=fetch_missing, queue_size=queue_size), calls


def fake(person_id: uuid.UUID, seq: int) -> LiveMessage:
    return LiveMessage(person_id, seq, json.dumps({"seq": seq}))


def drain(subscriber: Subscriber) -> list[str]:
    items = []
    while not subscriber.queue.empty():
        items.append(subscriber.queue.get_nowait())
    return items


def seqs(texts: list[str]) -> list[int]:
    return [json.loads(t)["seq"] for t in texts]


async def settle(condition: object, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_publishing_to_many_sockets_nobody_reads_never_waits() -> None:
    async def no_fetch(person_id: uuid.UUID, after: int) -> list[LiveMessage]:
        raise AssertionError("contiguous messages need no fetch")

    hub = Hub(fetch_missing=no_fetch, queue_size=8)
    person = uuid.uuid4()
    subscribers = [hub.subscribe(person, after=0) for _ in range(200)]
    # A plain function: the caller (after commit) cannot be made to wait by any socket.
    assert not inspect.iscoroutinefunction(hub.publish)

    started = time.perf_counter()
    for seq in range(1, 1001):
        assert hub.publish([fake(person, seq)]) is None
    elapsed = time.perf_counter() - started

    assert elapsed < 1.0, f"publishing 1000 events to 200 stuck sockets took {elapsed:.2f} s"
    for subscriber in subscribers:
        # Each full queue was emptied and left with one instruction: close with 1013.
        assert subscriber.overflowed
        assert drain(subscriber) == [CLOSE_SLOW]


async def test_an_overflowing_socket_is_closed_and_no_other_is_touched() -> None:
    async def no_fetch(person_id: uuid.UUID, after: int) -> list[LiveMessage]:
        raise AssertionError("contiguous messages need no fetch")

    hub = Hub(fetch_missing=no_fetch, queue_size=8)
    priya, ravi = uuid.uuid4(), uuid.uuid4()
    fast = hub.subscribe(priya, after=0)
    slow = hub.subscribe(priya, after=0)
    neighbour = hub.subscribe(ravi, after=0)
    received: list[str] = []

    async def read_fast() -> None:
        while True:
            received.append(await fast.queue.get())

    reader = asyncio.create_task(read_fast())
    try:
        for seq in range(1, 21):
            hub.publish([fake(priya, seq)])
            await asyncio.sleep(0)  # the fast socket's sender gets its turn
        hub.publish([fake(ravi, 1)])
        await settle(lambda: len(received) == 20)
    finally:
        reader.cancel()

    assert seqs(received) == list(range(1, 21))
    assert not fast.overflowed
    assert slow.overflowed and drain(slow) == [CLOSE_SLOW]
    assert not neighbour.overflowed and seqs(drain(neighbour)) == [1]
    assert hub.connection_count == 3  # closing is the socket's job; the hub only asks


async def test_a_gap_is_filled_from_the_events_table_in_order_exactly_once(db: Database) -> None:
    priya = await new_person(db, "priya@example.com")
    messages = await record(db, priya, 5)
    assert [m.seq for m in messages] == [1, 2, 3, 4, 5]
    hub, fetches = table_backed_hub(db)
    subscriber = hub.subscribe(priya, after=0)

    # Wake-ups arrive late and out of order: 1, then 4 (2 and 3 not yet), then the rest.
    hub.publish([messages[0]])
    hub.publish([messages[3]])
    await settle(lambda: subscriber.queue.qsize() == 5 and subscriber._catching_up is None)
    hub.publish([messages[1], messages[2], messages[4], messages[0]])

    texts = drain(subscriber)
    assert seqs(texts) == [1, 2, 3, 4, 5]
    assert texts == [m.text for m in messages]  # byte for byte what the table holds
    assert fetches == [1]
    assert not subscriber.overflowed


async def test_wake_ups_of_two_commits_in_reverse_order_still_deliver_in_order(
    db: Database,
) -> None:
    priya = await new_person(db, "priya@example.com")
    first = await record(db, priya, 1)
    second = await record(db, priya, 1)
    hub, fetches = table_backed_hub(db)
    subscriber = hub.subscribe(priya, after=0)

    hub.publish(second)
    hub.publish(first)
    await settle(lambda: subscriber.queue.qsize() == 2 and subscriber._catching_up is None)

    assert seqs(drain(subscriber)) == [1, 2]
    assert fetches == [0]


async def test_a_socket_replaying_on_connect_catches_up_on_what_was_published_meanwhile(
    db: Database,
) -> None:
    priya = await new_person(db, "priya@example.com")
    hub, fetches = table_backed_hub(db)
    subscriber = hub.subscribe(priya, after=0)
    subscriber.pause()  # the socket is replaying from the table

    hub.publish(await record(db, priya, 3))
    assert subscriber.queue.empty()
    subscriber.last_seq = 1  # the replay had read up to seq 1 before those commits
    subscriber.resume()
    await settle(lambda: subscriber.queue.qsize() == 2 and subscriber._catching_up is None)

    assert seqs(drain(subscriber)) == [2, 3]
    assert fetches == [1]


async def test_a_socket_whose_catch_up_cannot_read_the_table_is_told_to_reconnect() -> None:
    async def broken_fetch(person_id: uuid.UUID, after: int) -> list[LiveMessage]:
        raise ConnectionError("database unreachable")

    hub = Hub(fetch_missing=broken_fetch, queue_size=8)
    person = uuid.uuid4()
    subscriber = hub.subscribe(person, after=0)
    hub.publish([fake(person, 2)])  # seq 1 missing: needs the table
    await settle(lambda: subscriber._catching_up is None)

    # Rather than sitting silent forever, the socket closes and the client resumes by seq.
    assert subscriber.overflowed
    assert drain(subscriber) == [CLOSE_SLOW]


async def test_a_gap_the_table_no_longer_holds_closes_the_socket_instead_of_going_silent(
    db: Database,
) -> None:
    priya = await new_person(db, "priya@example.com")
    messages = await record(db, priya, 3)
    async with db.transaction() as session:
        await session.exec(delete(LiveEvent).where(col(LiveEvent.seq) <= 2))  # pruned
    hub, fetches = table_backed_hub(db)
    subscriber = hub.subscribe(priya, after=0)

    hub.publish([messages[2]])
    await settle(lambda: subscriber._catching_up is None)

    assert fetches == [0]
    assert subscriber.overflowed
    assert drain(subscriber) == [CLOSE_SLOW]  # on reconnect, ?after=0 gets a resync
