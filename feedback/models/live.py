"""The live-event outbox: written in the same transaction as the change it describes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from feedback.models.types import UTCDateTime, now


class LiveEvent(SQLModel, table=True):
    """One message for one person's live stream, numbered per recipient."""

    __tablename__ = "live_event"
    __table_args__ = (UniqueConstraint("recipient_id", "seq"),)

    # BIGINT on PostgreSQL; plain INTEGER on SQLite, where only that autoincrements.
    id: int | None = Field(
        default=None, primary_key=True, sa_type=BigInteger().with_variant(Integer(), "sqlite")
    )
    recipient_id: uuid.UUID = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    seq: int
    type: str = Field(max_length=40)
    request_id: uuid.UUID | None = Field(default=None, index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=now, sa_type=UTCDateTime)
