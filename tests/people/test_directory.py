"""The directory: who exists, and the reviewer autocomplete that searches it."""

from __future__ import annotations

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from feedback.db import Database
from feedback.errors import Conflict, Invalid
from feedback.models.people import Person
from tests.factories import add_person, log_in, person


@pytest.fixture
def directory(client: TestClient) -> TestClient:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    add_person(client, "tom.becker@example.com", name="Tom Becker")
    add_person(client, "mei@example.com", name="Mei Chen")
    log_in(client, "priya@example.com")
    return client


def _search(client: TestClient, q: str) -> list[dict[str, str]]:
    response = client.get("/api/v1/people", params={"q": q})
    assert response.status_code == 200
    return response.json()["people"]  # type: ignore[no-any-return]


def test_search_finds_colleagues_by_name_or_email_ignoring_case(directory: TestClient) -> None:
    assert _search(directory, "BECK") == [{"email": "tom.becker@example.com", "name": "Tom Becker"}]
    assert _search(directory, "mei@") == [{"email": "mei@example.com", "name": "Mei Chen"}]
    assert [p["name"] for p in _search(directory, "example.com")] == [
        "Mei Chen",
        "Priya Natarajan",
        "Tom Becker",
    ]
    assert _search(directory, "nobody") == []


def test_search_shows_only_name_and_email(directory: TestClient) -> None:
    [entry] = _search(directory, "Tom")
    assert set(entry) == {"email", "name"}


def test_search_skips_people_who_left(directory: TestClient) -> None:
    db: Database = directory.app_state["app"].db

    async def deactivate() -> None:
        async with db.transaction() as session:
            tom = (
                await session.exec(select(Person).where(Person.email == "tom.becker@example.com"))
            ).one()
            tom.active = False
            session.add(tom)

    assert directory.portal is not None
    directory.portal.call(deactivate)
    assert _search(directory, "Tom") == []
    # And they can no longer log in.
    directory.cookies.clear()
    response = directory.post(
        "/api/v1/session",
        json={"email": "tom.becker@example.com", "password": "correct-horse-battery"},
    )
    assert response.status_code == 401


def test_search_needs_a_session(client: TestClient) -> None:
    assert client.get("/api/v1/people", params={"q": "a"}).status_code == 401


async def test_adding_a_person_normalises_the_email_and_links_the_manager(db: Database) -> None:
    sam = await person(db, "Sam@Example.COM", name="Sam Okafor")
    priya = await person(db, " priya@example.com ", manager_email="SAM@example.com")
    assert sam.email == "sam@example.com"
    assert priya.email == "priya@example.com"
    assert priya.manager_id == sam.id


@pytest.mark.parametrize(
    ("email", "kwargs", "error", "field"),
    [
        ("not-an-email", {}, Invalid, "email"),
        ("x@example.com", {"name": "   "}, Invalid, "name"),
        ("x@example.com", {"name": "n" * 201}, Invalid, "name"),
        ("x@example.com", {"manager_email": "ghost@example.com"}, Invalid, "manager"),
        ("taken@example.com", {}, Conflict, "email"),
    ],
)
async def test_bad_people_are_refused_naming_the_field(
    db: Database, email: str, kwargs: dict[str, str], error: type[Exception], field: str
) -> None:
    await person(db, "taken@example.com")
    with pytest.raises(error) as refused:
        await person(db, email, **kwargs)  # type: ignore[arg-type]
    assert refused.value.field == field  # type: ignore[attr-defined]
    async with db.transaction(write=False) as session:
        assert len((await session.exec(select(Person))).all()) == 1
