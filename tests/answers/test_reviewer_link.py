"""A reviewer answers through the personal link from their email, with no account."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select as sa_select
from sqlmodel import select
from starlette.testclient import TestClient

import feedback.models
from feedback import clock
from feedback.models.requests import Invitation
from tests.answers.conftest import CONTEXT, QUESTION, Asked
from tests.answers.links import ask_with_links
from tests.factories import log_in

BUYER = "buyer@client.example"


def _close(asked: Asked) -> None:
    client = asked.as_requester()
    assert client.post(f"/api/v1/requests/{asked.request_id}/close").status_code == 200
    asked.as_stranger()


def test_the_link_shows_who_asks_what_and_why(asked: Asked) -> None:
    response = asked.client.get(f"/api/v1/invitations/{asked.tokens[BUYER]}")
    assert response.status_code == 200
    shown = response.json()
    assert shown["requester"] == {"name": "Priya Natarajan", "email": "priya@example.com"}
    assert shown["question"] == QUESTION
    assert shown["context"] == CONTEXT
    assert shown["tags"] == ["objection handling"]
    assert shown["status"] == "pending"
    assert shown["request_open"] is True
    assert shown["anonymous"] is False
    assert shown["answer"] is None
    assert response.headers["cache-control"] == "no-store"


def test_answering_creates_then_edits_the_same_answer(asked: Asked) -> None:
    url = f"/api/v1/invitations/{asked.tokens[BUYER]}/response"
    first = asked.client.put(url, json={"rating": 4, "body": "  Calm and clear.  "})
    assert first.status_code == 201
    assert first.json()["status"] == "answered"
    assert first.json()["answer"]["body"] == "Calm and clear."
    assert first.json()["answer"]["rating"] == 4

    second = asked.client.put(url, json={"body": "Calm, clear, but a bit fast."})
    assert second.status_code == 200
    assert second.json()["answer"] == {
        **second.json()["answer"],
        "body": "Calm, clear, but a bit fast.",
        "rating": None,
    }

    requester = asked.as_requester()
    responses = requester.get(f"/api/v1/requests/{asked.request_id}").json()["responses"]
    assert [(r["body"], r["rating"]) for r in responses] == [("Calm, clear, but a bit fast.", None)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": 0, "body": "ok"}, "rating"),
        ({"rating": 6, "body": "ok"}, "rating"),
        ({"rating": "5", "body": "ok"}, "rating"),
        ({"rating": 2.5, "body": "ok"}, "rating"),
        ({"rating": True, "body": "ok"}, "rating"),
        ({"rating": 3}, "body"),
        ({"rating": 3, "body": ""}, "body"),
        ({"rating": 3, "body": " \n\t "}, "body"),
        ({"rating": 3, "body": "x" * 2001}, "body"),
        ({"rating": 3, "body": 42}, "body"),
        ({"body": "ok", "reviewer": "someone else"}, "reviewer"),
        ({"body": "ok", "anonymous": False}, "anonymous"),
    ],
)
def test_bad_answers_get_422_naming_the_field_and_save_nothing(
    asked: Asked, body: dict[str, object], field: str
) -> None:
    token = asked.tokens[BUYER]
    response = asked.client.put(f"/api/v1/invitations/{token}/response", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid"
    assert response.json()["field"] == field
    assert field in response.json()["detail"]
    assert asked.client.get(f"/api/v1/invitations/{token}").json()["answer"] is None


def test_the_longest_allowed_answer_is_kept_whole(asked: Asked) -> None:
    body = "y" * 2000
    response = asked.client.put(
        f"/api/v1/invitations/{asked.tokens[BUYER]}/response", json={"rating": 1, "body": body}
    )
    assert response.status_code == 201
    assert response.json()["answer"]["body"] == body


def test_declining_shows_on_the_link_and_to_the_requester(asked: Asked) -> None:
    token = asked.tokens[BUYER]
    response = asked.client.post(f"/api/v1/invitations/{token}/decline")
    assert response.status_code == 200
    assert response.json() == {"status": "declined"}
    assert asked.client.get(f"/api/v1/invitations/{token}").json()["status"] == "declined"
    # Declining twice is harmless.
    assert asked.client.post(f"/api/v1/invitations/{token}/decline").status_code == 200

    requester = asked.as_requester()
    detail = requester.get(f"/api/v1/requests/{asked.request_id}").json()
    assert {i["email"]: i["status"] for i in detail["invitees"]} == {
        BUYER: "declined",
        "coach@outside.example": "pending",
    }
    assert detail["progress"]["declined"] == 1


def test_a_reviewer_who_declined_can_still_answer(asked: Asked) -> None:
    token = asked.tokens[BUYER]
    asked.client.post(f"/api/v1/invitations/{token}/decline")
    response = asked.client.put(
        f"/api/v1/invitations/{token}/response", json={"body": "Changed my mind: great job."}
    )
    assert response.status_code == 201
    assert response.json()["status"] == "answered"
    assert asked.client.get(f"/api/v1/invitations/{token}").json()["status"] == "answered"


def test_declining_after_answering_is_a_conflict(asked: Asked) -> None:
    token = asked.tokens[BUYER]
    asked.client.put(f"/api/v1/invitations/{token}/response", json={"body": "Great."})
    response = asked.client.post(f"/api/v1/invitations/{token}/decline")
    assert response.status_code == 409
    assert asked.client.get(f"/api/v1/invitations/{token}").json()["status"] == "answered"


@pytest.mark.parametrize("token", ["not-a-real-token", "x" * 43, "%2E%2E"])
def test_an_unknown_link_is_404_everywhere(asked: Asked, token: str) -> None:
    client = asked.client
    assert client.get(f"/api/v1/invitations/{token}").status_code == 404
    put = client.put(f"/api/v1/invitations/{token}/response", json={"body": "hi"})
    assert put.status_code == 404
    assert put.json()["error"] == "not_found"
    assert client.post(f"/api/v1/invitations/{token}/decline").status_code == 404
    page = client.get(f"/r/{token}")
    assert page.status_code == 404
    assert "This feedback link is not valid" in page.text


def test_a_closed_request_is_gone_with_a_clear_message(asked: Asked) -> None:
    token = asked.tokens[BUYER]
    asked.client.put(f"/api/v1/invitations/{token}/response", json={"body": "Before close."})
    _close(asked)
    message = "This request is closed: it no longer takes answers."

    for response in (
        asked.client.get(f"/api/v1/invitations/{token}"),
        asked.client.put(f"/api/v1/invitations/{token}/response", json={"body": "After close."}),
        asked.client.post(f"/api/v1/invitations/{token}/decline"),
        asked.client.post(f"/api/v1/invitations/{asked.tokens['coach@outside.example']}/decline"),
    ):
        assert response.status_code == 410
        assert response.json() == {"error": "gone", "detail": message}

    page = asked.client.get(f"/r/{token}")
    assert page.status_code == 410
    assert message in page.text
    assert "<form" not in page.text.split("<main", 1)[1]
    posted = asked.client.post(f"/r/{token}", data={"action": "answer", "body": "After close."})
    assert posted.status_code == 410

    requester = asked.as_requester()
    responses = requester.get(f"/api/v1/requests/{asked.request_id}").json()["responses"]
    assert [r["body"] for r in responses] == ["Before close."]


def test_a_request_past_its_due_date_takes_no_answers(priya: TestClient) -> None:
    due = datetime(2030, 1, 10, 17, 0, tzinfo=UTC)
    with clock.frozen_at(due - timedelta(days=3)):
        log_in(priya, "priya@example.com")  # a session opened in that future
        _request_id, tokens = ask_with_links(
            priya, ["buyer@client.example"], due_at=due.isoformat()
        )
        token = tokens[BUYER]
        assert priya.get(f"/api/v1/invitations/{token}").status_code == 200
    with clock.frozen_at(due + timedelta(seconds=1)):
        assert priya.get(f"/api/v1/invitations/{token}").status_code == 410
        put = priya.put(f"/api/v1/invitations/{token}/response", json={"body": "Late."})
        assert put.status_code == 410
        assert priya.get(f"/r/{token}").status_code == 410


def test_opening_the_page_never_changes_anything(asked: Asked) -> None:
    token = asked.tokens[BUYER]
    for _ in range(2):
        page = asked.client.get(f"/r/{token}")
        assert page.status_code == 200
    # HEAD requests from mail scanners must not decline or answer either.
    asked.client.head(f"/r/{token}")
    assert asked.client.get(f"/api/v1/invitations/{token}").json()["status"] == "pending"
    requester = asked.as_requester()
    detail = requester.get(f"/api/v1/requests/{asked.request_id}").json()
    assert {i["status"] for i in detail["invitees"]} == {"pending"}
    assert detail["responses"] == []


def test_the_page_shows_the_question_and_a_form(asked: Asked) -> None:
    page = asked.client.get(f"/r/{asked.tokens[BUYER]}")
    assert page.status_code == 200
    assert "Priya Natarajan" in page.text
    assert QUESTION in page.text
    assert CONTEXT in page.text
    assert f'action="/r/{asked.tokens[BUYER]}"' in page.text
    assert "will see your name with your answer" in page.text


def test_the_page_keeps_the_link_out_of_referrers_and_caches(asked: Asked) -> None:
    page = asked.client.get(f"/r/{asked.tokens[BUYER]}")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"


def test_posting_the_form_saves_the_answer_and_the_page_shows_it(asked: Asked) -> None:
    token = asked.tokens[BUYER]
    response = asked.client.post(
        f"/r/{token}", data={"action": "answer", "rating": "5", "body": "You listened first."}
    )
    assert response.status_code == 200
    assert "Thank you, your answer was sent." in response.text
    assert "You listened first." in response.text
    assert 'value="5" checked' in response.text
    assert response.headers["cache-control"] == "no-store"

    again = asked.client.get(f"/r/{token}")
    assert "You listened first." in again.text
    assert "Update answer" in again.text

    edited = asked.client.post(
        f"/r/{token}", data={"action": "answer", "rating": "", "body": "You listened."}
    )
    assert "Your answer was updated." in edited.text

    requester = asked.as_requester()
    responses = requester.get(f"/api/v1/requests/{asked.request_id}").json()["responses"]
    assert [(r["body"], r["rating"]) for r in responses] == [("You listened.", None)]
    page = requester.get(f"/requests/{asked.request_id}")
    assert "You listened." in page.text


def test_a_blank_form_answer_shows_an_error_and_saves_nothing(asked: Asked) -> None:
    token = asked.tokens[BUYER]
    response = asked.client.post(f"/r/{token}", data={"action": "answer", "body": "   "})
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert asked.client.get(f"/api/v1/invitations/{token}").json()["answer"] is None


def test_a_forged_rating_in_the_form_is_refused(asked: Asked) -> None:
    token = asked.tokens[BUYER]
    for rating in ("9", "-1", "abc"):
        response = asked.client.post(
            f"/r/{token}", data={"action": "answer", "rating": rating, "body": "Fine."}
        )
        assert response.status_code == 422
    assert asked.client.get(f"/api/v1/invitations/{token}").json()["answer"] is None


def test_the_decline_button_declines(asked: Asked) -> None:
    token = asked.tokens[BUYER]
    response = asked.client.post(f"/r/{token}", data={"action": "decline"})
    assert response.status_code == 200
    assert "You declined" in response.text
    assert asked.client.get(f"/api/v1/invitations/{token}").json()["status"] == "declined"


def test_only_the_hash_of_the_link_is_stored(asked: Asked) -> None:
    app = asked.client.app_state["app"]

    async def everything() -> tuple[list[str], str]:
        async with app.db.transaction(write=False) as session:
            hashes = [i.token_hash for i in (await session.exec(select(Invitation))).all()]
            connection = await session.connection()
            dump = []
            for table in feedback.models.metadata.sorted_tables:
                dump += [repr(tuple(row)) for row in await connection.execute(sa_select(table))]
            return hashes, "\n".join(dump)

    assert asked.client.portal is not None
    hashes, dump = asked.client.portal.call(everything)
    expected = {hashlib.sha256(t.encode()).hexdigest() for t in asked.tokens.values()}
    assert set(hashes) == expected
    # In no column of any table in clear (the outbox keeps the link sealed).
    assert expected <= set(re.findall(r"[0-9a-f]{64}", dump))  # the dump is complete enough
    for token in asked.tokens.values():
        assert token not in dump

    # Nor anywhere in a SQLite file, free pages and write-ahead log included.
    path = app.settings.sqlite_path
    if path is not None:
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        for token in asked.tokens.values():
            assert token.encode() not in raw


def test_the_link_never_reaches_the_server_logs(
    asked: Asked, caplog: pytest.LogCaptureFixture
) -> None:
    token = asked.tokens[BUYER]
    with caplog.at_level(logging.DEBUG):
        asked.client.get(f"/r/{token}")
        asked.client.get(f"/api/v1/invitations/{token}")
        asked.client.post(f"/r/{token}", data={"action": "answer", "body": "Logged?"})
        asked.client.put(f"/api/v1/invitations/{token}/response", json={"body": "Edited"})
        asked.client.put(f"/api/v1/invitations/{token}/response", json={"rating": 9, "body": ""})
        asked.client.post(f"/api/v1/invitations/{asked.tokens['coach@outside.example']}/decline")
        _close(asked)
        asked.client.get(f"/r/{token}")
        asked.client.put(f"/api/v1/invitations/{token}/response", json={"body": "Late"})
        # Paths that match no route are logged too; the token must be cut from those.
        asked.client.get(f"/r/{token}/extra")
        asked.client.post(f"/api/v1/invitations/{token}/nonsense")
        asked.client.get(f"/static/{token}.css")

    # The test client logs the URLs it requests; everything else is the server's.
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    # Requests are logged (so a raw path would show up here), by their route template.
    messages = [r.getMessage() for r in server]
    assert any(m.startswith("GET /r/{token} 200") for m in messages), messages
    assert any(m.startswith("PUT /api/v1/invitations/{token}/response 410") for m in messages)
    for record in server:
        text = record.getMessage() + repr(record.args) + str(record.__dict__)
        for secret in asked.tokens.values():
            assert secret not in text, f"{record.name}: {record.getMessage()[:200]}"
