"""Closing a request, and the HTML pages for asking and reading one's requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from feedback import clock
from tests.factories import add_person, ask, log_in


@pytest.fixture
def priya(client: TestClient) -> TestClient:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    add_person(client, "tom@example.com", name="Tom Becker")
    log_in(client, "priya@example.com")
    return client


def test_closing_marks_the_request_closed_once(priya: TestClient) -> None:
    request_id = ask(priya, ["tom@example.com"])
    closed = priya.post(f"/api/v1/requests/{request_id}/close")
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    assert closed.json()["closed_at"] is not None
    again = priya.post(f"/api/v1/requests/{request_id}/close")
    assert again.status_code == 409
    assert again.json()["error"] == "conflict"
    [listed] = priya.get("/api/v1/requests").json()["requests"]
    assert listed["status"] == "closed"


def test_only_the_requester_can_close(priya: TestClient) -> None:
    request_id = ask(priya, ["tom@example.com"])
    priya.cookies.clear()
    log_in(priya, "tom@example.com")
    assert priya.post(f"/api/v1/requests/{request_id}/close").status_code == 404
    assert priya.post(f"/requests/{request_id}/close").status_code == 404
    # Tom, a reviewer, can still answer: it is open.
    [item] = priya.get("/api/v1/inbox").json()["invitations"]
    assert item["request_open"] is True


@pytest.mark.parametrize("bad_id", ["00000000-0000-4000-8000-000000000000", "12", "x" * 40])
def test_unknown_request_ids_are_404(priya: TestClient, bad_id: str) -> None:
    assert priya.get(f"/api/v1/requests/{bad_id}").status_code == 404
    assert priya.post(f"/api/v1/requests/{bad_id}/close").status_code == 404
    assert priya.get(f"/requests/{bad_id}").status_code == 404


def test_a_request_past_its_due_date_lists_as_closed(priya: TestClient) -> None:
    due = clock.now() + timedelta(days=2)
    request_id = ask(priya, ["tom@example.com"], due_at=due.isoformat())
    assert priya.get(f"/api/v1/requests/{request_id}").json()["status"] == "open"
    with clock.frozen_at(due + timedelta(minutes=1)):
        assert priya.get(f"/api/v1/requests/{request_id}").json()["status"] == "closed"


def test_the_same_reviewer_written_twice_is_asked_once(priya: TestClient) -> None:
    request_id = ask(priya, ["Tom@Example.com", " tom@example.com", "buyer@client.example"])
    detail = priya.get(f"/api/v1/requests/{request_id}").json()
    assert [i["email"] for i in detail["invitees"]] == ["buyer@client.example", "tom@example.com"]
    assert detail["progress"]["invited"] == 2


def test_pages_send_a_visitor_without_a_session_to_log_in(client: TestClient) -> None:
    for path in ("/", "/requests/new"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path}"


def test_asking_with_the_form_shows_the_new_request(priya: TestClient) -> None:
    form = priya.get("/requests/new")
    assert form.status_code == 200
    assert 'name="question"' in form.text

    response = priya.post(
        "/requests/new",
        data={
            "question": "Did my pitch land?",
            "context": "Globex, Tuesday",
            "tags": "Presenting, sales",
            "reviewers": "tom@example.com\nbuyer@client.example",
            "due_date": (datetime.now(UTC) + timedelta(days=7)).date().isoformat(),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/requests/")

    page = priya.get(location)
    assert page.status_code == 200
    assert "Did my pitch land?" in page.text
    assert "Globex, Tuesday" in page.text
    assert 'data-invitee="tom@example.com"' in page.text

    request_id = location.rsplit("/", 1)[1]
    detail = priya.get(f"/api/v1/requests/{request_id}").json()
    assert detail["tags"] == ["presenting", "sales"]
    assert detail["due_at"].endswith("23:59:00Z") or detail["due_at"].endswith("23:59:00+00:00")
    assert "Did my pitch land?" in priya.get("/").text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"question": "", "reviewers": "tom@example.com"}, "question"),
        ({"question": "Q?", "reviewers": ""}, "reviewers"),
        ({"question": "Q?", "reviewers": "not an email"}, "not an email"),
        ({"question": "Q?", "reviewers": "tom@example.com", "anonymous": "on"}, "at least 3"),
        ({"question": "Q?", "reviewers": "tom@example.com", "due_date": "31/12/2030"}, "due_at"),
    ],
)
def test_a_bad_form_shows_the_error_keeps_the_input_and_creates_nothing(
    priya: TestClient, fields: dict[str, str], message: str
) -> None:
    response = priya.post("/requests/new", data=fields, follow_redirects=False)
    assert response.status_code == 422
    assert message in response.text
    if fields["question"]:
        assert fields["question"] in response.text
    assert priya.get("/api/v1/requests").json()["requests"] == []


def test_the_close_button_closes_and_returns_to_the_request(priya: TestClient) -> None:
    request_id = ask(priya, ["tom@example.com"])
    page = priya.get(f"/requests/{request_id}")
    assert f'action="/requests/{request_id}/close"' in page.text
    response = priya.post(f"/requests/{request_id}/close", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/requests/{request_id}"
    after = priya.get(f"/requests/{request_id}")
    assert 'id="close-form"' not in after.text
    assert priya.get(f"/api/v1/requests/{request_id}").json()["status"] == "closed"
