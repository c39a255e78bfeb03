"""`feedback backup` and `feedback restore` on SQLite, as an operator runs them."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from feedback.app import create_app
from feedback.ops.backup import BackupError, backup
from tests.conftest import make_settings
from tests.factories import PASSWORD, add_person, ask, log_in
from tests.ops.conftest import Server, run_cli, server_env


def people(env: dict[str, str]) -> list[str]:
    listed = run_cli(env, "users", "list")
    assert listed.returncode == 0, listed.stderr
    return sorted(line.split("\t")[0] for line in listed.stdout.splitlines())


def add(env: dict[str, str], email: str) -> None:
    done = run_cli(
        env, "users", "add", email, "--name", "Someone", "--password-stdin", stdin=PASSWORD
    )
    assert done.returncode == 0, done.stderr


def test_backup_then_restore_brings_back_exactly_what_was_backed_up(
    tmp_path: Path, database_path: Path
) -> None:
    env = server_env(f"sqlite:///{database_path}")
    add(env, "priya@example.com")
    target = tmp_path / "backups" / "monday.db"

    made = run_cli(env, "backup", str(target))
    assert made.returncode == 0, made.stderr
    assert f"wrote {target}" in made.stdout

    add(env, "added.after.backup@example.com")
    refused = run_cli(env, "restore", str(target))
    assert refused.returncode == 1
    assert "--force" in refused.stderr

    restored = run_cli(env, "restore", str(target), "--force")
    assert restored.returncode == 0, restored.stderr
    assert people(env) == ["priya@example.com"]
    kept = [line for line in restored.stdout.splitlines() if line.startswith("kept")]
    kept_path = Path(kept[0].split(" at ", 1)[1])
    assert people(server_env(f"sqlite:///{kept_path}")) == [
        "added.after.backup@example.com",
        "priya@example.com",
    ]


@pytest.fixture
def sqlite_client(database_path: Path) -> Iterator[TestClient]:
    """The app on `database_path`, even when FEEDBACK_TEST_DATABASE=postgres: backups are
    of SQLite files."""
    with TestClient(create_app(make_settings(database_path))) as client:
        yield client


def test_a_backup_taken_while_the_app_writes_is_a_working_database(
    tmp_path: Path, sqlite_client: TestClient, database_path: Path
) -> None:
    client = sqlite_client
    add_person(client, "priya@example.com")
    add_person(client, "tom@example.com")
    log_in(client, "priya@example.com")
    request_id = ask(client, ["tom@example.com"])

    copy = tmp_path / "online.db"
    backup(database_path, copy)  # the app is running and holds connections to the file

    with TestClient(create_app(make_settings(copy))) as restored:
        log_in(restored, "priya@example.com")
        assert restored.get(f"/api/v1/requests/{request_id}").status_code == 200
        assert restored.get("/readyz").status_code == 200


def test_restore_refuses_while_the_server_runs(
    servers: list[Server], tmp_path: Path, database_path: Path
) -> None:
    env = server_env(f"sqlite:///{database_path}")
    target = tmp_path / "copy.db"
    assert run_cli(env, "backup", str(target)).returncode == 0
    server = Server(env, tmp_path / "server.log")
    servers.append(server)
    server.wait_ready()

    refused = run_cli(env, "restore", str(target), "--force")

    assert refused.returncode == 1
    assert "stop it first" in refused.stderr
    server.stop()
    assert run_cli(env, "restore", str(target), "--force").returncode == 0


def test_backup_keeps_the_generated_secret_key_and_refuses_to_overwrite(
    tmp_path: Path, database_path: Path
) -> None:
    secret = database_path.with_name(database_path.name + ".secret")
    secret.write_text("generated-key")
    target = tmp_path / "copy.db"

    written = backup(database_path, target)

    copied = target.with_name("copy.db.secret")
    assert written == [target, copied]
    assert copied.read_text() == "generated-key"
    assert stat.S_IMODE(copied.stat().st_mode) == 0o600
    with pytest.raises(BackupError, match="already exists"):
        backup(database_path, target)


def test_restore_refuses_a_file_that_is_not_a_feedback_backup(
    tmp_path: Path, database_path: Path
) -> None:
    junk = tmp_path / "notes.db"
    junk.write_text("not a database at all, just text" * 100)
    done = run_cli(server_env(f"sqlite:///{database_path}"), "restore", str(junk), "--force")
    assert done.returncode == 1
    assert "not a" in done.stderr


def test_backup_on_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    env = server_env("postgresql://postgres@127.0.0.1:5432/nowhere")
    done = run_cli(env, "backup", str(tmp_path / "x.db"))
    assert done.returncode == 1
    assert "pg_dump" in done.stderr
