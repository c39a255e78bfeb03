"""The directory: creating, finding and listing people."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from feedback.errors import Conflict, Invalid
from feedback.models.people import Person, Role

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 8


def normalise_email(value: str, *, field: str = "email") -> str:
    """Validate an address's syntax (no DNS lookup) and return it lower-cased."""
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise Invalid(f"{value!r} is not a valid email address: {exc}", field=field) from None


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            f"The password must have at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )
    return _hasher.hash(password)


def password_matches(person: Person, password: str) -> bool:
    if not person.password_hash:
        return False
    try:
        return _hasher.verify(person.password_hash, password)
    except VerificationError:
        return False


# Verified against when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def burn_password_check(password: str) -> None:
    with contextlib.suppress(VerificationError):
        _hasher.verify(_DUMMY_HASH, password)


async def get_by_email(session: AsyncSession, email: str) -> Person | None:
    result = await session.exec(select(Person).where(Person.email == email.strip().lower()))
    return result.first()


async def get(session: AsyncSession, person_id: uuid.UUID) -> Person | None:
    return await session.get(Person, person_id)


async def add_person(
    session: AsyncSession,
    *,
    email: str,
    name: str,
    role: Role = Role.employee,
    manager_email: str | None = None,
    password: str | None = None,
) -> Person:
    email = normalise_email(email)
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid("The name must have 1 to 200 characters.", field="name")
    if await get_by_email(session, email) is not None:
        raise Conflict(f"A person with the email {email} already exists.", field="email")
    manager_id = None
    if manager_email is not None:
        manager = await get_by_email(session, manager_email)
        if manager is None:
            raise Invalid(f"No person has the manager email {manager_email}.", field="manager")
        manager_id = manager.id
    person = Person(
        email=email,
        name=name,
        role=role,
        manager_id=manager_id,
        password_hash=hash_password(password) if password is not None else None,
    )
    session.add(person)
    await session.flush()
    return person


async def list_people(session: AsyncSession) -> Sequence[Person]:
    result = await session.exec(select(Person).order_by(col(Person.name)))
    return result.all()


async def search_directory(
    session: AsyncSession, *, query: str, limit: int = 10
) -> Sequence[Person]:
    pattern = f"%{query.strip().lower()}%"
    result = await session.exec(
        select(Person)
        .where(col(Person.active).is_(True))
        .where(or_(col(Person.email).like(pattern), func.lower(Person.name).like(pattern)))
        .order_by(col(Person.name))
        .limit(limit)
    )
    return result.all()
