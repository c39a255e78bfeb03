"""The `feedback` command as an operator uses it: one clear line on errors, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import create_engine, inspect
from starlette.testclient import TestClient
from typer.testing import CliRunner

from feedback.app import create_app
from feedback.cli import app
from tests.conftest import make_settings


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh database file named only by FEEDBACK_DATABASE_URL, with no .env around."""
    for name in list(os.environ):
        if name.startswith("FEEDBACK_") and name != "FEEDBACK_TEST_STRICT":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data" / "feedback.db"
    monkeypatch.setenv("FEEDBACK_DATABASE_URL", f"sqlite:///{path}")
    yield path


def run(*args: str, input: str | None = None, **env: str) -> Result:
    return CliRunner().invoke(app, list(args), input=input, env=env or None)


def assert_one_error_line(result: Result, *fragments: str) -> str:
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output + result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_migrate_creates_the_schema(database: Path) -> None:
    result = run("migrate")
    assert result.exit_code == 0, result.output
    assert "database is at the newest schema" in result.stdout
    tables = set(inspect(create_engine(f"sqlite:///{database}")).get_table_names())
    assert {"person", "feedback_request", "invitation", "answer", "outbox_mail"} <= tables
    # Running it again is harmless.
    assert run("migrate").exit_code == 0


def test_added_people_can_log_in_and_are_listed(database: Path) -> None:
    added = run(
        "users", "add", "Sam@Example.com", "--name", "Sam Okafor", "--role", "manager",
        "--password", "manager-password",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == "added sam@example.com (manager)"
    piped = run(
        "users", "add", "priya@example.com", "--name", "Priya Natarajan",
        "--manager", "sam@example.com", "--password-stdin",
        input="from-standard-input\n",
    )  # fmt: skip
    assert piped.exit_code == 0, piped.output
    assert "from-standard-input" not in piped.output
    no_password = run("users", "add", "tom@example.com", "--name", "Tom Becker")
    assert no_password.exit_code == 0, no_password.output

    listing = run("users", "list")
    assert listing.exit_code == 0
    assert listing.stdout.splitlines() == [
        "priya@example.com\tPriya Natarajan\temployee\tsam@example.com",
        "sam@example.com\tSam Okafor\tmanager\t",
        "tom@example.com\tTom Becker\temployee\t",
    ]

    with TestClient(create_app(make_settings(database))) as client:
        for email, password in [
            ("priya@example.com", "from-standard-input"),
            ("sam@example.com", "manager-password"),
        ]:
            response = client.post("/api/v1/session", json={"email": email, "password": password})
            assert response.status_code == 200, response.text
        # Someone added without a password cannot log in with any.
        tom = client.post("/api/v1/session", json={"email": "tom@example.com", "password": ""})
        assert tom.status_code in {401, 422}


def test_a_duplicate_email_is_one_error_line(database: Path) -> None:
    assert run("users", "add", "tom@example.com", "--name", "Tom").exit_code == 0
    result = run("users", "add", "TOM@example.com", "--name", "Tom Again")
    assert_one_error_line(result, "tom@example.com", "already exists")
    assert len(run("users", "list").stdout.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--manager", "nobody@example.com"], ["nobody@example.com"]),
        (["--role", "overlord"], ["overlord", "employee, manager, hr, admin"]),
        (["--password", "short"], ["at least 8 characters"]),
        (["--password", "long-enough-pw", "--password-stdin"], ["--password-stdin"]),
    ],
)
def test_bad_user_details_are_one_error_line_and_add_nobody(
    database: Path, args: list[str], fragments: list[str]
) -> None:
    result = run("users", "add", "tom@example.com", "--name", "Tom", *args, input="x\n")
    assert_one_error_line(result, *fragments)
    assert run("users", "list").stdout == ""


def test_a_bad_email_is_one_error_line(database: Path) -> None:
    assert_one_error_line(run("users", "add", "not-an-email", "--name", "X"), "not-an-email")


@pytest.mark.parametrize(
    ("name", "value", "fragments"),
    [
        ("FEEDBACK_BASE_URL", "notaurl", ["FEEDBACK_BASE_URL", "absolute http(s) URL"]),
        ("FEEDBACK_ANONYMITY_K", "2", ["FEEDBACK_ANONYMITY_K", "at least 3"]),
        ("FEEDBACK_ANONYMITY_K", "three", ["FEEDBACK_ANONYMITY_K"]),
        ("FEEDBACK_DATABASE_URL", "mysql://x/y", ["FEEDBACK_DATABASE_URL"]),
        ("FEEDBACK_SMTP_URL", "mail.example.com", ["FEEDBACK_SMTP_URL"]),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    database: Path, name: str, value: str, fragments: list[str]
) -> None:
    for command in (["migrate"], ["users", "list"]):
        assert_one_error_line(run(*command, **{name: value}), *fragments)
    assert not database.exists()


def test_demo_seeds_once(database: Path) -> None:
    first = run("demo", "--no-serve")
    assert first.exit_code == 0, first.output
    assert "Seeded the demo organisation." in first.stdout
    assert "admin@demo.example" in first.stdout
    people = run("users", "list").stdout.splitlines()
    assert len(people) == 15
    assert any(
        line.startswith("priya@demo.example\tPriya Natarajan\temployee\t") for line in people
    )

    second = run("demo", "--no-serve")
    assert second.exit_code == 0, second.output
    assert "not seeding" in second.stdout
    assert run("users", "list").stdout.splitlines() == people

    # The seeded history is real data the demo users see once logged in.
    with TestClient(create_app(make_settings(database))) as client:
        login = {"email": "priya@demo.example", "password": "demo-password"}
        assert client.post("/api/v1/session", json=login).status_code == 200
        assert client.get("/api/v1/requests").json()["requests"]


def test_the_installed_command_reports_a_bad_setting_without_a_traceback(
    tmp_path: Path,
) -> None:
    command = Path(sys.executable).with_name("feedback")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    env |= {
        "FEEDBACK_DATABASE_URL": f"sqlite:///{tmp_path / 'feedback.db'}",
        "FEEDBACK_BASE_URL": "notaurl",
    }
    done = subprocess.run(
        [str(command), "users", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: Bad setting FEEDBACK_BASE_URL:")
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_unreachable_database_is_one_line_without_its_password(database: Path) -> None:
    closed_port = "postgresql://feedback:s3cret-pw@127.0.0.1:1/feedback"
    line = assert_one_error_line(
        run("migrate", FEEDBACK_DATABASE_URL=closed_port), "could not migrate"
    )
    assert "127.0.0.1:1/feedback" in line
    assert "s3cret-pw" not in line


def test_migrate_creates_the_folder_of_a_new_sqlite_file(database: Path) -> None:
    assert not database.parent.exists()
    assert run("migrate").exit_code == 0
    assert database.is_file()
