"""B5: answer ingest rate.

How many answers per second the app takes in with 64 concurrent clients, each one the
whole path: HTTP PUT /api/v1/invitations/{token}/response with an Idempotency-Key, body
validated, answer + invitation + live event + idempotency record committed in one
transaction, then published to the live hub. On SQLite and on PostgreSQL.

The baseline, measured in the same run on the same database: the raw driver inserting one
row and committing, as fast as it can (sqlite3 on one connection with the app's pragmas;
asyncpg with 64 concurrent connections on PostgreSQL). The server and the baseline driver
run on core 0; this process (the load generator) on core 1. PostgreSQL itself is not
pinned, for the app and the baseline alike.

Usage: .venv/bin/python bench/b5_ingest.py [--answers N] [--clients C] [--backends sqlite postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from _clients import send_http
from _population import add_requesters, migrated_database
from _report import machine, today, write_section
from _servers import (
    HOST,
    SERVER_CORE,
    Server,
    can_pin,
    pin_load_generator,
    raise_open_files_limit,
    start_feedback,
    start_http_ceiling,
)

from feedback import migrate

WARMUP = 128
RATIO_TARGET = 0.5
BASELINE_SECONDS = 5.0
POSTGRES_ADMIN_URL = os.environ.get(
    "FEEDBACK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BODY = json.dumps({"rating": 4, "body": "Clear demo; the live part landed well."}).encode()
BASELINE_TABLE = "b5_baseline"


@dataclass
class Ingest:
    backend: str
    broker: str
    answers: int
    seconds: float
    statuses: Counter[int | str]
    server_cpu_seconds: float
    stored_answers: int
    stored_events: int
    baseline_rows_per_second: float
    baseline_detail: str

    @property
    def per_second(self) -> float:
        return self.answers / self.seconds

    @property
    def ratio(self) -> float:
        return self.per_second / self.baseline_rows_per_second


# Baselines: run in a child process pinned to the server's core.


def sqlite_baseline(path: str, seconds: float) -> tuple[float, str]:
    """One connection, the app's pragmas, BEGIN IMMEDIATE / INSERT / COMMIT per row."""
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
        connection.execute(f"PRAGMA {pragma}")
    connection.execute(
        f"CREATE TABLE {BASELINE_TABLE} (id INTEGER PRIMARY KEY, body TEXT NOT NULL, "
        "created_at TEXT NOT NULL)"
    )
    rows = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            f"INSERT INTO {BASELINE_TABLE} (body, created_at) VALUES (?, datetime('now'))",
            (BODY.decode(),),
        )
        connection.execute("COMMIT")
        rows += 1
    elapsed = time.perf_counter() - start
    connection.close()
    return rows / elapsed, "sqlite3, one connection, WAL, synchronous=NORMAL"


async def postgres_baseline(url: str, seconds: float, workers: int) -> tuple[float, str]:
    """`workers` asyncpg connections, each an autocommitted single-row INSERT in a loop."""
    import asyncpg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    setup = await asyncpg.connect(dsn)
    await setup.execute(
        f"CREATE TABLE {BASELINE_TABLE} (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL, "
        "created_at TIMESTAMPTZ NOT NULL)"
    )
    await setup.close()
    connections = [await asyncpg.connect(dsn) for _ in range(workers)]
    body = BODY.decode()
    rows = 0
    deadline = time.perf_counter() + seconds

    async def insert(connection: asyncpg.Connection) -> None:
        nonlocal rows
        while time.perf_counter() < deadline:
            await connection.execute(
                f"INSERT INTO {BASELINE_TABLE} (body, created_at) VALUES ($1, now())", body
            )
            rows += 1

    start = time.perf_counter()
    await asyncio.gather(*(insert(c) for c in connections))
    elapsed = time.perf_counter() - start
    for connection in connections:
        await connection.close()
    return rows / elapsed, f"asyncpg, {workers} connections, one autocommitted INSERT each"


def run_baseline(backend: str, target: str, workers: int) -> tuple[float, str]:
    pin = ["taskset", "-c", str(SERVER_CORE)] if can_pin() else []
    argv = [*pin, sys.executable, __file__, "--baseline-only", backend, target, str(workers)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120)
    rate, detail = json.loads(done.stdout.strip().splitlines()[-1])
    return float(rate), str(detail)


# The app.


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database of this run's own, migrated, dropped afterwards."""
    import psycopg

    name = f"feedback_bench_b5_{int(time.time())}_{secrets.token_hex(4)}"
    admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        migrate.upgrade(url)
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def put(port: int, token: str, key: str) -> bytes:
    head = (
        f"PUT /api/v1/invitations/{token}/response HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n"
        f"Idempotency-Key: {key}\r\n\r\n"
    )
    return head.encode() + BODY


