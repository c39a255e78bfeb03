"""An asyncio-shaped SQLite connection that runs each call inline, on the caller's thread.

aiosqlite runs every call on a thread of its own: each `execute`, `fetchall` and `close` is
a hand-off to that thread and a wake-up back, several per statement. On a busy or
virtualised machine each hand-off costs a few hundred microseconds, many times what SQLite
itself needs for a small indexed statement, so an answer's dozen statements spent most of
their time being passed between threads.

SQLite statements on small indexed rows take microseconds, so running them on the event
loop costs less than handing them over. The one call that can wait long is taking the
write lock while another process holds it; `feedback.db` takes that lock with a zero busy
timeout and retries with `asyncio.sleep`, so the loop never waits on it. After
BEGIN IMMEDIATE has succeeded, WAL mode lets the transaction's statements and its COMMIT
run without waiting on any other connection.

SQLAlchemy's aiosqlite dialect drives these objects (through `async_creator`), so they
offer the part of aiosqlite's interface the dialect uses.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Self


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Self:
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Self:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        if size is None:
            return self._cursor.fetchmany()
        return self._cursor.fetchmany(size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class InlineConnection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = connection

    @property
    def _connection(self) -> sqlite3.Connection | None:
        # The dialect checks this (as aiosqlite's own attribute) before commit and rollback.
        return self._conn

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("no active connection")
        return self._conn

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._live().cursor())

    @property
    def isolation_level(self) -> str | None:
        return self._live().isolation_level

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._live().create_function(*args, **kw)

    async def commit(self) -> None:
        self._live().commit()

    async def rollback(self) -> None:
        self._live().rollback()

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def connect(path: str, *, pragmas: Sequence[str]) -> InlineConnection:
    """Open `path` in autocommit mode (BEGIN is ours to issue) with the given pragmas."""
    # check_same_thread=False: the pool may close a connection from a garbage-collection
    # callback on another thread; every statement still runs on the event loop's thread.
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in pragmas:
        connection.execute(pragma)
    # WAL mode is a property of the file, so this only ever changes a new database; asking
    # first avoids the lock that setting it takes, which another process may hold.
    if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        connection.execute("PRAGMA journal_mode=WAL")
    return InlineConnection(connection)
