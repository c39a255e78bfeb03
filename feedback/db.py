"""Engines and sessions built from settings, and the transaction helper views and jobs use.

SQLite gets two engines on the same file: readers share a small pool, while writers go
through a single connection that opens with BEGIN IMMEDIATE. One writer at a time is all
SQLite allows anyway; queueing them in-process avoids busy-retry storms and the
"database is locked" errors of lock upgrades.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from feedback import sqlite_inline
from feedback.errors import Unavailable
from feedback.settings import Settings
from feedback.sqlite_checkpoint import Checkpointer

AfterCommit = Callable[[AsyncSession], Awaitable[None]]


def async_url(url: str) -> str:
    """Pick the async driver for a sqlite:/// or postgresql:// URL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")


def sync_url(url: str) -> str:
    """The synchronous twin of a database URL, for Alembic and raw-driver baselines."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.set(drivername="sqlite"))
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


# How long a connection may wait on SQLite's locks inside a call. Statements run on the
# event loop (see feedback.sqlite_inline), so the writer never waits there: it takes the
# write lock with `_begin_immediate`, which retries with asyncio.sleep. Readers in WAL mode
# wait only in rare moments (a WAL index being rebuilt), briefly.
_WRITER_BUSY_MS = 0
_READER_BUSY_MS = 250
# How long a writer keeps retrying for the write lock held by another process.
WRITE_LOCK_TIMEOUT = 30.0


def _sqlite_engine(path: str, *, writer: bool) -> AsyncEngine:
    pragmas = (
        "PRAGMA foreign_keys=ON",
        "PRAGMA synchronous=NORMAL",
        f"PRAGMA busy_timeout={_WRITER_BUSY_MS if writer else _READER_BUSY_MS}",
        # Checkpoints fsync; the writer runs on the event loop, so they run elsewhere
        # (feedback.sqlite_checkpoint). Readers never commit, so never checkpoint.
        *(("PRAGMA wal_autocheckpoint=0",) if writer else ()),
    )

    async def creator() -> sqlite_inline.InlineConnection:
        return sqlite_inline.connect(path, pragmas=pragmas)

    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}",  # names the dialect and file; `creator` connects
        async_creator=creator,
        pool_size=1 if writer else 5,
        max_overflow=0 if writer else 10,
    )
    if not writer:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN")

    return engine


async def _begin_immediate(session: AsyncSession, *, patience: float) -> None:
    """Take SQLite's write lock for this session's transaction without blocking the loop."""
    deadline = asyncio.get_running_loop().time() + patience
    delay = 0.001
    connection = await session.connection()
    while True:
        try:
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            locked = "locked" in str(exc.orig).lower() or "busy" in str(exc.orig).lower()
            if not locked:
                raise
            if asyncio.get_running_loop().time() + delay > deadline:
                raise Unavailable(
                    "The database is busy with another process's write; try again shortly."
                ) from exc
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


class Database:
    """The engines of one app instance, and its transactions."""

    def __init__(self, settings: Settings) -> None:
        self.is_sqlite = settings.is_sqlite
        if self.is_sqlite:
            path = settings.sqlite_path
            if path is None:
                raise ValueError("SQLite needs a database file: sqlite:///path/to/feedback.db")
            path.parent.mkdir(parents=True, exist_ok=True)
            self.read_engine = _sqlite_engine(str(path), writer=False)
            self.write_engine = _sqlite_engine(str(path), writer=True)
            self.checkpointer: Checkpointer | None = Checkpointer(path)
        else:
            self.read_engine = self.write_engine = create_async_engine(
                async_url(settings.database_url), pool_size=10, max_overflow=20, pool_pre_ping=True
            )
            self.checkpointer = None
        self._read = async_sessionmaker(
            self.read_engine, class_=AsyncSession, expire_on_commit=False
        )
        self._write = async_sessionmaker(
            self.write_engine, class_=AsyncSession, expire_on_commit=False
        )
        self.after_commit: list[AfterCommit] = []
        self.write_lock_timeout = WRITE_LOCK_TIMEOUT

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """One transaction: commits when the block ends, rolls back if it raises.

        After a commit, the after-commit hooks run (waking live subscribers, the mail
        sender) with the session's `info`, which services fill with what they wrote.
        """
        maker = self._write if write else self._read
        try:
            async with maker() as session:
                async with session.begin():
                    if write and self.is_sqlite:
                        await _begin_immediate(session, patience=self.write_lock_timeout)
                    yield session
                for hook in self.after_commit:
                    await hook(session)
        except (OperationalError, DBAPIError) as exc:
            if _is_connection_problem(exc):
                raise Unavailable(
                    "The database is unavailable right now; try again shortly."
                ) from exc
            raise

    def start(self) -> None:
        """Start background upkeep (SQLite's WAL checkpoints); the app's lifespan calls it."""
        if self.checkpointer is not None:
            self.checkpointer.start()

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.checkpointer is not None:
            await self.checkpointer.stop()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


def _is_connection_problem(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower() if exc.orig is not None else ""
    return any(
        marker in text
        for marker in (
            "connection refused",
            "could not connect",
            "connection is closed",
            "unable to open database",
            "terminating connection",
        )
    )
