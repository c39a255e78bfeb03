"""Remembered answer submissions, so a client retrying with the same Idempotency-Key gets
the first outcome back instead of writing again."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from feedback.models.types import UTCDateTime, now


class IdempotencyKey(SQLModel, table=True):
    """One client-chosen key on one invitation, and the response its first use produced.

    Written in the same transaction as the answer it describes: a crash keeps both or
    neither, so a retry either replays or writes for the first time.
    """

    __tablename__ = "idempotency_key"

    # Scoped per invitation: the same key on another reviewer's link is another key.
    invitation_id: uuid.UUID = Field(
        foreign_key="invitation.id", primary_key=True, ondelete="CASCADE"
    )
    key: str = Field(primary_key=True, max_length=255)
    # SHA-256 of the validated body, so "same body" ignores key order and whitespace.
    fingerprint: str = Field(max_length=64)
    status_code: int
    response: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=now, sa_type=UTCDateTime)
