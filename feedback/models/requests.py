"""Feedback requests, their tags and the invitations sent to reviewers."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from feedback.models.types import UTCDateTime, new_id, now


class RequestStatus(StrEnum):
    open = "open"
    closed = "closed"


class InvitationStatus(StrEnum):
    pending = "pending"
    answered = "answered"
    declined = "declined"


class FeedbackRequest(SQLModel, table=True):
    """A short question someone asks right after a task."""

    __tablename__ = "feedback_request"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    requester_id: uuid.UUID = Field(foreign_key="person.id", index=True)
    question: str = Field(max_length=280)
    context: str | None = Field(default=None, max_length=1000)
    anonymous: bool = Field(default=False)
    # The anonymity threshold in force when the request was made; never changes after.
    anonymity_k: int = Field(default=3)
    status: RequestStatus = Field(default=RequestStatus.open, max_length=16)
    created_at: datetime = Field(default_factory=now, sa_type=UTCDateTime, index=True)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RequestTag(SQLModel, table=True):
    """A tag on a request, one row each, so the year-round record can group by skill."""

    __tablename__ = "request_tag"

    request_id: uuid.UUID = Field(
        foreign_key="feedback_request.id", primary_key=True, ondelete="CASCADE"
    )
    tag: str = Field(primary_key=True, max_length=40, index=True)


class Invitation(SQLModel, table=True):
    """One reviewer asked on one request, reached through a personal link."""

    __tablename__ = "invitation"
    __table_args__ = (UniqueConstraint("request_id", "email"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="feedback_request.id", index=True, ondelete="CASCADE")
    email: str = Field(max_length=254, index=True)
    # Set when the reviewer is in the directory, so the invitation shows in their inbox.
    reviewer_id: uuid.UUID | None = Field(default=None, foreign_key="person.id", index=True)
    # SHA-256 of the link's token; the token itself is never stored.
    token_hash: str = Field(max_length=64, unique=True)
    status: InvitationStatus = Field(default=InvitationStatus.pending, max_length=16)
    created_at: datetime = Field(default_factory=now, sa_type=UTCDateTime)
    declined_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
