"""What the API accepts and returns about feedback requests."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from feedback.errors import Invalid
from feedback.people.service import normalise_email

MAX_REVIEWERS = 20
MAX_TAGS = 10


class RequestCreate(BaseModel):
    """Body of `POST /api/v1/requests`."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=280)
    context: str | None = Field(default=None, max_length=1000)
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    reviewers: list[str] = Field(min_length=1, max_length=MAX_REVIEWERS)
    anonymous: bool = False
    due_at: AwareDatetime | None = None

    @field_validator("question")
    @classmethod
    def _question(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("context")
    @classmethod
    def _context(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        tags: list[str] = []
        for raw in value:
            tag = " ".join(raw.split()).lower()
            if not 1 <= len(tag) <= 40:
                raise ValueError("each tag must have 1 to 40 characters")
            if tag not in tags:
                tags.append(tag)
        return tags

    @field_validator("reviewers")
    @classmethod
    def _reviewers(cls, value: list[str]) -> list[str]:
        emails: list[str] = []
        for raw in value:
            try:
                email = normalise_email(raw, field="reviewers")
            except Invalid as exc:
                raise ValueError(exc.detail) from None
            if email not in emails:
                emails.append(email)
        return emails


class ReviewerPublic(BaseModel):
    """Who wrote a named answer."""

    name: str | None
    email: str


class ResponsePublic(BaseModel):
    """An answer as its requester sees it. Anonymous ones carry no identity or own time."""

    id: uuid.UUID | None = None
    body: str
    rating: int | None
    reviewer: ReviewerPublic | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    released_at: datetime | None = None


class InviteePublic(BaseModel):
    """Per-reviewer status, shown on named requests only."""

    email: str
    name: str | None
    status: str


class Progress(BaseModel):
    """How far a request has got. `received` counts answers, released or not."""

    invited: int
    received: int
    declined: int | None = None
    released: int | None = None
    withheld: int | None = None


class RequestSummary(BaseModel):
    """A request in the requester's list."""

    id: uuid.UUID
    question: str
    context: str | None
    tags: list[str]
    anonymous: bool
    anonymity_k: int | None
    status: str
    created_at: datetime
    due_at: datetime | None
    closed_at: datetime | None
    progress: Progress


class RequestDetail(RequestSummary):
    """A request with what its requester may see of the answers."""

    responses: list[ResponsePublic]
    invitees: list[InviteePublic] | None
    notice: str | None = Field(
        default=None, description="Why some answers are not shown, on anonymous requests."
    )


class RequestCreated(BaseModel):
    """Answer to a successful `POST /api/v1/requests`."""

    id: uuid.UUID
    status: str
    reviewers: int
