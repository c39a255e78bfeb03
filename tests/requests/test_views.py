"""The requests API: asking, listing and reading one's own requests."""

from __future__ import annotations

import uuid

import pytest
from starlette.testclient import TestClient

from tests.factories import add_person, ask, log_in


@pytest.fixture
def priya(client: TestClient) -> TestClient:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    add_person(client, "tom@example.com", name="Tom Becker")
    log_in(client, "priya@example.com")
    return client


def test_requester_creates_request_and_sees_it_in_her_list(priya: TestClient) -> None:
    request_id = ask(priya, ["tom@example.com", "buyer@client.example"], tags=["Presenting"])
    assert uuid.UUID(request_id).version == 4

    listing = priya.get("/api/v1/requests").json()["requests"]
    assert [r["id"] for r in listing] == [request_id]
    assert listing[0]["tags"] == ["presenting"]
    assert listing[0]["progress"] == {
        "invited": 2,
        "received": 0,
        "declined": 0,
        "released": None,
        "withheld": None,
    }


def test_someone_else_cannot_read_my_request(priya: TestClient) -> None:
    request_id = ask(priya, ["tom@example.com"])
    priya.delete("/api/v1/session")
    log_in(priya, "tom@example.com")
    assert priya.get(f"/api/v1/requests/{request_id}").status_code == 404


def test_requests_need_a_session(client: TestClient) -> None:
    response = client.post("/api/v1/requests", json={"question": "q", "reviewers": ["a@b.example"]})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"question": "x" * 281, "reviewers": ["a@b.example"]}, "question"),
        ({"question": "   ", "reviewers": ["a@b.example"]}, "question"),
        ({"reviewers": ["a@b.example"]}, "question"),
        ({"question": "q", "context": "x" * 1001, "reviewers": ["a@b.example"]}, "context"),
        ({"question": "q", "tags": ["x" * 41], "reviewers": ["a@b.example"]}, "tags"),
        (
            {"question": "q", "tags": [f"t{i}" for i in range(11)], "reviewers": ["a@b.example"]},
            "tags",
        ),
        ({"question": "q", "reviewers": []}, "reviewers"),
        ({"question": "q", "reviewers": [f"r{i}@b.example" for i in range(21)]}, "reviewers"),
        ({"question": "q", "reviewers": ["not-an-email"]}, "reviewers"),
        ({"question": "q", "reviewers": "a@b.example"}, "reviewers"),
        ({"question": "q", "reviewers": ["priya@example.com"]}, "reviewers"),
        ({"question": "q", "reviewers": ["a@b.example"], "anonymous": "yes please"}, "anonymous"),
        (
            {"question": "q", "reviewers": ["a@b.example", "c@d.example"], "anonymous": True},
            "reviewers",
        ),
        ({"question": "q", "reviewers": ["a@b.example"], "due_at": "tomorrow"}, "due_at"),
        (
            {"question": "q", "reviewers": ["a@b.example"], "due_at": "2001-01-01T00:00:00Z"},
            "due_at",
        ),
        (
            {"question": "q", "reviewers": ["a@b.example"], "due_at": "2099-01-01T00:00:00"},
            "due_at",
        ),
        ({"question": "q", "reviewers": ["a@b.example"], "colour": "blue"}, "colour"),
    ],
)
def test_bad_request_fields_get_422_naming_the_field_and_create_nothing(
    priya: TestClient, body: dict[str, object], field: str
) -> None:
    response = priya.post("/api/v1/requests", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid"
    assert response.json()["field"].split(".")[0] == field
    assert priya.get("/api/v1/requests").json()["requests"] == []


def test_malformed_json_gets_422(priya: TestClient) -> None:
    response = priya.post(
        "/api/v1/requests", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "body"
