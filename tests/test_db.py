"""The SQLite writer: statements run inline on the event loop, and the write lock held by
another process is waited for with asyncio.sleep, never by blocking the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from feedback.db import Database
from feedback.errors import Unavailable
from tests.conftest import make_settings


@pytest.fixture
def sqlite_db(database_path: Path) -> Database:
    return Database(make_settings(database_path))


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, as SQLite sees it: a second connection in BEGIN IMMEDIATE."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")  # as every feedback process opens it
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_a_writer_waits_for_another_process_lock_without_blocking_the_loop(
    sqlite_db: Database, database_path: Path
) -> None:
    other = hold_write_lock(database_path)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    async def write() -> float:
        async with sqlite_db.transaction() as session:
            await session.exec(text("CREATE TABLE lock_probe (x INTEGER)"))  # type: ignore[call-overload]
        return time.monotonic()

    ticking = asyncio.create_task(ticker())
    writing = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not writing.done()
    released = time.monotonic()
    other.rollback()
    other.close()
    finished = await asyncio.wait_for(writing, timeout=5)
    ticking.cancel()
    # The loop kept running while the writer waited (about 60 ticks in 0.3 s), and the
    # writer went ahead soon after the lock came free.
    assert ticks > 20
    assert finished - released < 1.0
    async with sqlite_db.transaction(write=False) as session:
        tables = await session.exec(  # type: ignore[call-overload]
            text("SELECT name FROM sqlite_master WHERE name = 'lock_probe'")
        )
        assert tables.all() == [("lock_probe",)]
    await sqlite_db.dispose()


async def test_a_lock_held_too_long_is_a_503_not_a_hang(
    sqlite_db: Database, database_path: Path
) -> None:
    sqlite_db.write_lock_timeout = 0.2
    other = hold_write_lock(database_path)
    try:
        with pytest.raises(Unavailable) as caught:
            async with sqlite_db.transaction():
                pytest.fail("the transaction body ran without the write lock")
        assert caught.value.status == 503
    finally:
        other.rollback()
        other.close()
    # The writer's connection is usable again once the lock is free.
    async with sqlite_db.transaction() as session:
        await session.exec(text("CREATE TABLE after_busy (x INTEGER)"))  # type: ignore[call-overload]
    await sqlite_db.dispose()


async def test_a_cancelled_transaction_rolls_back_and_frees_the_writer(
    sqlite_db: Database,
) -> None:
    started = asyncio.Event()

    async def stuck_writer() -> None:
        async with sqlite_db.transaction() as session:
            await session.exec(text("CREATE TABLE never_committed (x INTEGER)"))  # type: ignore[call-overload]
            started.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(stuck_writer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with sqlite_db.transaction() as session:
        rows = await session.exec(  # type: ignore[call-overload]
            text("SELECT count(*) FROM sqlite_master WHERE name = 'never_committed'")
        )
        assert rows.one() == (0,)
    await asyncio.wait_for(sqlite_db.dispose(), timeout=5)


def file_size(path: Path) -> int:
    return path.stat().st_size


async def test_the_writer_never_checkpoints_and_the_background_task_does(
    sqlite_db: Database, database_path: Path
) -> None:
    assert sqlite_db.checkpointer is not None
    async with sqlite_db.transaction() as session:
        setting = await session.exec(text("PRAGMA wal_autocheckpoint"))  # type: ignore[call-overload]
        assert setting.one() == (0,)
        await session.exec(text("CREATE TABLE filler (x TEXT)"))  # type: ignore[call-overload]
    for _ in range(30):
        async with sqlite_db.transaction() as session:
            await session.exec(  # type: ignore[call-overload]
                text("INSERT INTO filler (x) VALUES (:x)"), params={"x": "y" * 4000}
            )
    # 120 KB written, all of it still in the log: the database file has not grown.
    before = file_size(database_path)
    sqlite_db.checkpointer.interval = 0.05
    sqlite_db.start()
    for _ in range(100):
        if file_size(database_path) >= before + 30 * 4000:
            break
        await asyncio.sleep(0.05)
    assert file_size(database_path) >= before + 30 * 4000
    assert sqlite_db.checkpointer.runs >= 1
    await asyncio.wait_for(sqlite_db.dispose(), timeout=5)
