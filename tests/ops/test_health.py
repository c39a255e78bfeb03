"""What an operator sees: /readyz, /metrics, the logs, and a database outage."""

from __future__ import annotations

import contextlib
import gc
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from feedback.app import create_app
from feedback.settings import Settings
from tests.conftest import make_settings
from tests.factories import add_person, ask, log_in
from tests.ops.conftest import Server, free_port, server_env


def test_ready_when_database_migrations_and_broker_are_fine(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "broker": "ok"},
    }


def test_not_ready_names_the_missing_migrations(tmp_path: Path) -> None:
    empty = tmp_path / "never-migrated.db"
    with TestClient(create_app(make_settings(empty))) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert "feedback migrate" in body["checks"]["migrations"]
    assert body["detail"].startswith("migrations:")


def test_not_ready_names_a_broker_that_cannot_be_reached(database_path: Path) -> None:
    settings = make_settings(database_path, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
        # Liveness stays green: restarting the process would not bring Redis back.
        assert client.get("/healthz").status_code == 200
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "broker": "redis broker not connected",
    }


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, value = line.rsplit(" ", 1)
        if series.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            return float(value)
    raise AssertionError(f"no {name} {labels} in:\n{text}")


def test_metrics_count_requests_by_route_template_sockets_events_and_mail_backlog(
    client: TestClient,
) -> None:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    log_in(client, "priya@example.com")
    client.get("/r/a-reviewer-token-that-must-not-show")
    ask(client, ["outside.reviewer@client.example"])  # queues an invitation email

    with client.websocket_connect("/api/v1/live", headers={"origin": "http://testserver"}):
        text = client.get("/metrics").text

    assert "a-reviewer-token-that-must-not-show" not in text
    assert metric(text, "feedback_http_requests_total", route="/r/{token}", status="404") == 1
    assert metric(text, "feedback_http_requests_total", route="/api/v1/requests", status="201") == 1
    assert (
        metric(text, "feedback_http_request_duration_seconds_count", route="/api/v1/session") == 1
    )
    assert metric(text, "feedback_live_sockets") == 1
    assert metric(text, "feedback_live_events_written_total") >= 1
    assert metric(text, "feedback_mail_outbox_backlog") == 1
    assert metric(text, "feedback_mail_failed") == 0
    assert metric(text, "feedback_broker_connected", kind="memory") == 1
    assert metric(text, "feedback_database_up") == 1


def test_each_app_has_its_own_metrics(database_path: Path, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(database_path))) as first:
        first.get("/healthz")
        first.get("/healthz")
    with TestClient(create_app(make_settings(database_path))) as second:
        text = second.get("/metrics").text
    assert 'route="/healthz"' not in text


def test_logs_are_json_with_request_ids_and_never_show_tokens_or_sessions(
    servers: list[Server], tmp_path: Path, database_path: Path
) -> None:
    server = Server(server_env(f"sqlite:///{database_path}"), tmp_path / "server.log")
    servers.append(server)
    server.wait_ready()
    token = "Zq9-reviewer-token-secret-0123456789"
    with httpx2.Client(base_url=server.url) as http:
        assert http.get(f"/r/{token}").status_code == 404
        assert http.get(f"/api/v1/invitations/{token}").status_code == 404
        answered = http.put(f"/api/v1/invitations/{token}/response", json={"body": "hi"})
        assert answered.status_code == 404
        traced = http.get("/api/v1/me", headers={"x-request-id": "trace-me-42"})
        assert traced.headers["x-request-id"] == "trace-me-42"
        http.cookies.set("feedback_session", "session-secret-value-xyz")
        http.get("/api/v1/me")
        http.get(f"/no/such/page/r/{token}")
    # A live socket without a session is refused; its end is logged like a request.
    with pytest.raises(InvalidStatus):
        connect(
            server.url.replace("http://", "ws://") + "/api/v1/live",
            origin=Origin(server.url),
            additional_headers={"x-request-id": "trace-socket-7"},
            open_timeout=5,
        )
    server.stop()

    log = server.log()
    assert token not in log
    assert "session-secret-value-xyz" not in log
    entries = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert entries, "the server wrote no log"
    assert all("request_id" in e and "level" in e and "msg" in e for e in entries)
    requests = [e for e in entries if e["logger"] == "feedback.access"]
    assert {"route": "/r/{token}", "status": 404} in [
        {"route": e["route"], "status": e.get("status")} for e in requests
    ]
    assert any(e["route"] == "/api/v1/invitations/{token}/response" for e in requests)
    assert [e["request_id"] for e in requests if e["route"] == "/api/v1/me"][0] == "trace-me-42"
    assert not any(e["logger"] == "uvicorn.access" for e in entries)
    socket_ends = [e for e in requests if e.get("kind") == "websocket"]
    assert [(e["route"], e["request_id"]) for e in socket_ends] == [
        ("/api/v1/live", "trace-socket-7")
    ]
    assert "closed 1008" in socket_ends[0]["msg"]


class TcpProxy:
    """A loopback TCP relay that can be cut and restored: a database outage on demand."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a crashed database would."""
        if self._listener is not None:
            # close() alone would leave the thread blocked in accept() still listening.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._sockets = []


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    relay = TcpProxy(make_url(postgres_url).port or 5432)
    relay.start()
    yield relay
    relay.stop()


@pytest.mark.postgres
def test_database_outage_answers_503_and_recovers_without_a_restart(
    postgres_url: str, proxy: TcpProxy
) -> None:
    through_proxy = make_url(postgres_url).set(port=proxy.port).render_as_string(False)
    with TestClient(create_app(make_settings(through_proxy))) as client:
        add_person(client, "priya@example.com")
        log_in(client, "priya@example.com")
        assert client.get("/api/v1/me").status_code == 200

        proxy.stop()
        down = client.get("/api/v1/me")
        assert down.status_code == 503
        assert down.json()["error"] == "unavailable"
        assert "database" in down.json()["detail"]
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"]["database"].startswith("unreachable")
        assert client.get("/healthz").status_code == 200

        proxy.start()
        deadline = time.monotonic() + 10
        while (status := client.get("/api/v1/me").status_code) != 200:
            assert status == 503
            assert time.monotonic() < deadline, "the app did not recover"
            time.sleep(0.2)
        assert client.get("/readyz").status_code == 200


def test_the_running_app_keeps_what_it_loaded_out_of_full_collections(
    settings: Settings,
) -> None:
    # A full pass of the cycle collector over every module and the app stalls each live
    # socket for tens of milliseconds; startup freezes them, shutdown lets them go again.
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0
