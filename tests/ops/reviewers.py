"""Many reviewers with mailed links, made through a running server's own API, and what the
database holds after they answered: for the crash and PostgreSQL tests."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx2
from sqlmodel import col, select

from feedback.crypto import Sealer
from feedback.db import Database
from feedback.models.answers import Answer
from feedback.models.idempotency import IdempotencyKey
from feedback.models.live import LiveEvent
from feedback.models.mail import OutboxMail
from feedback.models.requests import FeedbackRequest
from tests.conftest import TEST_SECRET, make_settings
from tests.factories import PASSWORD, person

REQUESTER = "priya@example.com"
MAX_REVIEWERS_PER_REQUEST = 20


def add_requester(database_url: str) -> None:
    async def add() -> None:
        db = Database(make_settings(database_url))
        try:
            await person(db, REQUESTER, name="Priya Natarajan")
        finally:
            await db.dispose()

    asyncio.run(add())


def ask_many(base_url: str, database_url: str, count: int, *, anonymous: bool = False) -> list[str]:
    """Ask `count` outside reviewers (in requests of up to 20) and return their link tokens.

    The requester must exist. Tokens come from the sealed outbox, as the mail carries them.
    """
    with httpx2.Client(base_url=base_url, timeout=30) as client:
        login = client.post("/api/v1/session", json={"email": REQUESTER, "password": PASSWORD})
        assert login.status_code == 200, login.text
        for start in range(0, count, MAX_REVIEWERS_PER_REQUEST):
            reviewers = [
                f"reviewer{n}@outside.example"
                for n in range(start, min(count, start + MAX_REVIEWERS_PER_REQUEST))
            ]
            asked = client.post(
                "/api/v1/requests",
                json={
                    "question": "How did the launch go?",
                    "reviewers": reviewers,
                    "anonymous": anonymous,
                },
            )
            assert asked.status_code == 201, asked.text
    return asyncio.run(_tokens(database_url))


async def _tokens(database_url: str) -> list[str]:
    sealer = Sealer(TEST_SECRET)
    db = Database(make_settings(database_url))
    try:
        async with db.transaction(write=False) as session:
            mails = (await session.exec(select(OutboxMail))).all()
    finally:
        await db.dispose()
    links = [sealer.open(m.sealed_context) for m in mails if m.sealed_context]
    return [str(link["link"]).rsplit("/r/", 1)[1] for link in links if link]


@dataclass
class Stored:
    """What the database holds after the answers: counted so duplicates would show."""

    answers_per_invitation: Counter[str]
    answer_ids: set[str]
    answer_bodies: set[str]
    created_events_per_answer: Counter[str]
    created_event_bodies: Counter[str]
    idempotency_keys: int
    events: list[LiveEvent]
    requests: list[FeedbackRequest]


def read_back(database_url: str) -> Stored:
    async def read() -> Stored:
        db = Database(make_settings(database_url))
        try:
            async with db.transaction(write=False) as session:
                answers = (await session.exec(select(Answer))).all()
                events = (await session.exec(select(LiveEvent).order_by(col(LiveEvent.seq)))).all()
                keys = (await session.exec(select(IdempotencyKey))).all()
                requests = (await session.exec(select(FeedbackRequest))).all()
        finally:
            await db.dispose()
        created: list[dict[str, Any]] = [
            e.data["response"] for e in events if e.type == "response.created"
        ]
        return Stored(
            answers_per_invitation=Counter(str(a.invitation_id) for a in answers),
            answer_ids={str(a.id) for a in answers},
            answer_bodies={a.body for a in answers},
            created_events_per_answer=Counter(str(r["id"]) for r in created),
            created_event_bodies=Counter(str(r["body"]) for r in created),
            idempotency_keys=len(keys),
            events=list(events),
            requests=list(requests),
        )

    return asyncio.run(read())
