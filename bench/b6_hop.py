"""B6: the latency a broker hop adds over in-process delivery.

One committed event at a time for one person; the clock runs from the publishing process's
`broker.publish` (right after the commit, where the app calls it) to the event's text
sitting in the queue of that person's socket on the other node.

- in-process: memory:// broker, the socket on the same node (the baseline).
- Redis: two nodes with redis:// brokers; the text travels in the message.
- NOTIFY: two nodes with postgresql:// brokers; the notification carries recipient and
  seq, and the receiving hub reads the text back from the events table.

Both nodes run in this one process and event loop, each with its own connections; events
are stored in a fresh PostgreSQL database for every mode. Targets: Redis adds <= 1 ms at
p50 and <= 5 ms at p99.

Usage: .venv/bin/python bench/b6_hop.py [--events N] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import machine, percentile, today, write_section  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from feedback import migrate  # noqa: E402
from feedback.db import Database  # noqa: E402
from feedback.live import service as live_service  # noqa: E402
from feedback.live.broker import Broker, make_broker  # noqa: E402
from feedback.live.events import LiveMessage, committed_messages, record_event  # noqa: E402
from feedback.live.hub import Hub  # noqa: E402
from feedback.people import service as people  # noqa: E402
from feedback.settings import Settings  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get(
    "FEEDBACK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("FEEDBACK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
WARMUP = 50


def node(db: Database, broker_url: str) -> tuple[Hub, Broker]:
    async def fetch_missing(person_id: uuid.UUID, after: int) -> list[LiveMessage]:
        async with db.transaction(write=False) as session:
            return await live_service.events_after(session, person_id=person_id, after=after)

    hub = Hub(fetch_missing=fetch_missing, queue_size=1024)
    return hub, make_broker(broker_url, hub)


async def measure(db: Database, broker_url: str | None, events: int) -> list[float]:
    """Milliseconds from publish to the text queued on the receiving socket."""
    async with db.transaction() as session:
        person = await people.add_person(
            session, email=f"{secrets.token_hex(4)}@bench.example", name="Bench", password=None
        )
    sender_hub, sender = node(db, broker_url or "memory://")
    if broker_url is None:
        receiver_hub, receiver = sender_hub, sender
    else:
        receiver_hub, receiver = node(db, broker_url)
    await sender.start()
    if receiver is not sender:
        await receiver.start()
    socket = receiver_hub.subscribe(person.id, after=0)
    samples: list[float] = []
    try:
        for i in range(WARMUP + events):
            async with db.transaction() as session:
                await record_event(
                    session,
                    recipient_id=person.id,
                    type="response.created",
                    request_id=None,
                    data={"body": "x" * 400},
                )
                tx = session
            messages = committed_messages(tx)
            started = time.perf_counter()
            await sender.publish(messages)
            await asyncio.wait_for(socket.queue.get(), timeout=5)
            if i >= WARMUP:
                samples.append((time.perf_counter() - started) * 1000)
    finally:
        if receiver is not sender:
            await receiver.stop()
        await sender.stop()
    return samples


async def redis_floor(events: int) -> list[float]:
    """Bare redis-py: PUBLISH on one connection to a subscriber on another, nothing else.
    What Redis and this machine cost before any of the broker's own work."""
    from redis.asyncio import Redis

    channel = f"feedback:bench:{secrets.token_hex(4)}"
    publisher, subscriber = Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)
    pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    payload = "x" * 500
    samples: list[float] = []
    try:
        for i in range(WARMUP + events):
            started = time.perf_counter()
            await publisher.publish(channel, payload)
            while await pubsub.get_message(timeout=5.0) is None:
                pass
            if i >= WARMUP:
                samples.append((time.perf_counter() - started) * 1000)
    finally:
        await pubsub.aclose()
        await publisher.aclose()
        await subscriber.aclose()
    return samples


async def run(events: int, database_url: str) -> dict[str, list[float]]:
    settings = Settings(_env_file=None, database_url=database_url, secret_key="bench")  # type: ignore[call-arg]
    db = Database(settings)
    try:
        return {
            "in-process (memory://)": await measure(db, None, events),
            "Redis (redis://)": await measure(db, REDIS_URL, events),
            "bare redis-py pub/sub (reference)": await redis_floor(events),
            "NOTIFY (postgresql://)": await measure(db, database_url, events),
        }
    finally:
        await db.dispose()


def loop_runner():  # type: ignore[no-untyped-def]
    """uvloop when installed, as uvicorn (and so `feedback serve`) picks by default."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import psycopg

    at_start = machine()
    started = time.monotonic()
    name = f"feedback_bench_{secrets.token_hex(4)}"
    admin = make_url(POSTGRES_ADMIN_URL)
    conn = psycopg.connect(
        admin.set(drivername="postgresql").render_as_string(False), autocommit=True
    )
    conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(drivername="postgresql", database=name).render_as_string(False)
    try:
        migrate.upgrade(url)
        results = loop_runner()(run(args.events, url))
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()

    rows = []
    base = results["in-process (memory://)"]
    base50, base99 = percentile(base, 0.50), percentile(base, 0.99)
    added: dict[str, tuple[float, float]] = {}
    for mode, samples in results.items():
        p50, p99 = percentile(samples, 0.50), percentile(samples, 0.99)
        added[mode] = (p50 - base50, p99 - base99)
        rows.append(
            f"| {mode} | {len(samples)} | {p50:.3f} | {p99:.3f} | {max(samples):.3f} "
            f"| {p50 - base50:+.3f} | {p99 - base99:+.3f} |"
        )
    redis50, redis99 = added["Redis (redis://)"]
    verdict = "met" if redis50 <= 1.0 and redis99 <= 5.0 else "NOT met"
    body = f"""## B6: broker hop latency

Run {today()} on {at_start}; {time.monotonic() - started:.0f} s in all.

{args.events} events one at a time (after {WARMUP} uncounted warm-up events) to one person, each committed to PostgreSQL first. Latency is from `broker.publish` on the sending node to the event's text queued for the person's socket on the receiving node.

| delivery | events | p50 ms | p99 ms | max ms | added p50 ms | added p99 ms |
|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

- Target Redis adds <= 1 ms at p50 and <= 5 ms at p99: **{verdict}** (+{redis50:.3f} ms p50, +{redis99:.3f} ms p99).
- The bare redis-py row is PUBLISH to a subscriber with none of the broker's work: what Redis and this machine's scheduling cost by themselves. On a loaded machine its p99 sets the floor for the Redis row's p99.
- NOTIFY carries only recipient and seq (payloads are capped at 8000 bytes), so its hop includes the receiving hub's read of the events table.

How it is set up: bench/b6_hop.py. Both nodes (hub + broker, wired as `feedback serve` wires them) run in one process and event loop (uvloop when installed, as under uvicorn), each with its own Redis or PostgreSQL connections; Redis and PostgreSQL are on loopback. The in-process row is the memory:// broker handing the message to the hub directly.
"""
    print(body)
    if not args.no_write:
        write_section("b6", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
