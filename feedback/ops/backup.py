"""Online backup and restore of a SQLite deployment (PostgreSQL: pg_dump, see docs/deploy.md).

The backup goes through SQLite's backup API, which copies a consistent snapshot while the
server keeps reading and writing. The secret key file generated beside the database
(when FEEDBACK_SECRET_KEY is unset) goes with it: without it, mail still in the outbox
could not be sealed open.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path


class BackupError(Exception):
    """A refusal or failure, worded for the operator."""


def secret_file(database: Path) -> Path:
    return database.with_name(database.name + ".secret")


def lock_file(database: Path) -> Path:
    return database.with_name(database.name + ".serving")


@contextlib.contextmanager
def serving_lock(database: Path) -> Iterator[None]:
    """Held by `feedback serve` for its whole life, so restore can tell it is running."""
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file(database), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield


def _is_served(database: Path) -> bool:
    path = lock_file(database)
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _copy(source: sqlite3.Connection, target: Path) -> None:
    destination = sqlite3.connect(target)
    try:
        source.backup(destination)
    finally:
        destination.close()


def _check(path: Path) -> None:
    """A backup must be a whole, sound feedback database."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database ({exc})") from None
    if verdict != "ok":
        raise BackupError(f"{path} failed its integrity check: {verdict}")
    if not {"alembic_version", "person", "live_event"} <= tables:
        raise BackupError(f"{path} is not a feedback database (its tables are missing)")


def backup(database: Path, target: Path) -> list[Path]:
    """Copy a live database to `target` (which must not exist). Returns the files written."""
    if not database.exists():
        raise BackupError(f"there is no database at {database}")
    if target.exists():
        raise BackupError(f"{target} already exists; pick a new name")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        _copy(source, partial)
    finally:
        source.close()
    _check(partial)
    os.replace(partial, target)
    written = [target]
    if secret_file(database).exists():
        shutil.copyfile(secret_file(database), secret_file(target))
        os.chmod(secret_file(target), 0o600)
        written.append(secret_file(target))
    return written


def restore(source: Path, database: Path, *, force: bool = False) -> Path | None:
    """Replace `database` with the backup `source`. Returns where the old database was kept.

    Refuses while a `feedback serve` holds the database, and refuses to overwrite a
    database with people in it unless `force`; the old one is copied aside first anyway.
    """
    if not source.exists():
        raise BackupError(f"there is no backup at {source}")
    _check(source)
    if _is_served(database):
        raise BackupError(
            f"`feedback serve` is running on {database}; stop it first (restoring under a "
            "running server would leave its sockets and caches describing the old data)"
        )
    kept: Path | None = None
    if database.exists():
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            has_people = (
                conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'person'").fetchone()[
                    0
                ]
                and conn.execute("SELECT count(*) FROM person").fetchone()[0]
            )
        finally:
            conn.close()
        if has_people and not force:
            raise BackupError(
                f"{database} already holds data; pass --force to replace it "
                "(a copy of it is kept beside it)"
            )
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = database.with_name(f"{database.name}.before-restore-{stamp}")
        backup(database, kept)
    database.parent.mkdir(parents=True, exist_ok=True)
    backup_conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        _copy(backup_conn, database)
    finally:
        backup_conn.close()
    if secret_file(source).exists():
        shutil.copyfile(secret_file(source), secret_file(database))
        os.chmod(secret_file(database), 0o600)
    return kept
