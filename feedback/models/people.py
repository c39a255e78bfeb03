"""People and their login sessions."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from feedback.models.types import UTCDateTime, new_id, now


class Role(StrEnum):
    employee = "employee"
    manager = "manager"
    hr = "hr"
    admin = "admin"


class Person(SQLModel, table=True):
    """Someone in the directory: can log in, ask and answer."""

    __tablename__ = "person"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    name: str = Field(max_length=200)
    role: Role = Field(default=Role.employee, max_length=16)
    manager_id: uuid.UUID | None = Field(default=None, foreign_key="person.id", index=True)
    password_hash: str | None = Field(default=None, max_length=200)
    active: bool = Field(default=True)
    # Last live-event sequence number handed out for this person; events are numbered
    # per recipient so a client can resume with exactly what it missed.
    last_event_seq: int = Field(default=0)
    created_at: datetime = Field(default_factory=now, sa_type=UTCDateTime)


class LoginSession(SQLModel, table=True):
    """A server-side session; the cookie holds only a random id whose hash is stored here."""

    __tablename__ = "login_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    person_id: uuid.UUID = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=now, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
