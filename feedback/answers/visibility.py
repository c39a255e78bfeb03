"""What a requester may see of the answers. Every view (page, API, socket, mail, export)
goes through here, so the anonymity rules live in one place.

Named requests: every answer, with its reviewer and times.
Anonymous requests: only answers in a released batch, in their shuffled batch order, with
no identity and no time but the batch's release time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from feedback.models.answers import Answer, ReleaseBatch
from feedback.models.people import Person
from feedback.models.requests import FeedbackRequest, Invitation
from feedback.requests.schemas import InviteePublic, ResponsePublic, ReviewerPublic


class AnswerFields(Protocol):
    """What a named answer shows: a stored `Answer`, or one just written as plain SQL."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def body(self) -> str: ...
    @property
    def rating(self) -> int | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


def named_response(
    answer: AnswerFields, invitation: Invitation, reviewer: Person | None
) -> ResponsePublic:
    return ResponsePublic(
        id=answer.id,
        body=answer.body,
        rating=answer.rating,
        reviewer=ReviewerPublic(name=reviewer.name if reviewer else None, email=invitation.email),
        created_at=answer.created_at,
        updated_at=answer.updated_at,
    )


def anonymous_response(answer: Answer, batch: ReleaseBatch) -> ResponsePublic:
    return ResponsePublic(body=answer.body, rating=answer.rating, released_at=batch.released_at)


async def released_counts(
    session: AsyncSession, *, request_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """How many answers of each request a release has shown, in one query; requests with
    none are left out."""
    if not request_ids:
        return {}
    rows = await session.exec(
        select(Answer.request_id, func.count())
        .where(col(Answer.request_id).in_(request_ids))
        .where(col(Answer.release_batch_id).is_not(None))
        .group_by(col(Answer.request_id))
    )
    return {request_id: int(count) for request_id, count in rows}


async def visible_responses(
    session: AsyncSession, *, request: FeedbackRequest
) -> list[ResponsePublic]:
    if request.anonymous:
        rows = await session.exec(
            select(Answer, ReleaseBatch)
            .join(ReleaseBatch, col(ReleaseBatch.id) == col(Answer.release_batch_id))
            .where(Answer.request_id == request.id)
            .order_by(col(ReleaseBatch.released_at), col(Answer.release_position))
        )
        return [anonymous_response(answer, batch) for answer, batch in rows]
    named = await session.exec(
        select(Answer, Invitation, Person)
        .join(Invitation, col(Invitation.id) == col(Answer.invitation_id))
        .join(Person, col(Person.id) == col(Invitation.reviewer_id), isouter=True)
        .where(Answer.request_id == request.id)
        .order_by(col(Answer.created_at))
    )
    return [named_response(answer, invitation, person) for answer, invitation, person in named]


async def invitee_statuses(
    session: AsyncSession, *, request: FeedbackRequest
) -> list[InviteePublic]:
    if request.anonymous:
        raise ValueError("anonymous requests show no per-invitee status")
    rows = await session.exec(
        select(Invitation, Person)
        .join(Person, col(Person.id) == col(Invitation.reviewer_id), isouter=True)
        .where(Invitation.request_id == request.id)
        .order_by(col(Invitation.email))
    )
    return [
        InviteePublic(
            email=inv.email, name=person.name if person else None, status=inv.status.value
        )
        for inv, person in rows
    ]