async def drive(port: int, tokens: list[str], clients: int) -> tuple[float, Counter[int | str]]:
    """`clients` workers, each sending its next answer as soon as the last one returned."""
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for n, token in enumerate(tokens):
        queue.put_nowait((n, token))
    statuses: Counter[int | str] = Counter()

    async def client() -> None:
        while not queue.empty():
            n, token = queue.get_nowait()
            try:
                statuses[await send_http(port, put(port, token, f"b5-{n}"))] += 1
            except OSError as exc:
                statuses[type(exc).__name__] += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - start, statuses


def count_stored(database_url: str) -> tuple[int, int]:
    from sqlalchemy import create_engine, text

    from feedback.db import sync_url

    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            answers = connection.execute(text("SELECT count(*) FROM answer")).scalar_one()
            events = connection.execute(
                text("SELECT count(*) FROM live_event WHERE type = 'response.created'")
            ).scalar_one()
    finally:
        engine.dispose()
    return int(answers), int(events)


BROKERS = {"memory": "memory://", "NOTIFY": "postgresql", "Redis": "redis://127.0.0.1:6379/0"}


def run_backend(
    backend: str,
    directory: Path,
    answers: int,
    clients: int,
    *,
    broker: str = "memory",
    baseline: tuple[float, str] | None = None,
) -> Ingest:
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = migrated_database(directory)
            baseline_target = str(directory / "feedback.db")
        else:
            url = stack.enter_context(postgres_database())
            baseline_target = url
        requesters = add_requesters(url, WARMUP + answers, with_requests=True)
        tokens = [r.invitation_token for r in requesters]
        assert all(tokens)
        if baseline is None:
            baseline = run_baseline(backend, baseline_target, clients)
        baseline_rate, baseline_detail = baseline
        broker_url = url if BROKERS[broker] == "postgresql" else BROKERS[broker]
        server: Server = start_feedback(directory, url, broker_url=broker_url)
        try:
            _warm, warm_statuses = asyncio.run(drive(server.port, tokens[:WARMUP], clients))  # type: ignore[arg-type]
            cpu_before = server.cpu_seconds()
            seconds, statuses = asyncio.run(drive(server.port, tokens[WARMUP:], clients))  # type: ignore[arg-type]
            cpu = server.cpu_seconds() - cpu_before
        finally:
            server.stop()
        stored_answers, stored_events = count_stored(url)
        return Ingest(
            backend=backend,
            broker=broker,
            answers=answers,
            seconds=seconds,
            statuses=statuses + warm_statuses,
            server_cpu_seconds=cpu,
            stored_answers=stored_answers,
            stored_events=stored_events,
            baseline_rows_per_second=baseline_rate,
            baseline_detail=baseline_detail,
        )


def http_ceiling(directory: Path, answers: int, clients: int) -> float:
    """Requests/s of the database-free app (bench/_http_ceiling.py) under the same load."""
    tokens = [f"ceiling-{n}" for n in range(WARMUP + answers)]
    server = start_http_ceiling(directory)
    try:
        asyncio.run(drive(server.port, tokens[:WARMUP], clients))
        seconds, statuses = asyncio.run(drive(server.port, tokens[WARMUP:], clients))
    finally:
        server.stop()
    assert statuses == Counter({201: answers}), statuses
    return answers / seconds


