"""Settings: the anonymity floor holds, and a missing secret key is generated once and kept."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlmodel import select
from starlette.testclient import TestClient

from feedback.app import create_app
from feedback.models.mail import OutboxMail
from feedback.settings import Settings, SettingsError, load_settings
from tests.answers.links import ask_with_links
from tests.conftest import make_settings
from tests.factories import add_person, log_in


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No FEEDBACK_* variables and no .env file, so each test sets exactly what it means."""
    for name in list(os.environ):
        if name.startswith("FEEDBACK_") and name != "FEEDBACK_TEST_STRICT":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("k", [2, 1, 0, -3])
def test_an_anonymity_threshold_below_three_is_refused(clean_env: Path, k: int) -> None:
    with pytest.raises(ValidationError, match="at least 3"):
        Settings(_env_file=None, anonymity_k=k)  # type: ignore[call-arg]


def test_the_environment_variable_is_refused_with_its_name(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDBACK_ANONYMITY_K", "2")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert refused.value.detail == "Bad setting FEEDBACK_ANONYMITY_K: must be at least 3."


def test_a_threshold_read_from_dotenv_is_checked_too(clean_env: Path) -> None:
    (clean_env / ".env").write_text("FEEDBACK_ANONYMITY_K=1\n")
    with pytest.raises(SettingsError, match="FEEDBACK_ANONYMITY_K"):
        load_settings()


def test_a_higher_threshold_is_used_for_new_requests(database_url: str) -> None:
    with TestClient(create_app(make_settings(database_url, anonymity_k=4))) as client:
        add_person(client, "priya@example.com", name="Priya Natarajan")
        log_in(client, "priya@example.com")
        three = [f"r{n}@outside.example" for n in range(3)]
        refused = client.post(
            "/api/v1/requests", json={"question": "q", "reviewers": three, "anonymous": True}
        )
        assert refused.status_code == 422
        assert "at least 4 reviewers" in refused.json()["detail"]
        request_id, _ = ask_with_links(client, [*three, "r3@outside.example"], anonymous=True)
        assert client.get(f"/api/v1/requests/{request_id}").json()["anonymity_k"] == 4


def test_an_unset_secret_key_is_generated_once_beside_the_database_and_reused(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = clean_env / "data" / "feedback.db"
    monkeypatch.setenv("FEEDBACK_DATABASE_URL", f"sqlite:///{database}")
    first = load_settings().resolved_secret_key()
    key_file = database.with_name("feedback.db.secret")
    assert key_file.read_text().strip() == first
    assert len(first) >= 40
    # Only its owner may read it.
    assert stat.S_IMODE(key_file.stat().st_mode) & 0o077 == 0

    assert load_settings().resolved_secret_key() == first
    assert key_file.read_text().strip() == first


def test_a_configured_secret_key_wins_and_writes_no_file(database_path: Path) -> None:
    settings = make_settings(database_path, secret_key="configured-key-of-enough-length")
    assert settings.resolved_secret_key() == "configured-key-of-enough-length"
    assert not database_path.with_name(database_path.name + ".secret").exists()


def test_postgres_without_a_secret_key_is_a_clear_error(clean_env: Path) -> None:
    settings = Settings(_env_file=None, database_url="postgresql://db.internal/feedback")  # type: ignore[call-arg]
    with pytest.raises(SettingsError, match="FEEDBACK_SECRET_KEY must be set"):
        settings.resolved_secret_key()


def test_mail_queued_before_a_restart_can_still_be_opened_after_it(database_path: Path) -> None:
    """The generated key must survive restarts, or links sealed in the outbox are lost."""
    settings = make_settings(database_path, secret_key=None)
    with TestClient(create_app(settings)) as client:
        add_person(client, "priya@example.com", name="Priya Natarajan")
        log_in(client, "priya@example.com")
        _request_id, tokens = ask_with_links(client, ["buyer@client.example"])

    # A new process: new Settings, new app, same database file.
    restarted = make_settings(database_path, secret_key=None)
    with TestClient(create_app(restarted)) as client:
        db = client.app_state["app"].db

        async def sealed() -> str:
            async with db.transaction(write=False) as session:
                row = (await session.exec(select(OutboxMail))).one()
                assert row.sealed_context is not None
                return row.sealed_context

        assert client.portal is not None
        opened = client.app_state["app"].outbox.sealer.open(client.portal.call(sealed))
        assert opened == {"link": f"http://testserver/r/{tokens['buyer@client.example']}"}


@pytest.mark.parametrize(
    "url", ["memory://", "redis://127.0.0.1:6379/0", "rediss://cache.example:6380/0"]
)
def test_every_broker_the_app_can_make_is_accepted(clean_env: Path, url: str) -> None:
    assert Settings(_env_file=None, broker_url=url).broker_url == url  # type: ignore[call-arg]


def test_an_unknown_broker_scheme_is_refused_with_its_name(clean_env: Path) -> None:
    with pytest.raises(ValidationError, match="broker_url"):
        Settings(_env_file=None, broker_url="amqp://rabbit/")  # type: ignore[call-arg]
