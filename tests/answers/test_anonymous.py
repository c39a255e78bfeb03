"""Anonymous requests: answers reach the requester only in shuffled groups of at least k,
with no name and no time of their own; a remainder below k at close is never shown."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from feedback import clock
from feedback.app import create_app
from feedback.mail.sender import build_message, mail_environment
from feedback.models.live import LiveEvent
from tests.answers.links import ask_with_links, outbox_rows, without_session
from tests.conftest import make_settings
from tests.factories import add_person, log_in

# Outside reviewers have no account, so the test pays for one password hash only.
REVIEWERS = [f"reviewer{n}@outside.example" for n in range(1, 7)]
BODIES = [f"Anonymous answer number {n}, quite specific." for n in range(1, 7)]


class Anonymous:
    def __init__(self, client: TestClient, reviewers: list[str]) -> None:
        self.client = client
        log_in(client, "priya@example.com")
        self.request_id, self.tokens = ask_with_links(
            client, reviewers, question="Honest take on my leadership?", anonymous=True
        )

    def answer(self, n: int, body: str | None = None) -> dict[str, object]:
        """Reviewer n (1-based) answers through their link, with no session; their reply."""
        with (
            without_session(self.client),
            clock.frozen_at(clock.now() + timedelta(minutes=n)),
        ):
            response = self.client.put(
                f"/api/v1/invitations/{self.tokens[REVIEWERS[n - 1]]}/response",
                json={"rating": n % 5 + 1, "body": body or BODIES[n - 1]},
            )
        assert response.status_code in (200, 201), response.text
        assert (response.status_code == 201) == (body is None)
        reply: dict[str, object] = response.json()
        return reply

    def _live_events_for_requester(self) -> list[str]:
        """What the live stream would carry to her (as stored for resuming), as JSON text."""
        me = self.client.get("/api/v1/me").json()["id"]
        db = self.client.app_state["app"].db

        async def read() -> list[str]:
            async with db.transaction(write=False) as session:
                rows = await session.exec(
                    select(LiveEvent).where(LiveEvent.recipient_id == uuid.UUID(me))
                )
                return [json.dumps({"type": e.type, "data": e.data}) for e in rows]

        assert self.client.portal is not None
        events = self.client.portal.call(read)
        assert events, "the requester has live events (request.created at least)"
        return events

    def requester_sees(self) -> tuple[dict[str, object], str]:
        """The request's JSON detail and every place it shows up, as text."""
        detail = self.client.get(f"/api/v1/requests/{self.request_id}")
        everywhere = "\n".join(
            [
                detail.text,
                self.client.get("/api/v1/requests").text,
                self.client.get(f"/requests/{self.request_id}").text,
                self.client.get("/").text,
                *self._live_events_for_requester(),
            ]
        )
        return detail.json(), everywhere


@pytest.fixture
def anonymous(client: TestClient) -> Anonymous:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    return Anonymous(client, REVIEWERS)


def _shown(detail: dict[str, object]) -> list[str]:
    return sorted(r["body"] for r in detail["responses"])  # type: ignore[attr-defined, index]


def test_fewer_than_k_answers_show_nothing_but_counts(anonymous: Anonymous) -> None:
    for n in (1, 2):
        anonymous.answer(n)
        detail, everywhere = anonymous.requester_sees()
        assert detail["anonymity_k"] == 3
        assert detail["responses"] == []
        assert detail["progress"]["received"] == n  # type: ignore[index]
        assert detail["progress"]["released"] == 0  # type: ignore[index]
        assert detail["invitees"] is None
        for body in BODIES:
            assert body not in everywhere
        for reviewer in REVIEWERS:
            assert reviewer not in everywhere
        assert "waiting for the group to fill" in str(detail["notice"])


def test_the_third_answer_releases_all_three_without_identity_or_time(
    anonymous: Anonymous,
) -> None:
    for n in (1, 2, 3):
        anonymous.answer(n)
    detail, everywhere = anonymous.requester_sees()
    assert _shown(detail) == sorted(BODIES[:3])
    released_at = {r["released_at"] for r in detail["responses"]}  # type: ignore[attr-defined]
    assert len(released_at) == 1 and None not in released_at
    for response in detail["responses"]:  # type: ignore[attr-defined]
        assert response["reviewer"] is None
        assert response["created_at"] is None
        assert response["updated_at"] is None
        assert response["id"] is None
    assert detail["progress"]["released"] == 3  # type: ignore[index]
    assert detail["notice"] is None
    assert detail["invitees"] is None
    for reviewer in REVIEWERS:
        assert reviewer not in everywhere


def test_the_answer_that_completes_a_group_is_told_it_is_now_shown(
    anonymous: Anonymous,
) -> None:
    assert anonymous.answer(1)["answer"]["released"] is False  # type: ignore[index]
    # An edit while held is what the group shows.
    edited = anonymous.answer(1, body="First answer, reworded before anyone saw it.")
    assert edited["answer"]["released"] is False  # type: ignore[index]
    assert anonymous.answer(2)["answer"]["released"] is False  # type: ignore[index]
    third = anonymous.answer(3)
    assert third["answer"]["released"] is True  # type: ignore[index]
    assert third["answer"]["body"] == BODIES[2]  # type: ignore[index]
    detail, everywhere = anonymous.requester_sees()
    assert _shown(detail) == sorted(
        ["First answer, reworded before anyone saw it.", BODIES[1], BODIES[2]]
    )
    assert BODIES[0] not in everywhere
    # The reviewer's own view agrees with the reply it got.
    with without_session(anonymous.client) as stranger:
        shown = stranger.get(f"/api/v1/invitations/{anonymous.tokens[REVIEWERS[0]]}").json()
    assert shown["answer"]["released"] is True


