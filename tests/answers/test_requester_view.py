"""What the requester sees of a named request: every answer, with who wrote it."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.answers.links import ask_with_links
from tests.factories import add_person, log_in


def test_named_answers_show_body_rating_reviewer_and_everyone_s_status(
    client: TestClient,
) -> None:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    add_person(client, "tom@example.com", name="Tom Becker")
    log_in(client, "priya@example.com")
    request_id, tokens = ask_with_links(
        client,
        ["tom@example.com", "buyer@client.example", "coach@outside.example"],
        question="Was my proposal clear?",
    )
    client.cookies.clear()
    client.put(
        f"/api/v1/invitations/{tokens['tom@example.com']}/response",
        json={"rating": 4, "body": "Clear, one typo on page 2."},
    )
    client.put(
        f"/api/v1/invitations/{tokens['buyer@client.example']}/response",
        json={"body": "We understood the next step."},
    )
    client.post(f"/api/v1/invitations/{tokens['coach@outside.example']}/decline")

    log_in(client, "priya@example.com")
    detail = client.get(f"/api/v1/requests/{request_id}").json()
    assert detail["anonymous"] is False
    assert detail["notice"] is None
    by_email = {r["reviewer"]["email"]: r for r in detail["responses"]}
    assert by_email["tom@example.com"]["body"] == "Clear, one typo on page 2."
    assert by_email["tom@example.com"]["rating"] == 4
    assert by_email["tom@example.com"]["reviewer"]["name"] == "Tom Becker"
    assert by_email["tom@example.com"]["created_at"] is not None
    # Reviewers outside the directory are known by their address only.
    assert by_email["buyer@client.example"]["reviewer"] == {
        "name": None,
        "email": "buyer@client.example",
    }
    assert by_email["buyer@client.example"]["rating"] is None
    assert detail["invitees"] == [
        {"email": "buyer@client.example", "name": None, "status": "answered"},
        {"email": "coach@outside.example", "name": None, "status": "declined"},
        {"email": "tom@example.com", "name": "Tom Becker", "status": "answered"},
    ]
    assert detail["progress"] == {
        "invited": 3,
        "received": 2,
        "declined": 1,
        "released": None,
        "withheld": None,
    }

    page = client.get(f"/requests/{request_id}")
    assert page.status_code == 200
    for text in ("Clear, one typo on page 2.", "We understood the next step.", "Tom Becker"):
        assert text in page.text
    assert 'data-invitee="coach@outside.example"' in page.text
