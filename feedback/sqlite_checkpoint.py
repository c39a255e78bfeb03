"""WAL checkpoints for SQLite, off the event loop.

In WAL mode with synchronous=NORMAL a commit does not fsync; a checkpoint (copying the log
back into the database file) does. SQLite runs one automatically in the committing
connection every 1,000 pages, which for our writer is the event loop (see
feedback.sqlite_inline): on a slow disk that froze every request and socket for tens of
milliseconds. The writer therefore has automatic checkpoints off, and this task runs a
PASSIVE checkpoint every second in a worker thread, on a connection of its own. PASSIVE
never waits for readers or the writer; whatever it cannot copy now, the next one will.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path

log = logging.getLogger("feedback.db")

INTERVAL = 1.0


class Checkpointer:
    def __init__(self, path: Path, *, interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._connection: sqlite3.Connection | None = None
        self.runs = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop, then checkpoint what is left so the log does not outlive the process."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._checkpoint)
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self._checkpoint)
            except sqlite3.Error:
                # Busy or briefly unavailable: the next round tries again.
                log.warning("WAL checkpoint failed; retrying", exc_info=True)

    def _checkpoint(self) -> None:
        if self._connection is None:
            # check_same_thread=False: to_thread may pick another worker each time; this
            # task runs one checkpoint at a time, so the connection is never shared.
            self._connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self.runs += 1
