"""Shared fixtures. Every test gets its own freshly migrated database, so it runs on the
schema production migrates to, with no leftovers.

SQLite (the default): a file copied from one migrated at start-up.
PostgreSQL (FEEDBACK_TEST_DATABASE=postgres): a database cloned with CREATE DATABASE ...
TEMPLATE from one migrated at start-up, dropped after the test. Every name carries a random
part unique to the run, so parallel runs never meet, and the shared `test` and `postgres`
databases are only connected to, never changed. FEEDBACK_TEST_POSTGRES_URL points at another
server (default postgresql://postgres@127.0.0.1:5432/postgres).

Set FEEDBACK_TEST_STRICT=1 (CI does) to turn skips for missing Chromium, PostgreSQL or
Redis into failures.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from feedback import migrate
from feedback.app import create_app
from feedback.db import Database
from feedback.settings import Settings

STRICT = os.environ.get("FEEDBACK_TEST_STRICT") == "1"
TEST_SECRET = "test-secret-key-not-for-production"
TEST_DATABASE = os.environ.get("FEEDBACK_TEST_DATABASE", "sqlite").lower()
POSTGRES_ADMIN_URL = os.environ.get(
    "FEEDBACK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# No test run lasts a day: a database this old was left by a run that was killed.
ABANDONED_AFTER_SECONDS = 24 * 3600

if TEST_DATABASE not in {"sqlite", "postgres"}:
    raise pytest.UsageError(
        f"FEEDBACK_TEST_DATABASE must be sqlite or postgres, not {TEST_DATABASE!r}"
    )


def skip_or_fail(reason: str) -> None:
    """Skip on a laptop that lacks a service; fail in CI, where nothing may be skipped."""
    if STRICT:
        pytest.fail(f"{reason} (FEEDBACK_TEST_STRICT=1 forbids skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def database_path(tmp_path: Path, migrated_template: Path) -> Path:
    """A fresh migrated SQLite file, whatever FEEDBACK_TEST_DATABASE says."""
    path = tmp_path / "feedback.db"
    shutil.copy(migrated_template, path)
    return path


class PostgresDatabases:
    """Creates and drops this run's databases on one PostgreSQL server.

    Cloning and dropping take a few hundred milliseconds each, so one worker thread does
    them while tests run: the next test's database is cloned ahead, and the last one's is
    dropped behind. The thread owns the admin connection; it does one thing at a time.
    """

    def __init__(self, admin_url: str) -> None:
        import psycopg

        self._admin = make_url(admin_url)
        # The start time in the name lets a later run drop what a killed run left behind.
        self.prefix = f"feedback_test_{int(time.time())}_{secrets.token_hex(4)}"
        self.template = f"{self.prefix}_tpl"
        self._numbers = itertools.count(1)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-databases")
        self._next: Future[str] | None = None
        self._drops: list[Future[None]] = []
        # Autocommit: CREATE/DROP DATABASE cannot run inside a transaction.
        self._conn = psycopg.connect(self._libpq(self._admin), autocommit=True, connect_timeout=3)
        self._drop_abandoned()
        self._conn.execute(f'CREATE DATABASE "{self.template}"')
        try:
            migrate.upgrade(self.url(self.template))
        except BaseException:
            self._drop_now(self.template)
            self._conn.close()
            raise

    def _drop_abandoned(self) -> None:
        """Drop databases of runs that started over a day ago and were killed before cleanup."""
        names = self._conn.execute(
            "SELECT datname FROM pg_database WHERE datname ~ '^feedback_test_[0-9]{10}_[0-9a-f]{8}_'"
        ).fetchall()
        for (name,) in names:
            if int(name.split("_")[2]) < time.time() - ABANDONED_AFTER_SECONDS:
                self._conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @staticmethod
    def _libpq(url: object) -> str:
        return make_url(str(url)).set(drivername="postgresql").render_as_string(hide_password=False)

    def url(self, name: str) -> str:
        return self._admin.set(drivername="postgresql", database=name).render_as_string(
            hide_password=False
        )

    def _clone(self) -> str:
        name = f"{self.prefix}_{next(self._numbers)}"
        self._conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def _drop_now(self, name: str) -> None:
        assert name.startswith(self.prefix), name  # never anything but this run's own
        # FORCE: a test's app may still hold pooled connections when it is torn down.
        self._conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create(self) -> tuple[str, str]:
        """A new database cloned from the migrated template: (name, URL)."""
        ready = self._next or self._worker.submit(self._clone)
        name = ready.result()
        self._next = self._worker.submit(self._clone)
        return name, self.url(name)

    def drop(self, name: str) -> None:
        self._drops.append(self._worker.submit(self._drop_now, name))

    def close(self) -> None:
        if self._next is not None:
            self.drop(self._next.result())
        self._worker.submit(self._drop_now, self.template).result()
        self._worker.shutdown(wait=True)
        self._conn.close()
        for dropped in self._drops:
            dropped.result()  # surfaces a drop that failed


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    import psycopg

    try:
        databases = PostgresDatabases(POSTGRES_ADMIN_URL)
    except psycopg.OperationalError as exc:
        skip_or_fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}".strip())
        raise AssertionError("unreachable") from exc
    yield databases
    databases.close()


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """A fresh migrated PostgreSQL database for this test alone, whatever the backend."""
    name, url = postgres_databases.create()
    yield url
    postgres_databases.drop(name)


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    """This test's fresh migrated database on the backend FEEDBACK_TEST_DATABASE picks."""
    if TEST_DATABASE == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{request.getfixturevalue('database_path')}"


def make_settings(database: Path | str, **overrides: object) -> Settings:
    """Test settings on a database given as a SQLite file path or as a URL."""
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    values: dict[str, object] = {
        "database_url": url,
        "base_url": "http://testserver",
        "secret_key": TEST_SECRET,
        "smtp_url": None,
        "mail_from": "feedback@test.example",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    yield database
    await database.dispose()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
