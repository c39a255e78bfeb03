"""Brokers between processes: each test runs two nodes (hub + broker, wired as the app wires
them) in one event loop on one real database, and a real Redis or PostgreSQL between them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlmodel import col, select

from feedback.db import Database
from feedback.live import service as live_service
from feedback.live.broker import Broker, CatchUp, MemoryBroker, make_broker
from feedback.live.brokers.postgres import PAYLOAD_LIMIT, encode_wakes
from feedback.live.events import LiveMessage, committed_messages, record_event
from feedback.live.hub import Hub, Subscriber
from feedback.models.people import Person
from feedback.settings import Settings
from tests.factories import person

DELIVERY_TIMEOUT = 1.0


class Node:
    """What one `feedback serve` process holds: a hub, a broker and the periodic catch-up."""

    def __init__(self, db: Database, broker_url: str, *, catch_up_every: float = 5.0) -> None:
        self.db = db

        async def fetch_missing(person_id: uuid.UUID, after: int) -> list[LiveMessage]:
            async with db.transaction(write=False) as session:
                return await live_service.events_after(session, person_id=person_id, after=after)

        async def heads(ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
            async with db.transaction(write=False) as session:
                rows = await session.exec(
                    select(Person.id, Person.last_event_seq).where(col(Person.id).in_(ids))
                )
                return {pid: int(seq) for pid, seq in rows}

        self.hub = Hub(fetch_missing=fetch_missing, queue_size=64)
        self.catch_up = CatchUp(self.hub, heads, interval=catch_up_every)
        self.broker: Broker = make_broker(broker_url, self.hub, on_reconnect=self.catch_up.now)

    async def start(self) -> None:
        await self.broker.start()
        self.catch_up.start()

    async def stop(self) -> None:
        await self.catch_up.stop()
        await self.broker.stop()

    async def answer(self, recipient: uuid.UUID, body: str, *, publish: bool = True) -> int:
        """Commit one event for `recipient`, as a view would, and publish it after commit."""
        async with self.db.transaction() as session:
            event = await record_event(
                session,
                recipient_id=recipient,
                type="response.created",
                request_id=None,
                data={"body": body},
            )
            messages_session = session
        messages = committed_messages(messages_session)
        if publish:
            await self.broker.publish(messages)
        return event.seq


async def received(subscriber: Subscriber, within: float = DELIVERY_TIMEOUT) -> str:
    return await asyncio.wait_for(subscriber.queue.get(), timeout=within)


async def eventually(check: Callable[[], Awaitable[bool]], within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


NodePair = Callable[..., Awaitable[tuple[Node, Node]]]


@pytest.fixture
async def pair(db: Database) -> AsyncIterator[NodePair]:
    started: list[Node] = []

    async def make(broker_url: str, **kwargs: Any) -> tuple[Node, Node]:
        a, b = Node(db, broker_url, **kwargs), Node(db, broker_url, **kwargs)
        for node in (a, b):
            await node.start()
            started.append(node)
        return a, b

    yield make
    for node in started:
        await node.stop()


@pytest.fixture
def pg_broker_url(postgres_url: str) -> str:
    return postgres_url


@pytest.mark.redis
async def test_redis_carries_an_answer_to_a_socket_held_by_the_other_process(
    pair: NodePair, db: Database, redis_url: str
) -> None:
    a, b = await pair(redis_url)
    priya = await person(db, "priya@example.com")
    socket_on_b = b.hub.subscribe(priya.id, after=0)

    await a.answer(priya.id, "Clear demo, good pace.")

    text = await received(socket_on_b)
    assert '"seq":1' in text and "Clear demo, good pace." in text
    assert a.broker.connected and b.broker.connected


@pytest.mark.redis
async def test_redis_delivers_in_the_publishing_process_without_a_round_trip(
    pair: NodePair, db: Database, redis_url: str
) -> None:
    a, _ = await pair(redis_url)
    priya = await person(db, "priya@example.com")
    socket_on_a = a.hub.subscribe(priya.id, after=0)

    await a.answer(priya.id, "First")
    await a.answer(priya.id, "Second")

    # Delivered once each, in order: the echo of its own messages from Redis is skipped.
    assert "First" in await received(socket_on_a)
    assert "Second" in await received(socket_on_a)
    await asyncio.sleep(0.2)
    assert socket_on_a.queue.empty()


@pytest.mark.postgres
async def test_notify_wakes_the_other_process_which_reads_the_answer_from_the_table(
    pair: NodePair, db: Database, pg_broker_url: str
) -> None:
    a, b = await pair(pg_broker_url)
    priya = await person(db, "priya@example.com")
    socket_on_b = b.hub.subscribe(priya.id, after=0)

    long_body = "x" * 9000  # larger than any NOTIFY payload may be
    await a.answer(priya.id, long_body)

    text = await received(socket_on_b)
    assert long_body in text


@pytest.mark.redis
async def test_redis_broker_reconnects_after_its_connection_is_killed_and_catches_up(
    pair: NodePair, db: Database, redis_url: str
) -> None:
    import redis.asyncio as redis

    a, b = await pair(redis_url)
    priya = await person(db, "priya@example.com")
    socket_on_b = b.hub.subscribe(priya.id, after=0)
    admin = redis.Redis.from_url(redis_url)
    try:
        killed = 0
        name = f"feedback-live-{getattr(b.broker, 'origin', '')}"
        for entry in await admin.client_list():
            if entry.get("name") == name and "subscribe" in entry.get("cmd", ""):
                killed += await admin.client_kill_filter(_id=entry["id"])
        assert killed >= 1, "found no listener connection to kill"

        # Published while B is not listening: Redis drops it for B.
        await a.answer(priya.id, "Sent during the outage")
        text = await received(socket_on_b, within=5)
        assert "Sent during the outage" in text
        await eventually(lambda: _true(b.broker.connected), within=5)
        assert getattr(b.broker, "reconnects", 0) >= 1

        await a.answer(priya.id, "After the outage")
        assert "After the outage" in await received(socket_on_b)
    finally:
        await admin.aclose()


@pytest.mark.postgres
async def test_notify_listener_comes_back_after_its_backend_is_terminated(
    pair: NodePair, db: Database, pg_broker_url: str
) -> None:
    import asyncpg

    from feedback.live.brokers.postgres import plain_dsn

    a, b = await pair(pg_broker_url)
    priya = await person(db, "priya@example.com")
    socket_on_b = b.hub.subscribe(priya.id, after=0)
    admin = await asyncpg.connect(plain_dsn(pg_broker_url))
    try:
        terminated = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            getattr(b.broker, "application_name", ""),
        )
        assert len(terminated) == 1

        await a.answer(priya.id, "Sent while B reconnects")
        text = await received(socket_on_b, within=5)
        assert "Sent while B reconnects" in text
        await eventually(lambda: _true(b.broker.connected), within=5)
        await a.answer(priya.id, "After")
        assert "After" in await received(socket_on_b)
    finally:
        await admin.close()


@pytest.mark.redis
async def test_a_wake_up_that_never_went_out_is_healed_by_the_periodic_catch_up(
    pair: NodePair, db: Database, redis_url: str
) -> None:
    # As when a process dies between its commit and its publish.
    a, b = await pair(redis_url, catch_up_every=0.2)
    priya = await person(db, "priya@example.com")
    socket_on_b = b.hub.subscribe(priya.id, after=0)

    await a.answer(priya.id, "Committed but never published", publish=False)

    assert "Committed but never published" in await received(socket_on_b, within=2)
    assert b.catch_up.healed == 1


async def test_memory_broker_is_always_connected_and_unknown_schemes_are_refused(
    settings: Settings,
) -> None:
    hub = Hub(fetch_missing=_no_events, queue_size=8)
    assert isinstance(make_broker("memory://", hub), MemoryBroker)
    assert make_broker("memory://", hub).connected
    with pytest.raises(ValueError, match="amqp://"):
        make_broker("amqp://rabbit", hub)


def test_notify_payloads_stay_under_postgres_limit_and_keep_the_newest_seq_per_person() -> None:
    people = [uuid.uuid4() for _ in range(500)]
    messages = [LiveMessage(p, seq, "{}") for p in people for seq in (1, 2)]
    payloads = encode_wakes("origin123456", messages)
    assert len(payloads) > 1
    assert all(len(p.encode()) < min(PAYLOAD_LIMIT + 1, 8000) for p in payloads)
    seen = {}
    for payload in payloads:
        origin, *items = payload.split(" ")
        assert origin == "origin123456"
        for item in items:
            recipient, seq = item.split(":")
            seen[uuid.UUID(hex=recipient)] = int(seq)
    assert seen == dict.fromkeys(people, 2)


async def test_redis_that_is_down_at_start_is_reported_not_connected(tmp_path: Any) -> None:
    from tests.ops.conftest import free_port

    hub = Hub(fetch_missing=_no_events, queue_size=8)
    broker = make_broker(f"redis://127.0.0.1:{free_port()}/0", hub)
    await broker.start()  # does not raise: the app starts and /readyz says what is wrong
    try:
        assert not broker.connected
    finally:
        await broker.stop()


async def _no_events(_person: uuid.UUID, _after: int) -> list[LiveMessage]:
    return []


async def _true(value: bool) -> bool:
    return value
