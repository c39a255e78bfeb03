"""Anonymity as a property: whatever reviewers and the requester do, in any order, the
requester never sees an anonymous answer before it is released in a batch of at least k,
and released answers carry nothing that tells who wrote them or when.

A Hypothesis state machine creates anonymous requests, answers (new or edited), declines,
closes, and looks at everything the requester can see: the API detail and list, the HTML
page, and every live event recorded for the requester. Each example runs on a fresh copy of
a database that already holds the requester and her session (argon2 runs once, not per
example).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import col, select
from starlette.testclient import TestClient

from feedback.app import create_app
from feedback.models.live import LiveEvent
from feedback.models.people import Person
from tests.answers.links import ask_with_links
from tests.conftest import make_settings
from tests.factories import add_person, log_in

K = 3
REQUESTER = "priya@example.com"
COOKIE = "feedback_session"
# What a released anonymous answer may carry; anything else could single out its writer.
RELEASED_FIELDS = {"body", "rating", "released_at"}
IDENTIFYING_FIELDS = ("id", "reviewer", "created_at", "updated_at")
REQUESTER_EVENT_TYPES = {"request.created", "request.progress", "responses.released"}
REQUESTER_EVENT_TYPES |= {"request.closed"}


@dataclass
class Asked:
    """The model of one anonymous request: what was written, what must have been released."""

    id: str
    tokens: list[str]
    open: bool = True
    current: dict[int, str] = field(default_factory=dict)  # reviewer -> latest body
    declined: set[int] = field(default_factory=set)
    released: dict[int, str] = field(default_factory=dict)  # reviewer -> body, frozen
    batches: list[int] = field(default_factory=list)  # sizes, in release order


class AnonymityMachine(RuleBasedStateMachine):
    base_db: ClassVar[Path]
    workdir: ClassVar[Path]
    cookie: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        path = self.workdir / f"{uuid.uuid4().hex}.db"
        shutil.copy(self.base_db, path)
        self.client = TestClient(create_app(make_settings(path)))
        self.client.__enter__()
        self.asked: list[Asked] = []
        self.written: set[str] = set()  # every body ever sent, including superseded ones
        self.serial = 0

    def teardown(self) -> None:
        self.client.__exit__(None, None, None)

    # Who is calling: reviewers hold only their link; the requester her session.

    def as_reviewer(self) -> TestClient:
        self.client.cookies.clear()
        return self.client

    def as_requester(self) -> TestClient:
        self.client.cookies.set(COOKIE, self.cookie)
        return self.client

    def pick(self, which: int) -> Asked:
        return self.asked[which % len(self.asked)]

    # Actions

    @precondition(lambda self: len(self.asked) < 3)
    @rule(reviewers=st.integers(min_value=3, max_value=6))
    def create(self, reviewers: int) -> None:
        n = len(self.asked)
        emails = [f"r{i}.q{n}@example.com" for i in range(reviewers)]
        request_id, tokens = ask_with_links(
            self.as_requester(), emails, question=f"Question {n}?", anonymous=True
        )
        self.asked.append(Asked(request_id, [tokens[e] for e in emails]))

    @precondition(lambda self: self.asked)
    @rule(
        which=st.integers(min_value=0, max_value=2),
        who=st.integers(min_value=0, max_value=5),
        rating=st.none() | st.integers(min_value=1, max_value=5),
        words=st.text(alphabet="abc xyz", max_size=12),
    )
    def answer(self, which: int, who: int, rating: int | None, words: str) -> None:
        asked = self.pick(which)
        who %= len(asked.tokens)
        self.serial += 1
        # A marker no other text contains, so its presence anywhere is unambiguous.
        body = f"zqmark{self.serial:05d}q {words}".strip()
        self.written.add(body)
        response = self.as_reviewer().put(
            f"/api/v1/invitations/{asked.tokens[who]}/response",
            json={"rating": rating, "body": body},
        )
        if not asked.open:
            assert response.status_code == 410, response.text
            return
        if who in asked.released:
            # Changing a released answer would single it out.
            assert response.status_code == 409, response.text
            return
        created = who not in asked.current
        assert response.status_code == (201 if created else 200), response.text
        asked.current[who] = body
        asked.declined.discard(who)
        held = [r for r in asked.current if r not in asked.released]
        if len(held) >= K:
            for r in held:
                asked.released[r] = asked.current[r]
            asked.batches.append(len(held))

    @precondition(lambda self: self.asked)
    @rule(which=st.integers(min_value=0, max_value=2), who=st.integers(min_value=0, max_value=5))
    def decline(self, which: int, who: int) -> None:
        asked = self.pick(which)
        who %= len(asked.tokens)
        response = self.as_reviewer().post(f"/api/v1/invitations/{asked.tokens[who]}/decline")
        if not asked.open:
            assert response.status_code == 410, response.text
        elif who in asked.current:
            assert response.status_code == 409, response.text
        else:
            assert response.status_code == 200, response.text
            asked.declined.add(who)

    @precondition(lambda self: self.asked)
    @rule(which=st.integers(min_value=0, max_value=2))
    def close(self, which: int) -> None:
        asked = self.pick(which)
        response = self.as_requester().post(f"/api/v1/requests/{asked.id}/close")
        assert response.status_code == (200 if asked.open else 409), response.text
        asked.open = False

    # What the requester sees. Looking is a step like any other, so it happens at any
    # point of any history; the live events table is checked after every step.

    @precondition(lambda self: self.asked)
    @rule(which=st.integers(min_value=0, max_value=2))
    def look_at_the_page(self, which: int) -> None:
        asked = self.pick(which)
        page = self.as_requester().get(f"/requests/{asked.id}")
        assert page.status_code == 200
        self.assert_no_leak(page.text, "the request page")
        for body in asked.released.values():
            assert body.split()[0] in page.text

    @precondition(lambda self: self.asked)
    @rule(which=st.integers(min_value=0, max_value=2))
    def look_through_the_api(self, which: int) -> None:
        asked = self.pick(which)
        client = self.as_requester()
        listing = client.get("/api/v1/requests")
        assert listing.status_code == 200
        self.assert_no_leak(listing.text, "the request list")
        summaries = {r["id"]: r for r in listing.json()["requests"]}
        for other in self.asked:
            self.assert_counts(other, summaries[other.id]["progress"])

        response = client.get(f"/api/v1/requests/{asked.id}")
        assert response.status_code == 200
        self.assert_no_leak(response.text, "the API detail")
        detail = response.json()
        assert detail["invitees"] is None  # no per-invitee status
        assert detail["status"] == ("open" if asked.open else "closed")
        self.assert_counts(asked, detail["progress"])
        responses = detail["responses"]
        assert Counter(r["body"] for r in responses) == Counter(asked.released.values())
        for r in responses:
            assert set(r) <= RELEASED_FIELDS | set(IDENTIFYING_FIELDS)
            assert all(r.get(name) is None for name in IDENTIFYING_FIELDS), r
            assert r["released_at"] is not None
        # Answers come in groups sharing one release time, each of at least k.
        groups = Counter(r["released_at"] for r in responses)
        assert sorted(groups.values()) == sorted(asked.batches)
        assert all(size >= K for size in groups.values())

    def forbidden(self) -> set[str]:
        released = {body for a in self.asked for body in a.released.values()}
        return {body.split()[0] for body in self.written - released}

    def assert_no_leak(self, text: str, where: str) -> None:
        leaked = [marker for marker in self.forbidden() if marker in text]
        assert not leaked, f"unreleased anonymous answers {leaked} visible in {where}"

    def assert_counts(self, asked: Asked, progress: dict[str, Any]) -> None:
        received, released = len(asked.current), len(asked.released)
        assert progress == {
            "invited": len(asked.tokens),
            "received": received,
            "declined": None,
            "released": released,
            "withheld": None if asked.open else received - released,
        }

    @invariant()
    def live_events_carry_only_released_batches_and_counts(self) -> None:
        db = self.client.app_state["app"].db

        async def read() -> list[LiveEvent]:
            async with db.transaction(write=False) as session:
                rows = await session.exec(
                    select(LiveEvent)
                    .join(Person, col(Person.id) == col(LiveEvent.recipient_id))
                    .where(Person.email == REQUESTER)
                    .order_by(col(LiveEvent.seq))
                )
                return list(rows.all())

        assert self.client.portal is not None
        events = self.client.portal.call(read)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        self.assert_no_leak(json.dumps([e.data for e in events]), "the live events")
        released: dict[str, Counter[str]] = {a.id: Counter() for a in self.asked}
        for event in events:
            assert event.type in REQUESTER_EVENT_TYPES, event.type
            if event.type == "request.progress":
                assert set(event.data) == {"progress"}
                assert all(v is None or isinstance(v, int) for v in event.data["progress"].values())
            if event.type == "responses.released":
                batch = event.data["responses"]
                assert len(batch) >= K
                release_time = datetime.fromisoformat(event.data["released_at"])
                for r in batch:
                    assert set(r) <= RELEASED_FIELDS, r
                    assert datetime.fromisoformat(r["released_at"]) == release_time
                released[str(event.request_id)].update(r["body"] for r in batch)
        for asked in self.asked:
            assert released[asked.id] == Counter(asked.released.values())


@pytest.fixture
def base_db(migrated_template: Path, tmp_path: Path) -> tuple[Path, str]:
    """A database holding the requester and an open session of hers."""
    path = tmp_path / "base.db"
    shutil.copy(migrated_template, path)
    with TestClient(create_app(make_settings(path))) as client:
        add_person(client, REQUESTER, name="Priya Natarajan")
        log_in(client, REQUESTER)
        return path, str(client.cookies[COOKIE])


def test_anonymous_answers_reach_the_requester_only_in_released_batches_without_identity(
    base_db: tuple[Path, str], tmp_path: Path
) -> None:
    AnonymityMachine.base_db, AnonymityMachine.cookie = base_db
    AnonymityMachine.workdir = tmp_path
    run_state_machine_as_test(
        AnonymityMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )


def test_release_order_is_not_the_order_answers_arrived(client: TestClient) -> None:
    """Each batch is shuffled: over twelve batches of three, the chance that every one comes
    out in arrival order (or every one reversed) by luck is (1/6)**12, about 5e-10."""
    add_person(client, REQUESTER, name="Priya Natarajan")
    log_in(client, REQUESTER)
    cookie = client.cookies[COOKIE]
    orders: list[list[int]] = []
    for n in range(12):
        emails = [f"r{i}.q{n}@example.com" for i in range(K)]
        request_id, tokens = ask_with_links(client, emails, anonymous=True)
        client.cookies.clear()
        for i, email in enumerate(emails):
            response = client.put(
                f"/api/v1/invitations/{tokens[email]}/response", json={"body": f"answer {i}"}
            )
            assert response.status_code == 201
        client.cookies.set(COOKIE, cookie)
        detail = client.get(f"/api/v1/requests/{request_id}").json()
        orders.append([int(r["body"].split()[1]) for r in detail["responses"]])
    assert all(sorted(order) == [0, 1, 2] for order in orders)
    assert any(order != [0, 1, 2] for order in orders)
    assert any(order != [2, 1, 0] for order in orders)
