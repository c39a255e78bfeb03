"""Real `feedback serve` processes on free loopback ports, for the operations tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.conftest import TEST_SECRET, skip_or_fail

FEEDBACK = str(Path(sys.executable).with_name("feedback"))
START_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    env.update(
        {
            "FEEDBACK_DATABASE_URL": database_url,
            "FEEDBACK_SECRET_KEY": TEST_SECRET,
            "FEEDBACK_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class Server:
    """One `feedback serve` subprocess; its log (stderr) goes to a file the test can read."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "FEEDBACK_BASE_URL": env.get("FEEDBACK_BASE_URL", self.url)}
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [FEEDBACK, "serve", "--port", str(self.port), *args],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, path: str = "/healthz") -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log()}")
            try:
                if httpx2.get(self.url + path, timeout=1).status_code == 200:
                    return
            except httpx2.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not answer {path} in time:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> int:
        if self._log.closed:
            return int(self.process.returncode)
        self.terminate()
        try:
            code = self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    """Start servers with `servers.append(Server(...))`; all are stopped after the test."""
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def run_cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FEEDBACK, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database number of its own (channels are named after it, so runs never meet)."""
    import redis

    base = os.environ.get("FEEDBACK_TEST_REDIS_URL", "redis://127.0.0.1:6379")
    client = redis.Redis.from_url(base, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        skip_or_fail(f"Redis is not reachable at {base}: {exc}")
    # A random db number among 1..15; the broker's channel carries it. Two runs that drew
    # the same number would only see each other's messages for people they do not have.
    import random

    number = random.randint(1, 15)
    client.close()
    yield f"{base}/{number}"
