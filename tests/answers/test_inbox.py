"""A colleague with an account answers from their inbox instead of the emailed link."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.factories import add_person, ask, log_in

QUESTION = "Was my design review easy to follow?"


@pytest.fixture
def request_id(client: TestClient) -> str:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    add_person(client, "tom@example.com", name="Tom Becker")
    add_person(client, "mei@example.com", name="Mei Chen")
    log_in(client, "priya@example.com")
    rid = ask(client, ["tom@example.com", "buyer@client.example"], question=QUESTION)
    client.cookies.clear()
    return rid


def _tom_inbox(client: TestClient) -> list[dict[str, object]]:
    client.cookies.clear()
    log_in(client, "tom@example.com")
    response = client.get("/api/v1/inbox")
    assert response.status_code == 200
    return response.json()["invitations"]  # type: ignore[no-any-return]


def test_a_colleague_sees_the_invitation_and_answers_it(
    client: TestClient, request_id: str
) -> None:
    [item] = _tom_inbox(client)
    assert item["request_id"] == request_id
    assert item["question"] == QUESTION
    assert item["requester"] == {"name": "Priya Natarajan", "email": "priya@example.com"}
    assert item["status"] == "pending"

    url = f"/api/v1/inbox/{item['invitation_id']}/response"
    created = client.put(url, json={"rating": 5, "body": "Very easy to follow."})
    assert created.status_code == 201
    updated = client.put(url, json={"rating": 4, "body": "Easy to follow; slides were dense."})
    assert updated.status_code == 200
    [after] = client.get("/api/v1/inbox").json()["invitations"]
    assert after["status"] == "answered"
    assert after["answer"]["body"] == "Easy to follow; slides were dense."

    client.cookies.clear()
    log_in(client, "priya@example.com")
    detail = client.get(f"/api/v1/requests/{request_id}").json()
    assert [(r["body"], r["rating"], r["reviewer"]) for r in detail["responses"]] == [
        (
            "Easy to follow; slides were dense.",
            4,
            {"name": "Tom Becker", "email": "tom@example.com"},
        )
    ]


def test_the_inbox_can_decline(client: TestClient, request_id: str) -> None:
    [item] = _tom_inbox(client)
    response = client.post(f"/api/v1/inbox/{item['invitation_id']}/decline")
    assert response.status_code == 200
    assert response.json() == {"status": "declined"}


def test_someone_elses_invitation_is_not_found(client: TestClient, request_id: str) -> None:
    [item] = _tom_inbox(client)
    client.cookies.clear()
    log_in(client, "mei@example.com")
    assert client.get("/api/v1/inbox").json()["invitations"] == []

    url = f"/api/v1/inbox/{item['invitation_id']}"
    answer = client.put(f"{url}/response", json={"body": "Pretending to be Tom."})
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
    assert client.post(f"{url}/decline").status_code == 404
    assert client.get(f"/inbox/{item['invitation_id']}").status_code == 404

    [still] = _tom_inbox(client)
    assert still["status"] == "pending"
    assert still["answer"] is None


def test_a_made_up_invitation_id_is_not_found(client: TestClient, request_id: str) -> None:
    _tom_inbox(client)
    for bad in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        response = client.put(f"/api/v1/inbox/{bad}/response", json={"body": "x"})
        assert response.status_code == 404


def test_the_inbox_needs_a_session(client: TestClient, request_id: str) -> None:
    assert client.get("/api/v1/inbox").status_code == 401
    page = client.get("/inbox", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/inbox"


def test_the_inbox_page_lists_the_invitation_and_its_answer_page_saves(
    client: TestClient, request_id: str
) -> None:
    [item] = _tom_inbox(client)
    page = client.get("/inbox")
    assert page.status_code == 200
    assert QUESTION in page.text
    assert "Priya Natarajan" in page.text
    assert f'href="/inbox/{item["invitation_id"]}"' in page.text

    answer_page = client.post(
        f"/inbox/{item['invitation_id']}",
        data={"action": "answer", "rating": "3", "body": "Good pace."},
    )
    assert answer_page.status_code == 200
    assert "Thank you, your answer was sent." in answer_page.text
    assert client.get("/api/v1/inbox").json()["invitations"][0]["status"] == "answered"


def test_a_closed_request_leaves_the_inbox(client: TestClient, request_id: str) -> None:
    [item] = _tom_inbox(client)
    client.cookies.clear()
    log_in(client, "priya@example.com")
    client.post(f"/api/v1/requests/{request_id}/close")
    assert _tom_inbox(client) == []
    response = client.put(
        f"/api/v1/inbox/{item['invitation_id']}/response", json={"body": "Too late."}
    )
    assert response.status_code == 410
