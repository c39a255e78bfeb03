"""A fresh migrated SQLite database filled with many people, fast.

Going through the HTTP API would mean hashing thousands of argon2 passwords (tens of
seconds of CPU) and writing an outbox mail per invitation. Instead rows are inserted with
the ORM on a synchronous engine, shaped exactly as the services store them:
- everyone shares one argon2 hash, computed once (nobody logs in with it here);
- each login session and each invitation gets a random token from `new_token()`, and the
  table keeps only `hash_token(token)`, as `accounts.service.log_in` and
  `requests.service.create_request` do, so the benchmark knows the cookie and the link;
- reviewers are outside the directory (like an emailed link), so no inbox events.
No live events are written, so every person's stream starts at seq 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine
from sqlmodel import Session

from feedback import clock, migrate
from feedback.crypto import hash_token, new_token
from feedback.db import sync_url
from feedback.models import FeedbackRequest, Invitation, LoginSession, Person
from feedback.people.service import hash_password

BATCH = 1000


@dataclass(frozen=True)
class Requester:
    email: str
    session_token: str  # the feedback_session cookie value
    invitation_token: str | None  # their one reviewer's /r/{token} link, if they asked


def migrated_database(directory: Path) -> str:
    url = f"sqlite:///{directory / 'feedback.db'}"
    migrate.upgrade(url)
    return url


def add_requesters(database_url: str, count: int, *, with_requests: bool) -> list[Requester]:
    """`count` people, each logged in once and, if asked, with one open named request."""
    shared_hash = hash_password("bench-password-not-used")
    now = clock.now()
    engine = create_engine(sync_url(database_url))
    requesters: list[Requester] = []
    try:
        for start in range(0, count, BATCH):
            with Session(engine) as session:
                rows = []
                for i in range(start, min(count, start + BATCH)):
                    person = Person(
                        email=f"requester{i}@bench.example",
                        name=f"Requester {i}",
                        password_hash=shared_hash,
                    )
                    rows.append(person)
                session.add_all(rows)
                session.flush()
                requests: list[FeedbackRequest] = []
                for person in rows:
                    session_token = new_token()
                    session.add(
                        LoginSession(
                            id_hash=hash_token(session_token),
                            person_id=person.id,
                            expires_at=now + timedelta(days=1),
                        )
                    )
                    requesters.append(Requester(person.email, session_token, None))
                    if with_requests:
                        requests.append(
                            FeedbackRequest(
                                requester_id=person.id,
                                question="How did my demo go this morning?",
                                anonymous=False,
                                anonymity_k=3,
                            )
                        )
                session.add_all(requests)
                session.flush()
                for offset, request in enumerate(requests):
                    invitation_token = new_token()
                    index = start + offset
                    session.add(
                        Invitation(
                            request_id=request.id,
                            email=f"reviewer-of-requester{index}@bench.example",
                            token_hash=hash_token(invitation_token),
                        )
                    )
                    requesters[index] = replace(
                        requesters[index], invitation_token=invitation_token
                    )
                session.commit()
    finally:
        engine.dispose()
    return requesters
