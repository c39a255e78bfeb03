"""What reviewers send and see."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator


class AnswerWrite(BaseModel):
    """Body of `PUT .../response`: an optional 1-5 rating and a text answer."""

    model_config = ConfigDict(extra="forbid")

    rating: int | None = Field(default=None, ge=1, le=5, strict=True)
    body: str = Field(min_length=1, max_length=2000)

    @field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value


class MyAnswer(BaseModel):
    """The reviewer's own answer, as they can still edit it."""

    rating: int | None
    body: str
    updated_at: datetime
    released: bool = Field(description="Anonymous requests: already shown in a batch, so frozen.")


class Requester(BaseModel):
    name: str
    email: str


class InvitationPublic(BaseModel):
    """What a reviewer's link (or inbox entry) shows."""

    invitation_id: uuid.UUID
    request_id: uuid.UUID
    requester: Requester
    question: str
    context: str | None
    tags: list[str]
    anonymous: bool
    anonymity_k: int | None = Field(
        description=(
            "On an anonymous request, the smallest group its answers are shown in "
            "(never below 3); null on a named request"
        )
    )
    status: str = Field(description="pending, answered or declined")
    request_open: bool
    due_at: datetime | None
    answer: MyAnswer | None


class AnswerSaved(BaseModel):
    """Answer to a saved response."""

    status: str
    answer: MyAnswer


class Declined(BaseModel):
    status: str
