"""The OpenAPI document at /api/v1/openapi.json tells the truth about the running app.

Real responses from real scenarios are checked against the documented schema for their
route, method and status. The check is stricter than the document: an object may carry
no property the document does not name, so a field added to a view without reaching the
document fails here.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

import pytest
from openapi_spec_validator import validate
from sqlmodel import col, select
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

from feedback.db import Database
from feedback.live import service as live_service
from feedback.live.events import EVENT_TYPES
from feedback.models.mail import OutboxMail
from feedback.people import service as people_service
from tests.api.documented import Documented
from tests.factories import add_person, ask, log_in

SERVICE_PATHS = {"/healthz", "/readyz", "/metrics"}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
ORIGIN = {"origin": "http://testserver"}


@pytest.fixture
def api(client: TestClient) -> Documented:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return Documented(response.json())


# Scenario helpers


def reviewer_links(client: TestClient) -> dict[str, list[str]]:
    """Each recipient's link tokens, read from the outbox the way the mailer would."""
    app = client.app_state["app"]

    async def read() -> list[OutboxMail]:
        async with app.db.transaction(write=False) as session:
            return list(
                (await session.exec(select(OutboxMail).order_by(col(OutboxMail.created_at)))).all()
            )

    assert client.portal is not None
    tokens: dict[str, list[str]] = {}
    for mail in client.portal.call(read):
        if mail.template == "invitation" and mail.sealed_context:
            link = app.outbox.sealer.open(mail.sealed_context)["link"]
            tokens.setdefault(mail.to_email, []).append(link.rsplit("/r/", 1)[1])
    return tokens


def as_person(client: TestClient, email: str) -> None:
    client.delete("/api/v1/session", headers=ORIGIN)
    log_in(client, email)


@pytest.fixture
def team(client: TestClient) -> TestClient:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    add_person(client, "tom@example.com", name="Tom Becker")
    add_person(client, "ana@example.com", name="Ana Lima")
    add_person(client, "li@example.com", name="Li Wei")
    log_in(client, "priya@example.com")
    return client


# The document itself