def test_a_fourth_and_fifth_answer_wait_for_a_sixth(anonymous: Anonymous) -> None:
    for n in range(1, 6):
        anonymous.answer(n)
    detail, everywhere = anonymous.requester_sees()
    assert _shown(detail) == sorted(BODIES[:3])
    assert BODIES[3] not in everywhere and BODIES[4] not in everywhere
    assert detail["progress"]["received"] == 5  # type: ignore[index]
    assert detail["progress"]["released"] == 3  # type: ignore[index]
    assert "2 received answers are waiting" in str(detail["notice"])

    anonymous.answer(6)
    detail, _ = anonymous.requester_sees()
    assert _shown(detail) == sorted(BODIES)
    times = [r["released_at"] for r in detail["responses"]]  # type: ignore[attr-defined]
    # Two groups, each with one release time, the first group first.
    assert len(set(times[:3])) == 1 and len(set(times[3:])) == 1
    assert times[0] < times[3]
    assert sorted(r["body"] for r in detail["responses"][3:]) == sorted(BODIES[3:])  # type: ignore[index]


def test_closing_below_k_keeps_the_remainder_withheld_and_says_why(client: TestClient) -> None:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    anonymous = Anonymous(client, REVIEWERS[:5])
    for n in range(1, 6):
        anonymous.answer(n)
    closed = client.post(f"/api/v1/requests/{anonymous.request_id}/close")
    assert closed.status_code == 200

    detail, everywhere = anonymous.requester_sees()
    assert detail == {**closed.json(), "notice": detail["notice"]}
    assert detail["status"] == "closed"
    assert _shown(detail) == sorted(BODIES[:3])
    assert detail["progress"]["withheld"] == 2  # type: ignore[index]
    notice = str(detail["notice"])
    assert "2 answers will never be shown" in notice
    assert "groups of at least 3" in notice
    assert BODIES[3] not in everywhere and BODIES[4] not in everywhere
    assert notice in everywhere  # the page explains it too


def test_a_released_answer_can_no_longer_be_edited_but_a_held_one_can(
    anonymous: Anonymous,
) -> None:
    for n in range(1, 5):
        anonymous.answer(n)
    client = anonymous.client
    released = client.put(
        f"/api/v1/invitations/{anonymous.tokens[REVIEWERS[0]]}/response",
        json={"body": "Let me rewrite that."},
    )
    assert released.status_code == 409
    assert "can no longer be changed" in released.json()["detail"]
    shown = client.get(f"/api/v1/invitations/{anonymous.tokens[REVIEWERS[0]]}").json()
    assert shown["answer"]["released"] is True
    assert shown["answer"]["body"] == BODIES[0]
    page = client.get(f"/r/{anonymous.tokens[REVIEWERS[0]]}")
    assert "can no longer be changed" in page.text
    assert 'id="answer-form"' not in page.text

    held = client.put(
        f"/api/v1/invitations/{anonymous.tokens[REVIEWERS[3]]}/response",
        json={"body": "Fourth, reworded."},
    )
    assert held.status_code == 200
    detail, _ = anonymous.requester_sees()
    assert _shown(detail) == sorted(BODIES[:3])


def test_a_declined_anonymous_invitation_is_not_revealed(anonymous: Anonymous) -> None:
    with without_session(anonymous.client) as stranger:
        stranger.post(f"/api/v1/invitations/{anonymous.tokens[REVIEWERS[0]]}/decline")
    detail, _ = anonymous.requester_sees()
    assert detail["invitees"] is None
    assert detail["progress"]["declined"] is None  # type: ignore[index]


def test_reviewers_are_told_the_group_size_this_deployment_uses(database_url: str) -> None:
    # With k = 5, the promise on the page, in the API and in the mail says 5, not 3.
    settings = make_settings(database_url, anonymity_k=5)
    with TestClient(create_app(settings)) as client:
        add_person(client, "priya@example.com", name="Priya Natarajan")
        anonymous = Anonymous(client, REVIEWERS[:5])
        token = anonymous.tokens[REVIEWERS[0]]
        with without_session(client):
            shown = client.get(f"/api/v1/invitations/{token}").json()
            page = client.get(f"/r/{token}").text
        assert shown["anonymous"] is True
        assert shown["anonymity_k"] == 5
        assert "groups of at least 5" in page
        mail = next(row for row in outbox_rows(client) if row.to_email == REVIEWERS[0])
        app = client.app_state["app"]
        message = build_message(
            mail, env=mail_environment(), sealer=app.outbox.sealer, settings=settings
        )
        for part in ("plain", "html"):
            body = message.get_body((part,))
            assert body is not None
            assert "groups of at least 5" in body.get_content()


def test_a_named_invitation_has_no_group_size(client: TestClient) -> None:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    log_in(client, "priya@example.com")
    _request_id, tokens = ask_with_links(client, [REVIEWERS[0]])
    with without_session(client):
        shown = client.get(f"/api/v1/invitations/{tokens[REVIEWERS[0]]}").json()
    assert shown["anonymous"] is False
    assert shown["anonymity_k"] is None
