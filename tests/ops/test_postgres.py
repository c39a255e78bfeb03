"""PostgreSQL: the same migrations, and answers arriving at once still counted exactly.

SQLite queues writers in-process; PostgreSQL runs them side by side, so these tests fire
real concurrent requests at a real `feedback serve` on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx2
import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from feedback import migrate
from feedback.db import sync_url
from tests.factories import PASSWORD
from tests.ops.conftest import Server, run_cli, server_env
from tests.ops.reviewers import REQUESTER, add_requester, ask_many, read_back

pytestmark = pytest.mark.postgres


def _schema(url: str) -> tuple[set[str], set[str]]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            enums = set(
                connection.execute(
                    text("SELECT typname FROM pg_type WHERE typtype = 'e'")
                ).scalars()
            )
    finally:
        engine.dispose()
    return tables, enums


def test_migrations_go_down_to_nothing_and_up_again_on_postgres(postgres_url: str) -> None:
    tables, enums = _schema(postgres_url)
    assert {
        "person",
        "feedback_request",
        "invitation",
        "answer",
        "live_event",
        "idempotency_key",
    } <= tables
    assert enums == {"role", "requeststatus", "invitationstatus"}

    command.downgrade(migrate.alembic_config(postgres_url), "base")
    assert _schema(postgres_url) == ({"alembic_version"}, set())

    migrate.upgrade(postgres_url)
    assert _schema(postgres_url) == (tables, enums)


def test_serve_on_postgres_refuses_to_start_without_a_secret_key(
    postgres_url: str, tmp_path: Path
) -> None:
    env = server_env(postgres_url)
    del env["FEEDBACK_SECRET_KEY"]
    result = run_cli(env, "serve", "--port", "9")
    assert result.returncode == 1
    assert "FEEDBACK_SECRET_KEY" in result.stderr


@pytest.fixture
def server(postgres_url: str, tmp_path: Path) -> Any:
    add_requester(postgres_url)
    started = Server(server_env(postgres_url), tmp_path / "server.log")
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


async def _put_at_once(
    base_url: str, puts: list[tuple[str, dict[str, Any], str | None]]
) -> list[httpx2.Response]:
    async with httpx2.AsyncClient(base_url=base_url, timeout=60) as client:
        start = asyncio.Event()

        async def put(token: str, body: dict[str, Any], key: str | None) -> httpx2.Response:
            await start.wait()
            headers = {"Idempotency-Key": key} if key else {}
            return await client.put(
                f"/api/v1/invitations/{token}/response", json=body, headers=headers
            )

        tasks = [asyncio.create_task(put(*p)) for p in puts]
        await asyncio.sleep(0.05)
        start.set()
        return list(await asyncio.gather(*tasks))


def _requester_view(base_url: str) -> dict[str, Any]:
    with httpx2.Client(base_url=base_url, timeout=30) as client:
        assert (
            client.post(
                "/api/v1/session", json={"email": REQUESTER, "password": PASSWORD}
            ).status_code
            == 200
        )
        (listed,) = client.get("/api/v1/requests").json()["requests"]
        return dict(client.get(f"/api/v1/requests/{listed['id']}").json())


def test_nine_anonymous_answers_at_once_are_released_as_three_full_groups(
    server: Server, postgres_url: str
) -> None:
    tokens = ask_many(server.url, postgres_url, 9, anonymous=True)
    responses = asyncio.run(
        _put_at_once(
            server.url, [(t, {"body": f"Anonymous {n}"}, None) for n, t in enumerate(tokens)]
        )
    )
    assert [r.status_code for r in responses] == [201] * 9, [r.text for r in responses]

    shown = _requester_view(server.url)
    assert shown["progress"]["released"] == 9
    assert sorted(r["body"] for r in shown["responses"]) == sorted(
        f"Anonymous {n}" for n in range(9)
    )
    stored = read_back(postgres_url)
    released = [e for e in stored.events if e.type == "responses.released"]
    assert [len(e.data["responses"]) for e in released] == [3, 3, 3]
    seqs = [e.seq for e in stored.events]
    assert seqs == list(range(1, len(seqs) + 1))


def test_ten_first_answers_to_one_link_at_once_make_one_answer(
    server: Server, postgres_url: str
) -> None:
    (token,) = ask_many(server.url, postgres_url, 1)
    responses = asyncio.run(
        _put_at_once(server.url, [(token, {"body": f"Take {n}"}, None) for n in range(10)])
    )
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201], [
        r.text for r in responses
    ]

    stored = read_back(postgres_url)
    assert list(stored.answers_per_invitation.values()) == [1]
    types = [e.type for e in stored.events]
    assert types.count("response.created") == 1
    assert types.count("response.updated") == 9
    shown = _requester_view(server.url)
    assert shown["progress"]["received"] == 1
    # What the requester sees is the answer as the last writer left it.
    assert [r["body"] for r in shown["responses"]] == [stored.events[-1].data["response"]["body"]]


def test_one_idempotency_key_sent_ten_times_at_once_writes_once(
    server: Server, postgres_url: str
) -> None:
    (token,) = ask_many(server.url, postgres_url, 1)
    body = {"rating": 5, "body": "Sharp and kind."}
    responses = asyncio.run(_put_at_once(server.url, [(token, body, "retry-storm")] * 10))
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    assert len({r.text for r in responses}) == 1

    stored = read_back(postgres_url)
    assert list(stored.answers_per_invitation.values()) == [1]
    assert [e.type for e in stored.events].count("response.created") == 1
    assert not [e for e in stored.events if e.type == "response.updated"]
    assert stored.idempotency_keys == 1
