"""Logging in and out: server-side sessions behind an opaque cookie."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from feedback import clock
from feedback.crypto import hash_token, new_token
from feedback.errors import Unauthorized
from feedback.models.people import LoginSession, Person
from feedback.people import service as people


async def log_in(
    session: AsyncSession, *, email: str, password: str, days: int
) -> tuple[str, Person]:
    """Check credentials and open a session. Returns the cookie value and the person."""
    person = await people.get_by_email(session, email)
    if person is None or not person.active:
        people.burn_password_check(password)
        raise Unauthorized("The email or password is wrong.")
    if not people.password_matches(person, password):
        raise Unauthorized("The email or password is wrong.")
    token = new_token()
    session.add(
        LoginSession(
            id_hash=hash_token(token),
            person_id=person.id,
            expires_at=clock.now() + timedelta(days=days),
        )
    )
    await session.flush()
    return token, person


async def log_out(session: AsyncSession, *, token: str) -> None:
    await session.exec(delete(LoginSession).where(col(LoginSession.id_hash) == hash_token(token)))


async def person_for_session(session: AsyncSession, *, token: str) -> Person | None:
    result = await session.exec(
        select(Person)
        .join(LoginSession, col(LoginSession.person_id) == col(Person.id))
        .where(LoginSession.id_hash == hash_token(token))
        .where(col(LoginSession.expires_at) > clock.now())
        .where(col(Person.active).is_(True))
    )
    return result.first()
