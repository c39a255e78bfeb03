"""Asking for feedback: creating, listing, showing and closing requests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from feedback import clock
from feedback.answers import visibility
from feedback.crypto import hash_token, new_token
from feedback.errors import Conflict, Forbidden, Invalid, NotFound
from feedback.live.events import record_event
from feedback.mail.outbox import Outbox
from feedback.models.people import Person
from feedback.models.requests import (
    FeedbackRequest,
    Invitation,
    InvitationStatus,
    RequestStatus,
    RequestTag,
)
from feedback.requests.schemas import Progress, RequestCreate, RequestDetail, RequestSummary


def is_open(request: FeedbackRequest, *, now: datetime | None = None) -> bool:
    """Open means not closed and not past its due date (the scheduler closes those later)."""
    if request.status != RequestStatus.open:
        return False
    return request.due_at is None or request.due_at > (now or clock.now())


async def create_request(
    session: AsyncSession,
    *,
    requester: Person,
    data: RequestCreate,
    anonymity_k: int,
    outbox: Outbox,
) -> tuple[FeedbackRequest, list[Invitation]]:
    """Create a request, one invitation per reviewer, their mails and live events."""
    if requester.email in data.reviewers:
        raise Invalid("You cannot ask yourself for feedback.", field="reviewers")
    if data.anonymous and len(data.reviewers) < anonymity_k:
        raise Invalid(
            f"An anonymous request needs at least {anonymity_k} reviewers: answers are only "
            f"shown in groups of {anonymity_k} or more.",
            field="reviewers",
        )
    if data.due_at is not None and data.due_at <= clock.now():
        raise Invalid("The due date must be in the future.", field="due_at")

    request = FeedbackRequest(
        requester_id=requester.id,
        question=data.question,
        context=data.context,
        anonymous=data.anonymous,
        anonymity_k=anonymity_k,
        due_at=data.due_at,
    )
    session.add(request)
    await session.flush()
    for tag in data.tags:
        session.add(RequestTag(request_id=request.id, tag=tag))

    directory = {
        p.email: p
        for p in (await session.exec(select(Person).where(col(Person.email).in_(data.reviewers))))
    }
    invitations: list[Invitation] = []
    for email in data.reviewers:
        token = new_token()
        reviewer = directory.get(email)
        invitation = Invitation(
            request_id=request.id,
            email=email,
            reviewer_id=reviewer.id if reviewer and reviewer.active else None,
            token_hash=hash_token(token),
        )
        session.add(invitation)
        invitations.append(invitation)
        await outbox.enqueue(
            session,
            to=email,
            template="invitation",
            context={
                "requester_name": requester.name,
                "requester_email": requester.email,
                "reviewer_name": reviewer.name if reviewer else None,
                "question": request.question,
                "context": request.context,
                "anonymous": request.anonymous,
                "anonymity_k": request.anonymity_k,
                "due_at": request.due_at.isoformat() if request.due_at else None,
            },
            sealed={"link": f"{outbox.base_url}/r/{token}"},
        )
    await session.flush()

    summary = await summarise(session, request, tags=data.tags)
    await record_event(
        session,
        recipient_id=requester.id,
        type="request.created",
        request_id=request.id,
        data={"request": summary.model_dump(mode="json")},
    )
    for invitation in invitations:
        if invitation.reviewer_id is not None:
            await record_event(
                session,
                recipient_id=invitation.reviewer_id,
                type="invitation.created",
                request_id=request.id,
                data={"invitation": inbox_item(invitation, request, requester, tags=data.tags)},
            )
    return request, invitations


def inbox_item(
    invitation: Invitation,
    request: FeedbackRequest,
    requester: Person,
    *,
    tags: Sequence[str],
    answer: dict[str, object] | None = None,
) -> dict[str, object]:
    """An invitation as the reviewer's inbox shows it (JSON-ready)."""
    return {
        "invitation_id": str(invitation.id),
        "request_id": str(request.id),
        "requester": {"name": requester.name, "email": requester.email},
        "question": request.question,
        "context": request.context,
        "tags": list(tags),
        "anonymous": request.anonymous,
        "status": invitation.status.value,
        "created_at": request.created_at.isoformat(),
        "due_at": request.due_at.isoformat() if request.due_at else None,
        "answer": answer,
    }


