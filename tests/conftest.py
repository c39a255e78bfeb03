"""Shared fixtures. Each test gets its own SQLite file, copied from one migrated at start-up,
so every test runs on the schema production migrates to, with no leftovers.

Set FEEDBACK_TEST_STRICT=1 (CI does) to turn skips for missing Chromium, PostgreSQL or
Redis into failures.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from feedback import migrate
from feedback.app import create_app
from feedback.db import Database
from feedback.settings import Settings

STRICT = os.environ.get("FEEDBACK_TEST_STRICT") == "1"
TEST_SECRET = "test-secret-key-not-for-production"


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
    path = tmp_path / "feedback.db"
    shutil.copy(migrated_template, path)
    return path


def make_settings(database_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{database_path}",
        "base_url": "http://testserver",
        "secret_key": TEST_SECRET,
        "smtp_url": None,
        "mail_from": "feedback@test.example",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_path: Path) -> Settings:
    return make_settings(database_path)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    yield database
    await database.dispose()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
