"""Answers, and the batches in which anonymous answers are released."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from feedback.models.types import UTCDateTime, new_id, now


class Answer(SQLModel, table=True):
    """A reviewer's answer to one invitation; at most one per invitation."""

    __tablename__ = "answer"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    invitation_id: uuid.UUID = Field(foreign_key="invitation.id", unique=True, ondelete="CASCADE")
    request_id: uuid.UUID = Field(foreign_key="feedback_request.id", index=True, ondelete="CASCADE")
    rating: int | None = Field(default=None, ge=1, le=5)
    body: str = Field(max_length=2000)
    created_at: datetime = Field(default_factory=now, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=now, sa_type=UTCDateTime)
    # Anonymous requests only: the batch that released it, and its shuffled place there.
    release_batch_id: uuid.UUID | None = Field(
        default=None, foreign_key="release_batch.id", index=True
    )
    release_position: int | None = Field(default=None)


class ReleaseBatch(SQLModel, table=True):
    """A group of at least k anonymous answers shown to the requester together."""

    __tablename__ = "release_batch"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="feedback_request.id", index=True, ondelete="CASCADE")
    released_at: datetime = Field(default_factory=now, sa_type=UTCDateTime)
    size: int