async def tags_of(
    session: AsyncSession, request_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    tags: dict[uuid.UUID, list[str]] = {rid: [] for rid in request_ids}
    if request_ids:
        rows = await session.exec(
            select(RequestTag)
            .where(col(RequestTag.request_id).in_(request_ids))
            .order_by(col(RequestTag.tag))
        )
        for row in rows:
            tags[row.request_id].append(row.tag)
    return tags


# Built once (see feedback.live.events): the request id comes in as a bound parameter.
_STATUS_COUNTS = (
    select(Invitation.status, func.count())
    .where(col(Invitation.request_id) == bindparam("request_id"))
    .group_by(col(Invitation.status))
)


async def progress_of(session: AsyncSession, request: FeedbackRequest) -> Progress:
    """One request's progress; on the answer path, so its query is built once."""
    # Plain SQL on the session's connection (cheaper than an ORM query), after a flush so
    # the counts include this transaction's own changes.
    await session.flush()
    connection = await session.connection()
    rows = await connection.execute(_STATUS_COUNTS, {"request_id": request.id})
    counts = {InvitationStatus(status): int(count) for status, count in rows.all()}
    released = (
        await visibility.released_counts(session, request_ids=[request.id])
        if request.anonymous
        else {}
    )
    return _progress(request, counts, released.get(request.id, 0))


async def progress_of_many(
    session: AsyncSession, requests: Sequence[FeedbackRequest]
) -> dict[uuid.UUID, Progress]:
    """`progress_of` for many requests in at most two queries, whatever their number."""
    ids = [r.id for r in requests]
    counts: dict[uuid.UUID, dict[InvitationStatus, int]] = {rid: {} for rid in ids}
    if ids:
        await session.flush()
        rows = await session.exec(
            select(Invitation.request_id, Invitation.status, func.count())
            .where(col(Invitation.request_id).in_(ids))
            .group_by(col(Invitation.request_id), col(Invitation.status))
        )
        for request_id, status, count in rows:
            counts[request_id][InvitationStatus(status)] = int(count)
    released = await visibility.released_counts(
        session, request_ids=[r.id for r in requests if r.anonymous]
    )
    return {r.id: _progress(r, counts[r.id], released.get(r.id, 0)) for r in requests}


def _progress(
    request: FeedbackRequest, counts: dict[InvitationStatus, int], released: int
) -> Progress:
    """What a request's counts may show: anonymous ones give no declines, named ones no
    releases."""
    invited = sum(counts.values())
    received = counts.get(InvitationStatus.answered, 0)
    if not request.anonymous:
        return Progress(
            invited=invited, received=received, declined=counts.get(InvitationStatus.declined, 0)
        )
    withheld = received - released if not is_open(request) else None
    return Progress(invited=invited, received=received, released=released, withheld=withheld)


async def summarise(
    session: AsyncSession,
    request: FeedbackRequest,
    *,
    tags: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> RequestSummary:
    if tags is None:
        tags = (await tags_of(session, [request.id]))[request.id]
    if progress is None:
        progress = await progress_of(session, request)
    return RequestSummary(
        id=request.id,
        question=request.question,
        context=request.context,
        tags=list(tags),
        anonymous=request.anonymous,
        anonymity_k=request.anonymity_k if request.anonymous else None,
        status=RequestStatus.open.value if is_open(request) else RequestStatus.closed.value,
        created_at=request.created_at,
        due_at=request.due_at,
        closed_at=request.closed_at,
        progress=progress,
    )


async def list_mine(session: AsyncSession, *, requester: Person) -> list[RequestSummary]:
    requests = (
        await session.exec(
            select(FeedbackRequest)
            .where(FeedbackRequest.requester_id == requester.id)
            .order_by(col(FeedbackRequest.created_at).desc())
        )
    ).all()
    tags = await tags_of(session, [r.id for r in requests])
    progress = await progress_of_many(session, requests)
    return [await summarise(session, r, tags=tags[r.id], progress=progress[r.id]) for r in requests]


async def get_own(
    session: AsyncSession, *, requester: Person, request_id: uuid.UUID
) -> FeedbackRequest:
    """The request, if this person asked it. Others get 404, so ids reveal nothing."""
    request = await session.get(FeedbackRequest, request_id)
    if request is None or request.requester_id != requester.id:
        raise NotFound("No such request.")
    return request


async def detail(session: AsyncSession, *, request: FeedbackRequest) -> RequestDetail:
    summary = await summarise(session, request)
    responses = await visibility.visible_responses(session, request=request)
    invitees = (
        None if request.anonymous else await visibility.invitee_statuses(session, request=request)
    )
    notice = None
    if request.anonymous:
        k = request.anonymity_k
        held = summary.progress.received - (summary.progress.released or 0)
        if summary.status == RequestStatus.closed.value and held:
            notice = (
                f"{held} answer{'s' if held != 1 else ''} will never be shown: anonymous answers "
                f"are only shown in groups of at least {k}, and the request closed before the "
                "group was complete. Nobody else can read them either."
            )
        elif held:
            notice = (
                f"Anonymous answers are shown in groups of at least {k}, so that nobody can tell "
                f"who wrote what. {held} received answer{'s are' if held != 1 else ' is'} "
                "waiting for the group to fill."
            )
    return RequestDetail(
        **summary.model_dump(), responses=responses, invitees=invitees, notice=notice
    )


async def close_request(
    session: AsyncSession, *, requester: Person, request_id: uuid.UUID
) -> FeedbackRequest:
    request = await get_own(session, requester=requester, request_id=request_id)
    if request.status == RequestStatus.closed:
        raise Conflict("This request is already closed.")
    request.status = RequestStatus.closed
    request.closed_at = clock.now()
    session.add(request)
    await session.flush()
    summary = await summarise(session, request)
    await record_event(
        session,
        recipient_id=requester.id,
        type="request.closed",
        request_id=request.id,
        data={"request": summary.model_dump(mode="json")},
    )
    reviewers = await session.exec(
        select(Invitation.reviewer_id)
        .where(Invitation.request_id == request.id)
        .where(col(Invitation.reviewer_id).is_not(None))
    )
    for reviewer_id in reviewers:
        assert reviewer_id is not None
        await record_event(
            session,
            recipient_id=reviewer_id,
            type="invitation.closed",
            request_id=request.id,
            data={"request_id": str(request.id)},
        )
    return request


def ensure_requester(request: FeedbackRequest, person: Person) -> None:
    if request.requester_id != person.id:
        raise Forbidden("Only the person who asked can do this.")