def report(
    results: list[Ingest], ceiling: float, host: str, pinning: str, clients: int, elapsed: float
) -> str:
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    lines = [
        "## B5: answer ingest rate",
        "",
        f"Run {today()} on {host}; {pinning}; {elapsed:.0f} s in all.",
        "",
        f"{clients} concurrent clients, each sending its next answer as soon as the last one "
        "returned (one connection per request, as B1). Every answer goes to its own "
        "invitation with its own Idempotency-Key, and is the whole path: HTTP, validation, "
        "one write transaction (answer, invitation status, `response.created` live event "
        "with its per-requester seq, idempotency record), commit, publish through the "
        f"broker to the live hub. {WARMUP} warm-up answers are not counted.",
        "",
        "| database | broker | answers | feedback answers/s | server CPU ms per answer | "
        "raw driver insert+commit rows/s | ratio | stored (answers / events) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.broker} | {r.answers} | {r.per_second:.0f} | "
            f"{r.server_cpu_seconds / r.answers * 1000:.2f} | {r.baseline_rows_per_second:.0f} | "
            f"{r.ratio:.3f}x | {r.stored_answers} / {r.stored_events} |"
        )
    lines += [
        f"| (HTTP ceiling) | - | - | {ceiling:.0f} | - | - | - | - |",
        "",
    ]
    for r in results:
        total = r.answers + WARMUP
        complete = r.statuses == Counter({201: total}) and r.stored_answers == total
        complete = complete and r.stored_events == total
        lines.append(
            f"- {r.backend} ({r.broker}): target >= {RATIO_TARGET:g}x baseline "
            f"**{verdict(r.ratio >= RATIO_TARGET)}** ({r.ratio:.3f}x); every answer 201 and "
            f"stored once with its event: **{verdict(complete)}** (statuses {dict(r.statuses)})."
        )
    for backend in dict.fromkeys(r.backend for r in results):
        detail = next(r.baseline_detail for r in results if r.backend == backend)
        lines.append(f"- Baseline on {backend}: {detail}.")
    postgres = {r.broker: r for r in results if r.backend == "postgres"}
    if "memory" in postgres:
        base = postgres["memory"].per_second
        for broker in ("NOTIFY", "Redis"):
            if broker in postgres:
                change = postgres[broker].per_second / base - 1
                lines.append(
                    f"- With {broker} as the broker, PostgreSQL ingest ran at "
                    f"{postgres[broker].per_second:.0f} answers/s against {base:.0f} with "
                    f"memory:// ({change:+.0%}; run-to-run noise on this machine is about 10%)."
                )
    best = max(results, key=lambda r: r.per_second)
    lines += [
        f"- HTTP ceiling: {ceiling:.0f} requests/s is bench/_http_ceiling.py, the same route "
        "through Starlette and uvicorn with feedback's options, parsing the body and "
        "answering 201, with no database, under the same load generator. It is the most any "
        "app on this stack and core can ingest, and it is itself "
        f"{ceiling / results[0].baseline_rows_per_second:.2f}x the SQLite baseline; feedback "
        f"reaches {best.per_second / ceiling:.0%} of it.",
        "",
        "Why the ratio target is out of reach, and what was done:",
        "- A single-row insert and commit costs the raw driver tens of microseconds. One "
        f"HTTP request costs uvicorn and Starlette about {1e6 / ceiling:.0f} microseconds on "
        "this core before any work, so 0.5x of the SQLite baseline "
        f"({RATIO_TARGET * results[0].baseline_rows_per_second:,.0f} answers/s) is several "
        "times what the HTTP stack alone can carry. The figure that can move is the app's "
        "CPU per answer.",
        "- SQLite statements now run inline on the event loop (feedback/sqlite_inline.py) "
        "instead of through aiosqlite's thread: a dozen thread hand-offs per statement "
        "cost more than SQLite itself. The writer takes BEGIN IMMEDIATE with an async retry, "
        "so another process's lock never blocks the loop. This took SQLite from 64 to over "
        "200 answers/s and server CPU per answer from 15 to about 4.5 ms.",
        "- Fewer statements per answer: the request row is locked once per transaction (the "
        "Idempotency-Key lookup and the save each locked it), the answer is looked up only "
        "for an invitation already answered, the invitation is not re-read on SQLite (its "
        "writers are serial), the link's query brings the request and reviewer along, the "
        "event's seq bump and insert are plain SQL, and the path's statements are built once "
        "with bound parameters (building each statement and its cache key per call had cost "
        "more than running it).",
        "- The answer and the invitation are written as plain SQL, with no ORM instance "
        "(2026-11-26: SQLite 284 -> about 470 answers/s, PostgreSQL 203 -> about 300).",
        "- What remains is SQLAlchemy's execution layer, about 0.1 ms per statement against "
        "a few microseconds for SQLite itself (B1 measures both), and the session and "
        "validation around it. Group commit would not help: in WAL mode with "
        "synchronous=NORMAL a SQLite commit does not fsync, and commits are under 5% of the "
        "profile.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=3000, help="measured answers per database")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument(
        "--brokers",
        nargs="*",
        choices=["NOTIFY", "Redis"],
        default=["NOTIFY", "Redis"],
        help="on PostgreSQL, also run with these brokers instead of memory://",
    )
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    parser.add_argument("--baseline-only", nargs=3, metavar=("BACKEND", "TARGET", "WORKERS"))
    args = parser.parse_args()

    if args.baseline_only:
        backend, target, workers = args.baseline_only
        if backend == "sqlite":
            measured = sqlite_baseline(target, BASELINE_SECONDS)
        else:
            measured = asyncio.run(postgres_baseline(target, BASELINE_SECONDS, int(workers)))
        print(json.dumps(measured))
        return 0

    host = machine()
    pinning = pin_load_generator()
    raise_open_files_limit()
    started = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="feedback-bench-b5-") as tmp:
        for backend in args.backends:
            directory = Path(tmp, backend)
            directory.mkdir()
            first = run_backend(backend, directory, args.answers, args.clients)
            results.append(first)
            if backend == "postgres":
                # What a cross-process broker costs the same path (B6 measures its latency).
                baseline = (first.baseline_rows_per_second, first.baseline_detail)
                for broker in args.brokers:
                    sub = Path(tmp, f"{backend}-{broker}")
                    sub.mkdir()
                    results.append(
                        run_backend(
                            backend,
                            sub,
                            args.answers,
                            args.clients,
                            broker=broker,
                            baseline=baseline,
                        )
                    )
        ceiling = http_ceiling(Path(tmp), args.answers, args.clients)
    text = report(results, ceiling, host, pinning, args.clients, time.monotonic() - started)
    print(text)
    if not args.no_write:
        write_section("b5", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
