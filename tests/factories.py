"""Plain functions that make test data through the real services."""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.testclient import TestClient

from feedback.db import Database
from feedback.models.people import Person, Role
from feedback.people import service as people

PASSWORD = "correct-horse-battery"


async def person(
    db: Database,
    email: str,
    *,
    name: str | None = None,
    role: Role = Role.employee,
    manager_email: str | None = None,
) -> Person:
    async with db.transaction() as session:
        return await people.add_person(
            session,
            email=email,
            name=name or email.split("@")[0].title(),
            role=role,
            manager_email=manager_email,
            password=PASSWORD,
        )


def add_person(client: TestClient, email: str, **kwargs: Any) -> Person:
    """Add a person through the app's own database (sync tests)."""
    db: Database = client.app_state["app"].db
    assert client.portal is not None, "use the client inside its `with` block"
    return client.portal.call(partial(person, db, email, **kwargs))


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> None:
    response = client.post("/api/v1/session", json={"email": email, "password": password})
    assert response.status_code == 200, response.text


def ask(client: TestClient, reviewers: list[str], **fields: Any) -> str:
    """Create a request as the logged-in person; returns its id."""
    body = {"question": "How did my demo go?", "reviewers": reviewers, **fields}
    response = client.post("/api/v1/requests", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
