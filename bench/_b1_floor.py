"""B1's floor: what one answer's write costs at three depths of the stack, on the server's core.

B1 compares feedback with a bare forward. This splits feedback's side, so the report can say
how much of the gap each layer accounts for. One submit every `--gap` seconds (B1's rate), as
in the benchmark, so caches are as cold as they are between B1's submits:

- raw sqlite3: the answer transaction's statements (BEGIN IMMEDIATE, find the link, insert
  the answer, mark the invitation, count progress, bump the seq, insert the event, COMMIT),
  written by hand on the sqlite3 module;
- SQLAlchemy Core: the app's own prebuilt statements (a narrower link query, as the ORM's
  loads whole rows), run in one sync call (`AsyncConnection.run_sync`), the leanest way the
  app's stack allows;
- feedback in-process: the app's real `PUT /api/v1/invitations/{token}/response`, called as
  an ASGI app (routing, validation, session, ORM, live event, hub), with no HTTP server or
  socket in the way.

Run by b1_submit_to_screen.py in its own process pinned to the server's core; prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _population import Requester, add_requesters, migrated_database
from pydantic import SecretStr
from sqlalchemy import Connection, bindparam, select
from sqlmodel import col

from feedback import clock
from feedback.answers.service import _INSERT_ANSWER, _MARK_ANSWERED
from feedback.app import create_app
from feedback.crypto import hash_token
from feedback.db import Database
from feedback.live.events import _BUMP_SEQ, _INSERT_EVENT
from feedback.models import FeedbackRequest, Invitation
from feedback.requests.service import _STATUS_COUNTS
from feedback.settings import Settings

BODY = "Clear demo; the live part landed well. Slow down on step 3."
SECRET = "bench-secret-key-not-for-production"


def event_data(body: str, now: str) -> dict[str, Any]:
    """An event body of the same shape and size as the app's response.created."""
    return {
        "response": {
            "id": str(uuid.uuid4()),
            "body": body,
            "rating": 4,
            "reviewer": {"name": None, "email": "reviewer@bench.example"},
            "created_at": now,
            "updated_at": now,
            "released_at": None,
        },
        "progress": {"invited": 1, "received": 1, "declined": 0},
    }


def raw_sqlite(path: Path, tokens: list[str], gap: float) -> list[float]:
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        db.execute(f"PRAGMA {pragma}")

    def one(token: str) -> None:
        db.execute("BEGIN IMMEDIATE")
        invitation_id, request_id, requester_id = db.execute(
            "SELECT i.id, i.request_id, r.requester_id FROM invitation i "
            "JOIN feedback_request r ON r.id = i.request_id WHERE i.token_hash = ?",
            (hash_token(token),),
        ).fetchone()
        now = clock.now().isoformat(sep=" ")
        db.execute(
            "INSERT INTO answer (id, invitation_id, request_id, rating, body, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (uuid.uuid4().hex, invitation_id, request_id, 4, BODY, now, now),
        )
        db.execute(
            "UPDATE invitation SET status = 'answered', declined_at = NULL WHERE id = ?",
            (invitation_id,),
        )
        db.execute(
            "SELECT status, count(*) FROM invitation WHERE request_id = ? GROUP BY status",
            (request_id,),
        ).fetchall()
        (seq,) = db.execute(
            "UPDATE person SET last_event_seq = last_event_seq + 1 WHERE id = ? "
            "RETURNING last_event_seq",
            (requester_id,),
        ).fetchone()
        data = json.dumps(event_data(BODY, now))
        db.execute(
            "INSERT INTO live_event (recipient_id, seq, type, request_id, data, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (requester_id, seq, "response.created", request_id, data, now),
        )
        db.execute("COMMIT")

    try:
        return asyncio.run(_paced(lambda token: _sync(one, token), tokens, gap))
    finally:
        db.close()


