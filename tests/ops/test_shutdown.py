"""Stopping and scaling `feedback serve`: SIGTERM, and several worker processes."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import time
from pathlib import Path

import httpx2
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.factories import PASSWORD
from tests.ops.conftest import Server, run_cli, server_env


def add_people(env: dict[str, str]) -> None:
    for email in ("priya@example.com", "tom@example.com"):
        done = run_cli(
            env,
            "users",
            "add",
            email,
            "--name",
            email[:4].title(),
            "--password-stdin",
            stdin=PASSWORD,
        )
        assert done.returncode == 0, done.stderr


def session_cookie(server: Server, email: str) -> str:
    response = httpx2.post(
        server.url + "/api/v1/session", json={"email": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return f"feedback_session={response.cookies['feedback_session']}"


async def test_sigterm_finishes_an_in_flight_answer_and_closes_sockets_with_1012(
    servers: list[Server], tmp_path: Path, database_path: Path
) -> None:
    env = server_env(f"sqlite:///{database_path}")
    add_people(env)
    server = Server(env, tmp_path / "server.log")
    servers.append(server)
    server.wait_ready()
    priya, tom = (
        session_cookie(server, "priya@example.com"),
        session_cookie(server, "tom@example.com"),
    )
    created = httpx2.post(
        server.url + "/api/v1/requests",
        json={"question": "How was my talk?", "reviewers": ["tom@example.com"]},
        headers={"cookie": priya},
    )
    assert created.status_code == 201, created.text
    inbox = httpx2.get(server.url + "/api/v1/inbox", headers={"cookie": tom}).json()
    invitation_id = inbox["invitations"][0]["invitation_id"]

    ws_url = server.url.replace("http://", "ws://") + "/api/v1/live"
    async with connect(ws_url, origin=server.url, additional_headers={"cookie": priya}) as live:
        # Tom's answer is on its way: headers and half the body are sent...
        body = json.dumps({"rating": 5, "body": "Great talk, the demo landed."}).encode()
        answer = socket.create_connection(("127.0.0.1", server.port))
        answer.sendall(
            (
                f"PUT /api/v1/inbox/{invitation_id}/response HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{server.port}\r\nCookie: {tom}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body[:10]
        )
        await asyncio.sleep(0.3)
        # ...when the service manager stops the server.
        server.terminate()
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(5):
                while True:
                    await live.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012

        answer.sendall(body[10:])
        answer.settimeout(10)
        reply = answer.recv(65536).decode()
        answer.close()

    assert reply.startswith("HTTP/1.1 201"), reply
    # uvicorn re-raises SIGTERM once shut down: systemd counts that as a clean stop.
    assert server.process.wait(timeout=15) in {0, -signal.SIGTERM}
    log = server.log()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log, log
    assert '"route": "/api/v1/inbox/{id}/response", "status": 201' in log


def test_serve_refuses_several_workers_with_the_in_memory_broker(database_path: Path) -> None:
    done = run_cli(server_env(f"sqlite:///{database_path}"), "serve", "--workers", "2")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "FEEDBACK_BROKER_URL" in lines[0] and "--workers 2" in lines[0]


@pytest.mark.redis
def test_two_workers_with_redis_serve_one_port_and_stop_cleanly(
    servers: list[Server], tmp_path: Path, database_path: Path, redis_url: str
) -> None:
    env = server_env(f"sqlite:///{database_path}", FEEDBACK_BROKER_URL=redis_url)
    server = Server(env, tmp_path / "server.log", "--workers", "2")
    servers.append(server)
    server.wait_ready("/readyz")
    deadline = time.monotonic() + 20
    while len(set(re.findall(r"Started server process \[(\d+)\]", server.log()))) < 2:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.2)
    for _ in range(5):
        assert httpx2.get(server.url + "/readyz").json()["status"] == "ready"
    assert server.stop() == 0
