"""Who is calling: the person behind the session cookie, looked up once per request."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from feedback.accounts import service
from feedback.errors import Forbidden, Unauthorized
from feedback.models.people import Person, Role
from feedback.web import state

COOKIE = "feedback_session"


async def current_person(conn: HTTPConnection) -> Person | None:
    if "person" in conn.state._state:
        return conn.state._state["person"]  # type: ignore[no-any-return]
    token = conn.cookies.get(COOKIE)
    person = None
    if token:
        async with state(conn).db.transaction(write=False) as session:
            person = await service.person_for_session(session, token=token)
    conn.state.person = person
    return person


def forget_person(conn: HTTPConnection) -> None:
    """Drop the cached row (a long-lived websocket needs only the id it already took)."""
    conn.state._state.pop("person", None)


async def require_person(conn: HTTPConnection) -> Person:
    person = await current_person(conn)
    if person is None:
        raise Unauthorized("Log in first.")
    return person


async def require_role(conn: HTTPConnection, *roles: Role) -> Person:
    person = await require_person(conn)
    if person.role not in roles:
        raise Forbidden("Your role does not allow this.")
    return person