_LINK = (
    select(col(Invitation.id), col(Invitation.request_id), col(FeedbackRequest.requester_id))
    .join(FeedbackRequest, col(FeedbackRequest.id) == col(Invitation.request_id))
    .where(col(Invitation.token_hash) == bindparam("token_hash"))
)


def sqlalchemy_core(url: str, tokens: list[str], gap: float) -> list[float]:
    def one(connection: Connection, token: str) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        link = connection.execute(_LINK, {"token_hash": hash_token(token)}).one()
        now = clock.now()
        connection.execute(
            _INSERT_ANSWER,
            {
                "id": uuid.uuid4(),
                "invitation_id": link.id,
                "request_id": link.request_id,
                "rating": 4,
                "body": BODY,
                "created_at": now,
                "updated_at": now,
            },
        )
        connection.execute(_MARK_ANSWERED, {"invitation_id": link.id})
        connection.execute(_STATUS_COUNTS, {"request_id": link.request_id}).all()
        seq = connection.execute(_BUMP_SEQ, {"recipient": link.requester_id}).scalar_one()
        connection.execute(
            _INSERT_EVENT,
            {
                "recipient_id": link.requester_id,
                "seq": seq,
                "type": "response.created",
                "request_id": link.request_id,
                "data": event_data(BODY, now.isoformat()),
                "created_at": now,
            },
        )
        connection.commit()

    async def run() -> list[float]:
        database = Database(Settings(database_url=url, secret_key=SecretStr(SECRET)))
        try:

            async def timed(token: str) -> None:
                async with database.write_engine.connect() as connection:
                    await connection.run_sync(one, token)

            return await _paced(timed, tokens, gap)
        finally:
            await database.dispose()

    return asyncio.run(run())


def feedback_in_process(url: str, tokens: list[str], gap: float) -> list[float]:
    app = create_app(Settings(database_url=url, secret_key=SecretStr(SECRET)))
    body = json.dumps({"rating": 4, "body": BODY}).encode()

    async def run() -> list[float]:
        async with app.router.lifespan_context(app) as state:

            async def put(token: str) -> None:
                status = await _asgi_put(app, state, f"/api/v1/invitations/{token}/response", body)
                if status != 201:
                    raise RuntimeError(f"PUT answered {status}")

            return await _paced(put, tokens, gap)

    return asyncio.run(run())


async def _asgi_put(app: Any, state: Any, path: str, body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": dict(state),
    }
    received = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            await asyncio.Event().wait()  # no disconnect while the handler runs
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _sync(function: Callable[[str], None], token: str) -> None:
    function(token)


async def _paced(step: Callable[[str], Any], tokens: list[str], gap: float) -> list[float]:
    """Run `step` once per token, one every `gap` seconds; each run's wall time in ms."""
    millis = []
    for token in tokens:
        await asyncio.sleep(gap)
        started = time.perf_counter()
        await step(token)
        millis.append((time.perf_counter() - started) * 1000)
    return millis


@contextlib.contextmanager
def _population(count: int) -> Iterator[tuple[Path, str, list[Requester]]]:
    with tempfile.TemporaryDirectory(prefix="feedback-bench-b1-floor-") as tmp:
        url = migrated_database(Path(tmp))
        yield Path(tmp, "feedback.db"), url, add_requesters(url, count, with_requests=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="submits per depth")
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between submits")
    args = parser.parse_args()
    warm = 20
    with _population(3 * (args.count + warm)) as (path, url, people):
        tokens = [p.invitation_token for p in people if p.invitation_token]
        n = args.count + warm
        results = {
            "raw_sqlite": raw_sqlite(path, tokens[:n], args.gap),
            "sqlalchemy_core": sqlalchemy_core(url, tokens[n : 2 * n], args.gap),
            "feedback_in_process": feedback_in_process(url, tokens[2 * n :], args.gap),
        }
    print(json.dumps({name: statistics.median(ms[warm:]) for name, ms in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