def test_the_document_is_valid_openapi_3_1(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["session"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "feedback_session",
        "description": "Set by POST /api/v1/session.",
    }


def test_every_api_route_is_documented_with_its_methods_and_nothing_else(
    client: TestClient,
) -> None:
    served: dict[str, set[str]] = {}
    for route in client.app.routes:  # type: ignore[attr-defined]
        path = getattr(route, "path", "")
        if not (path.startswith("/api/v1/") or path in SERVICE_PATHS):
            continue
        if isinstance(route, WebSocketRoute):
            methods = {"GET"}  # documented as the GET that upgrades
        else:
            assert isinstance(route, Route)
            methods = set(route.methods or ()) - {"HEAD"}
        served.setdefault(path, set()).update(methods)

    document = client.get("/api/v1/openapi.json").json()
    documented = {
        path: {method.upper() for method in item if method in HTTP_METHODS}
        for path, item in document["paths"].items()
    }
    assert documented == served


def test_every_documented_error_status_uses_the_error_body(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            for status, response in operation["responses"].items():
                if int(status) < 400 or path in {"/api/v1/live", "/readyz"}:
                    continue
                if "$ref" in response:
                    response = document["components"]["responses"][response["$ref"].split("/")[-1]]
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


# Real responses against the document


def test_logging_in_and_out_matches_the_document(client: TestClient, api: Documented) -> None:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    assert api.check(client.get("/api/v1/me"), "/api/v1/me")["error"] == "unauthorized"

    wrong = client.post("/api/v1/session", json={"email": "priya@example.com", "password": "nope"})
    assert api.check(wrong, "/api/v1/session")["error"] == "unauthorized"

    log_in(client, "priya@example.com")
    me = api.check(client.get("/api/v1/me"), "/api/v1/me")
    assert (me["email"], me["role"], me["manager_id"]) == ("priya@example.com", "employee", None)

    out = client.delete("/api/v1/session", headers=ORIGIN)
    assert out.status_code == 204
    api.check(out, "/api/v1/session")
    assert client.get("/api/v1/me").status_code == 401


def test_health_directory_and_the_document_itself_match_the_document(
    team: TestClient, api: Documented
) -> None:
    assert api.check(team.get("/healthz"), "/healthz") == "ok"
    assert api.check(team.get("/readyz"), "/readyz")["status"] == "ready"
    assert "feedback" in api.check(team.get("/metrics"), "/metrics")
    found = api.check(team.get("/api/v1/people", params={"q": "li"}), "/api/v1/people")
    assert {p["email"] for p in found["people"]} == {"ana@example.com", "li@example.com"}
    api.check(team.get("/api/v1/openapi.json"), "/api/v1/openapi.json")


def test_a_named_request_and_its_answers_match_the_document(
    team: TestClient, api: Documented
) -> None:
    created = team.post(
        "/api/v1/requests",
        json={
            "question": "Was my release note clear?",
            "context": "The 2.3 notes",
            "tags": ["Writing"],
            "reviewers": ["tom@example.com", "buyer@client.example"],
            "due_at": "2099-01-01T17:00:00Z",
        },
    )
    assert created.status_code == 201
    request_id = api.check(created, "/api/v1/requests")["id"]
    listing = api.check(team.get("/api/v1/requests"), "/api/v1/requests")
    assert [r["id"] for r in listing["requests"]] == [request_id]

    # Tom answers from his inbox; the client outside the company through the mailed link.
    as_person(team, "tom@example.com")
    inbox = api.check(team.get("/api/v1/inbox"), "/api/v1/inbox")["invitations"]
    assert [i["question"] for i in inbox] == ["Was my release note clear?"]
    answered = team.put(
        f"/api/v1/inbox/{inbox[0]['invitation_id']}/response",
        json={"rating": 4, "body": "Clear, but long."},
    )
    assert answered.status_code == 201
    api.check(answered, "/api/v1/inbox/{id}/response")
    refused = team.post(f"/api/v1/inbox/{inbox[0]['invitation_id']}/decline", headers=ORIGIN)
    assert api.check(refused, "/api/v1/inbox/{id}/decline")["error"] == "conflict"
    team.delete("/api/v1/session", headers=ORIGIN)

    token = reviewer_links(team)["buyer@client.example"][0]
    shown = api.check(team.get(f"/api/v1/invitations/{token}"), "/api/v1/invitations/{token}")
    assert (shown["status"], shown["answer"]) == ("pending", None)
    key = {"idempotency-key": "3d5c1f0e-retry-me"}
    first = team.put(f"/api/v1/invitations/{token}/response", json={"body": "Good."}, headers=key)
    assert first.status_code == 201
    retried = team.put(f"/api/v1/invitations/{token}/response", json={"body": "Good."}, headers=key)
    assert retried.status_code == 201
    assert api.check(retried, "/api/v1/invitations/{token}/response") == first.json()
    reused = team.put(f"/api/v1/invitations/{token}/response", json={"body": "Other."}, headers=key)
    assert api.check(reused, "/api/v1/invitations/{token}/response")["field"] == "Idempotency-Key"
    second = team.put(
        f"/api/v1/invitations/{token}/response", json={"rating": 5, "body": "Very good."}
    )
    assert second.status_code == 200
    assert api.check(second, "/api/v1/invitations/{token}/response")["answer"]["rating"] == 5
    shown = api.check(team.get(f"/api/v1/invitations/{token}"), "/api/v1/invitations/{token}")
    assert shown["answer"]["body"] == "Very good."

    log_in(team, "priya@example.com")
    detail = api.check(team.get(f"/api/v1/requests/{request_id}"), "/api/v1/requests/{id}")
    assert [(r["reviewer"]["email"], r["rating"]) for r in detail["responses"]] == [
        ("tom@example.com", 4),
        ("buyer@client.example", 5),
    ]
    assert {i["email"]: i["status"] for i in detail["invitees"]} == {
        "tom@example.com": "answered",
        "buyer@client.example": "answered",
    }

    closed = team.post(f"/api/v1/requests/{request_id}/close", headers=ORIGIN)
    assert api.check(closed, "/api/v1/requests/{id}/close")["status"] == "closed"
    again = team.post(f"/api/v1/requests/{request_id}/close", headers=ORIGIN)
    assert api.check(again, "/api/v1/requests/{id}/close")["error"] == "conflict"
    gone = team.get(f"/api/v1/invitations/{token}")
    assert api.check(gone, "/api/v1/invitations/{token}")["error"] == "gone"
    late = team.put(f"/api/v1/invitations/{token}/response", json={"body": "Late."})
    assert api.check(late, "/api/v1/invitations/{token}/response")["error"] == "gone"


def test_an_anonymous_request_and_its_released_batch_match_the_document(
    team: TestClient, api: Documented
) -> None:
    reviewers = ["tom@example.com", "ana@example.com", "li@example.com", "max@client.example"]
    request_id = ask(team, reviewers, anonymous=True)
    links = reviewer_links(team)

    held = team.get(f"/api/v1/requests/{request_id}")
    assert api.check(held, "/api/v1/requests/{id}")["responses"] == []

    declined = team.post(f"/api/v1/invitations/{links['max@client.example'][0]}/decline")
    assert api.check(declined, "/api/v1/invitations/{token}/decline") == {"status": "declined"}
    for n, email in enumerate(reviewers[:3]):
        saved = team.put(
            f"/api/v1/invitations/{links[email][0]}/response",
            json={"body": f"Answer {n}", "rating": None if n == 0 else n + 2},
        )
        assert saved.status_code == 201

    detail = api.check(team.get(f"/api/v1/requests/{request_id}"), "/api/v1/requests/{id}")
    assert sorted(r["body"] for r in detail["responses"]) == ["Answer 0", "Answer 1", "Answer 2"]
    assert all(r["reviewer"] is None and r["created_at"] is None for r in detail["responses"])
    assert detail["invitees"] is None

    frozen = team.put(
        f"/api/v1/invitations/{links['tom@example.com'][0]}/response", json={"body": "Edit"}
    )
    assert api.check(frozen, "/api/v1/invitations/{token}/response")["error"] == "conflict"


def test_refusals_match_the_document(team: TestClient, api: Documented) -> None:
    invalid = team.post("/api/v1/requests", json={"question": "x" * 281, "reviewers": ["a@b.c"]})
    assert api.check(invalid, "/api/v1/requests")["field"] == "question"
    not_json = team.put("/api/v1/invitations/whatever/response", content=b"{nope")
    assert api.check(not_json, "/api/v1/invitations/{token}/response")["error"] == "invalid"

    missing = team.get(f"/api/v1/requests/{uuid.uuid4()}")
    assert api.check(missing, "/api/v1/requests/{id}")["error"] == "not_found"
    bad_token = team.get("/api/v1/invitations/not-a-real-token")
    assert api.check(bad_token, "/api/v1/invitations/{token}")["error"] == "not_found"
    not_mine = team.put(f"/api/v1/inbox/{uuid.uuid4()}/response", json={"body": "Hi"})
    assert api.check(not_mine, "/api/v1/inbox/{id}/response")["error"] == "not_found"

    cross_site = team.post(
        "/api/v1/requests",
        json={"question": "q", "reviewers": ["tom@example.com"]},
        headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert api.check(cross_site, "/api/v1/requests")["error"] == "forbidden"


# The live socket's messages


def last_seq(client: TestClient, email: str) -> int:
    db: Database = client.app_state["app"].db

    async def read() -> int:
        async with db.transaction(write=False) as session:
            found = await people_service.get_by_email(session, email)
            assert found is not None
            return await live_service.last_seq(session, person_id=found.id)

    assert client.portal is not None
    return client.portal.call(partial(read))


def replay(client: TestClient, email: str) -> list[dict[str, Any]]:
    """Every kept event of one person, as the socket replays it from ?after=0."""
    as_person(client, email)
    count = last_seq(client, email)
    with client.websocket_connect("/api/v1/live?after=0", headers=dict(ORIGIN)) as socket:
        return [socket.receive_json() for _ in range(count)]


def test_every_live_event_type_matches_its_documented_message(
    team: TestClient, api: Documented
) -> None:
    named = ask(team, ["tom@example.com", "buyer@client.example"])
    anonymous = ask(team, ["tom@example.com", "ana@example.com", "li@example.com"], anonymous=True)
    links = reviewer_links(team)
    buyer = links["buyer@client.example"][0]
    team.put(f"/api/v1/invitations/{buyer}/response", json={"rating": 3, "body": "OK"})
    team.put(f"/api/v1/invitations/{buyer}/response", json={"body": "Fine, no rating"})
    team.post(f"/api/v1/invitations/{links['tom@example.com'][0]}/decline")
    for rating, email in enumerate(["tom@example.com", "ana@example.com", "li@example.com"]):
        token = links[email][-1]
        answer = {"body": f"From {email}", "rating": rating or None}
        assert team.put(f"/api/v1/invitations/{token}/response", json=answer).status_code == 201
    team.post(f"/api/v1/requests/{named}/close", headers=ORIGIN)

    messages = replay(team, "priya@example.com") + replay(team, "tom@example.com")
    for message in messages:
        # The type's own schema first: its errors say which field is wrong.
        api.validate(message, api.component(live_type_schema(api, message["type"])))
        api.validate(message, api.component("LiveMessage"))
    assert {m["type"] for m in messages} == EVENT_TYPES
    released = next(m for m in messages if m["type"] == "responses.released")
    assert released["request_id"] == anonymous
    assert len(released["data"]["responses"]) == 3


def live_type_schema(api: Documented, event_type: str) -> str:
    mapping = api.document["components"]["schemas"]["LiveMessage"]["discriminator"]["mapping"]
    return str(mapping[event_type]).split("/")[-1]


def test_a_resync_message_matches_the_document(team: TestClient, api: Documented) -> None:
    with team.websocket_connect("/api/v1/live?after=999", headers=dict(ORIGIN)) as socket:
        message = socket.receive_json()
    assert message == {"type": "resync", "seq": 0}
    api.validate(message, api.component("LiveMessage"))
