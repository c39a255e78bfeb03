"""The Alembic scripts build exactly the schema the models describe, and can be undone."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import feedback.models
from feedback import migrate
from feedback.db import sync_url

EXPECTED_TABLES = {
    "person",
    "login_session",
    "feedback_request",
    "request_tag",
    "invitation",
    "answer",
    "release_batch",
    "live_event",
    "outbox_mail",
}


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _diffs(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, feedback.models.metadata))
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def test_upgrading_an_empty_file_creates_every_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate.upgrade(url)
    tables = _tables(url)
    assert tables >= EXPECTED_TABLES
    assert set(feedback.models.metadata.tables) <= tables
    assert _revision(url) == migrate.head_revision(url)


def test_the_models_and_the_migrations_agree(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'compare.db'}"
    migrate.upgrade(url)
    assert _diffs(url) == []


def test_downgrading_to_nothing_and_upgrading_again_works(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    migrate.upgrade(url)
    command.downgrade(migrate.alembic_config(url), "base")
    assert _tables(url) - {"alembic_version"} == set()
    assert _revision(url) is None

    migrate.upgrade(url)
    assert _tables(url) >= EXPECTED_TABLES
    assert _diffs(url) == []


def test_upgrading_twice_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    migrate.upgrade(url)
    head = _revision(url)
    migrate.upgrade(url)
    assert _revision(url) == head


@pytest.mark.postgres
def test_on_postgresql_the_models_agree_and_a_round_trip_works(postgres_url: str) -> None:
    sync = sync_url(postgres_url)
    assert _tables(sync) >= EXPECTED_TABLES
    assert _diffs(sync) == []

    command.downgrade(migrate.alembic_config(postgres_url), "base")
    assert _tables(sync) - {"alembic_version"} == set()
    migrate.upgrade(postgres_url)
    assert _revision(sync) == migrate.head_revision(postgres_url)
    assert _diffs(sync) == []
