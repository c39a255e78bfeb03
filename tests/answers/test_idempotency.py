"""Idempotency-Key on answer submission: a client that retries gets the first outcome back."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select
from starlette.testclient import TestClient

from feedback.models.answers import Answer
from feedback.models.live import LiveEvent
from feedback.models.mail import OutboxMail
from tests.factories import add_person, ask, log_in

BUYER = "buyer@client.example"
COACH = "coach@outside.example"
TOM = "tom@example.com"


def _read(client: TestClient, statement: Any) -> list[Any]:
    db = client.app_state["app"].db

    async def run() -> list[Any]:
        async with db.transaction(write=False) as session:
            return list((await session.exec(statement)).all())

    assert client.portal is not None
    return client.portal.call(run)


def _tokens(client: TestClient) -> dict[str, str]:
    """Each reviewer's link token, opened from the sealed outbox as the mail would carry it."""
    sealer = client.app_state["app"].outbox.sealer
    tokens = {}
    for mail in _read(client, select(OutboxMail)):
        if mail.sealed_context:
            link = sealer.open(mail.sealed_context)["link"]
            tokens[mail.to_email] = link.rsplit("/r/", 1)[1]
    return tokens


@pytest.fixture
def links(client: TestClient) -> dict[str, str]:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    add_person(client, TOM, name="Tom Becker")
    log_in(client, "priya@example.com")
    ask(client, [BUYER, COACH, TOM])
    client.cookies.clear()
    return _tokens(client)


def _put(client: TestClient, token: str, body: dict[str, Any], key: str | None) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.put(f"/api/v1/invitations/{token}/response", json=body, headers=headers)


def _answers(client: TestClient) -> list[Answer]:
    return _read(client, select(Answer))


def _created_events(client: TestClient) -> list[LiveEvent]:
    return _read(client, select(LiveEvent).where(col(LiveEvent.type) == "response.created"))


def test_retry_with_the_same_key_replays_the_first_answer_without_writing_again(
    client: TestClient, links: dict[str, str]
) -> None:
    first = _put(client, links[BUYER], {"rating": 4, "body": "Calm and clear."}, "try-1")
    assert first.status_code == 201
    # Same answer, keys in another order: still the same body.
    retry = _put(client, links[BUYER], {"body": "Calm and clear.", "rating": 4}, "try-1")
    assert retry.status_code == 201
    assert retry.json() == first.json()

    assert [(a.rating, a.body) for a in _answers(client)] == [(4, "Calm and clear.")]
    assert len(_created_events(client)) == 1
    assert not _read(client, select(LiveEvent).where(col(LiveEvent.type) == "response.updated"))


def test_reusing_a_key_for_a_different_answer_is_refused_naming_the_header(
    client: TestClient, links: dict[str, str]
) -> None:
    assert _put(client, links[BUYER], {"body": "Calm and clear."}, "try-1").status_code == 201

    reused = _put(client, links[BUYER], {"body": "Actually, too fast."}, "try-1")
    assert reused.status_code == 422
    assert reused.json()["field"] == "Idempotency-Key"
    assert "Idempotency-Key" in reused.json()["detail"]
    assert [a.body for a in _answers(client)] == ["Calm and clear."]


def test_a_new_key_changes_the_answer_as_usual(client: TestClient, links: dict[str, str]) -> None:
    assert _put(client, links[BUYER], {"body": "Calm and clear."}, "try-1").status_code == 201
    changed = _put(client, links[BUYER], {"body": "Calm, but fast."}, "try-2")
    assert changed.status_code == 200
    assert changed.json()["answer"]["body"] == "Calm, but fast."
    # The first key still replays what it did then, not today's answer.
    replay = _put(client, links[BUYER], {"body": "Calm and clear."}, "try-1")
    assert (replay.status_code, replay.json()["answer"]["body"]) == (201, "Calm and clear.")
    assert [a.body for a in _answers(client)] == ["Calm, but fast."]


def test_keys_belong_to_one_invitation(client: TestClient, links: dict[str, str]) -> None:
    same_key = "0b7c9a52-4d0e-4b53-9d1c-5f0a1e2b3c4d"
    assert _put(client, links[BUYER], {"body": "From the buyer."}, same_key).status_code == 201
    assert _put(client, links[COACH], {"body": "From the coach."}, same_key).status_code == 201
    assert sorted(a.body for a in _answers(client)) == ["From the buyer.", "From the coach."]
    assert len(_created_events(client)) == 2


def test_the_inbox_honours_the_key_too(client: TestClient, links: dict[str, str]) -> None:
    log_in(client, TOM)
    invitation_id = client.get("/api/v1/inbox").json()["invitations"][0]["invitation_id"]
    url = f"/api/v1/inbox/{invitation_id}/response"
    headers = {"Idempotency-Key": "inbox-1"}
    first = client.put(url, json={"rating": 5, "body": "Great demo."}, headers=headers)
    retry = client.put(url, json={"rating": 5, "body": "Great demo."}, headers=headers)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    other = client.put(url, json={"body": "Changed my mind."}, headers=headers)
    assert other.status_code == 422
    assert other.json()["field"] == "Idempotency-Key"
    assert len(_answers(client)) == 1
    assert len(_created_events(client)) == 1


def test_a_stored_outcome_replays_even_after_the_request_closes(
    client: TestClient, links: dict[str, str]
) -> None:
    """A client whose first try succeeded must learn so, not be told the request is gone."""
    first = _put(client, links[BUYER], {"body": "Calm and clear."}, "try-1")
    log_in(client, "priya@example.com")
    request_id = _answers(client)[0].request_id
    assert client.post(f"/api/v1/requests/{request_id}/close").status_code == 200
    client.cookies.clear()

    replay = _put(client, links[BUYER], {"body": "Calm and clear."}, "try-1")
    assert (replay.status_code, replay.json()) == (201, first.json())
    assert _put(client, links[BUYER], {"body": "Calm and clear."}, "try-2").status_code == 410


@pytest.mark.parametrize("key", [b"", b"x" * 256, "caf\u00e9".encode(), b"tab\there"])
def test_an_unusable_key_is_refused_before_anything_is_written(
    client: TestClient, links: dict[str, str], key: bytes
) -> None:
    response = client.put(
        f"/api/v1/invitations/{links[BUYER]}/response",
        json={"body": "Calm and clear."},
        headers={"Idempotency-Key": key},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "Idempotency-Key"
    assert _answers(client) == []
