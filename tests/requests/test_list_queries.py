"""Lists cost the same few queries however long they are: no query per item.

An HR-sized inbox or "my requests" list would otherwise run hundreds of queries per page
load. Each test counts the SQL statements one list request runs with one item and with
several, and checks that the batched figures match what each item's own page says.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from starlette.testclient import TestClient

from tests.answers.links import ask_with_links, without_session
from tests.factories import add_person, ask, log_in

OUTSIDE = [f"outside{n}@client.example" for n in range(1, 5)]


@contextmanager
def counting(client: TestClient) -> Iterator[list[str]]:
    """The SQL statements the app runs inside the block, on any of its engines."""
    db = client.app_state["app"].db
    engines = {id(e): e.sync_engine for e in (db.read_engine, db.write_engine)}.values()
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def _queries(client: TestClient, path: str) -> tuple[int, Any]:
    with counting(client) as statements:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return len(statements), response.json()


def test_my_requests_list_runs_the_same_queries_for_one_request_or_many(
    client: TestClient,
) -> None:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    log_in(client, "priya@example.com")
    anonymous, anonymous_tokens = ask_with_links(client, OUTSIDE, anonymous=True)
    one, listed = _queries(client, "/api/v1/requests")
    assert len(listed["requests"]) == 1

    # A named request with an answer and a decline, one with nothing yet, and a released
    # group plus one more held on the anonymous one, so every kind of count shows up.
    named, tokens = ask_with_links(client, OUTSIDE[:2], tags=["demo", "sales"])
    ask(client, [OUTSIDE[0]], tags=["sales"])
    with without_session(client):
        client.put(f"/api/v1/invitations/{tokens[OUTSIDE[0]]}/response", json={"body": "Good"})
        client.post(f"/api/v1/invitations/{tokens[OUTSIDE[1]]}/decline")
        for email in OUTSIDE:
            reply = client.put(
                f"/api/v1/invitations/{anonymous_tokens[email]}/response",
                json={"body": f"Held or shown: {email}"},
            )
            assert reply.status_code == 201
    many, listed = _queries(client, "/api/v1/requests")

    assert len(listed["requests"]) == 3
    assert many == one
    by_id = {item["id"]: item for item in listed["requests"]}
    assert by_id[named]["progress"] == {
        "invited": 2,
        "received": 1,
        "declined": 1,
        "released": None,
        "withheld": None,
    }
    assert by_id[anonymous]["progress"] == {
        "invited": 4,
        "received": 4,
        "declined": None,
        "released": 3,
        "withheld": None,
    }
    assert by_id[named]["tags"] == ["demo", "sales"]
    for request_id, item in by_id.items():
        detail = client.get(f"/api/v1/requests/{request_id}").json()
        assert item["progress"] == detail["progress"]
        assert item["tags"] == detail["tags"]


def test_the_inbox_runs_the_same_queries_for_one_invitation_or_many(client: TestClient) -> None:
    for email, name in [
        ("tom@example.com", "Tom Becker"),
        ("priya@example.com", "Priya Natarajan"),
        ("mei@example.com", "Mei Chen"),
    ]:
        add_person(client, email, name=name)
    log_in(client, "priya@example.com")
    first = ask(client, ["tom@example.com"], question="First?", tags=["design"])
    client.cookies.clear()
    log_in(client, "tom@example.com")
    one, inbox = _queries(client, "/api/v1/inbox")
    assert [item["request_id"] for item in inbox["invitations"]] == [first]

    client.cookies.clear()
    log_in(client, "mei@example.com")
    second = ask(client, ["tom@example.com"], question="Second?", tags=["launch", "sales"])
    third = ask(client, ["tom@example.com"], question="Third?", anonymous=False)
    closed = ask(client, ["tom@example.com"], question="Closed?")
    assert client.post(f"/api/v1/requests/{closed}/close").status_code == 200
    client.cookies.clear()
    log_in(client, "tom@example.com")
    invitations = client.get("/api/v1/inbox").json()["invitations"]
    [mine] = [i for i in invitations if i["request_id"] == second]
    answered = client.put(
        f"/api/v1/inbox/{mine['invitation_id']}/response", json={"rating": 5, "body": "Crisp."}
    )
    assert answered.status_code == 201
    many, inbox = _queries(client, "/api/v1/inbox")

    assert many == one
    items = inbox["invitations"]
    # Open requests only, newest first, each with its own requester, tags and answer.
    assert [i["request_id"] for i in items] == [third, second, first]
    assert [i["requester"]["name"] for i in items] == ["Mei Chen", "Mei Chen", "Priya Natarajan"]
    assert [i["tags"] for i in items] == [[], ["launch", "sales"], ["design"]]
    assert [i["answer"] and i["answer"]["body"] for i in items] == [None, "Crisp.", None]
    assert [i["status"] for i in items] == ["pending", "answered", "pending"]
