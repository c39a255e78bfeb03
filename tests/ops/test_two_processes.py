"""Two `feedback serve` processes on one PostgreSQL database: an answer submitted to one
reaches the requester's websocket on the other, through Redis or through NOTIFY."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx2
import pytest
from websockets.asyncio.client import connect

from tests.factories import PASSWORD
from tests.ops.conftest import Server, run_cli, server_env

pytestmark = pytest.mark.postgres


def add_people(env: dict[str, str]) -> None:
    for email, name in (
        ("priya@example.com", "Priya Natarajan"),
        ("tom@example.com", "Tom Becker"),
    ):
        done = run_cli(
            env, "users", "add", email, "--name", name, "--password-stdin", stdin=PASSWORD
        )
        assert done.returncode == 0, done.stderr


def logged_in(server: Server, email: str) -> httpx2.Client:
    client = httpx2.Client(base_url=server.url, timeout=10)
    response = client.post("/api/v1/session", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client


async def answer_crosses_processes(a: Server, b: Server) -> float:
    """Priya watches on B; Tom answers on A. Returns seconds from Tom's 201 to Priya's event."""
    priya = logged_in(b, "priya@example.com")
    tom = logged_in(a, "tom@example.com")
    try:
        created = priya.post(
            "/api/v1/requests",
            json={"question": "How did my demo go?", "reviewers": ["tom@example.com"]},
        )
        assert created.status_code == 201, created.text
        request_id = created.json()["id"]
        cookie = "; ".join(f"{k}={v}" for k, v in priya.cookies.items())
        ws_url = b.url.replace("http://", "ws://") + "/api/v1/live"
        async with connect(
            ws_url, origin=b.url, additional_headers={"Cookie": cookie}, open_timeout=5
        ) as socket:
            invitation = tom.get("/api/v1/inbox").json()["invitations"][0]
            saved = await asyncio.to_thread(
                tom.put,
                f"/api/v1/inbox/{invitation['invitation_id']}/response",
                json={"rating": 4, "body": "Clear story, good pace."},
            )
            answered_at = time.perf_counter()
            assert saved.status_code == 201, saved.text
            async with asyncio.timeout(1.0):
                while True:
                    event = json.loads(await socket.recv())
                    if event["type"] == "response.created":
                        break
            elapsed = time.perf_counter() - answered_at
        assert event["request_id"] == request_id
        detail = priya.get(f"/api/v1/requests/{request_id}").json()
        assert detail["responses"][0]["body"] == "Clear story, good pace."
        return elapsed
    finally:
        priya.close()
        tom.close()


def start_pair(
    servers: list[Server], tmp_path: Path, database_url: str, broker_url: str
) -> tuple[Server, Server]:
    env = server_env(database_url, FEEDBACK_BROKER_URL=broker_url)
    add_people(env)
    a = Server(env, tmp_path / "a.log")
    b = Server(env, tmp_path / "b.log")
    servers.extend([a, b])
    a.wait_ready("/readyz")
    b.wait_ready("/readyz")
    return a, b


@pytest.mark.redis
async def test_answer_on_process_a_reaches_a_socket_on_process_b_through_redis(
    servers: list[Server], tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    a, b = start_pair(servers, tmp_path, postgres_url, redis_url)
    elapsed = await answer_crosses_processes(a, b)
    assert elapsed < 1.0
    assert httpx2.get(b.url + "/readyz").json()["checks"]["broker"] == "ok"


async def test_answer_on_process_a_reaches_a_socket_on_process_b_through_notify(
    servers: list[Server], tmp_path: Path, postgres_url: str
) -> None:
    a, b = start_pair(servers, tmp_path, postgres_url, postgres_url)
    elapsed = await answer_crosses_processes(a, b)
    assert elapsed < 1.0
