"""Outgoing mail, written in the same transaction as the change that sends it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Text
from sqlmodel import Field, SQLModel

from feedback.models.types import UTCDateTime, new_id, now


class OutboxMail(SQLModel, table=True):
    """A message waiting for (or done with) delivery by the background sender."""

    __tablename__ = "outbox_mail"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    to_email: str = Field(max_length=254)
    template: str = Field(max_length=80)
    context: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # Context that must not sit in the database in clear (a reviewer's link), encrypted
    # with a key derived from SECRET_KEY and erased once the message is sent.
    sealed_context: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=now, sa_type=UTCDateTime, index=True)
    next_attempt_at: datetime = Field(default_factory=now, sa_type=UTCDateTime, index=True)
    attempts: int = Field(default=0)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    failed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
