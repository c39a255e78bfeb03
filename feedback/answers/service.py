"""Answering: reviewer links, the inbox, saving and declining, and anonymous release."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, update
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from feedback import clock
from feedback.answers import visibility
from feedback.answers.schemas import AnswerWrite, InvitationPublic, MyAnswer, Requester
from feedback.crypto import hash_token
from feedback.errors import Conflict, Gone, NotFound
from feedback.live.events import record_event
from feedback.models.answers import Answer, ReleaseBatch
from feedback.models.people import Person
from feedback.models.requests import FeedbackRequest, Invitation, InvitationStatus
from feedback.models.types import new_id
from feedback.requests import service as requests

# Shuffling a release batch must not be predictable from earlier batches.
_shuffler = random.SystemRandom()


# Statements on the answer path are built once; values come in as bound parameters.
# Building a statement and its cache key on every call cost more than running it.
_BY_TOKEN = (
    select(Invitation, FeedbackRequest, Person)
    .join(FeedbackRequest, col(FeedbackRequest.id) == col(Invitation.request_id))
    .outerjoin(Person, col(Person.id) == col(Invitation.reviewer_id))
    .where(col(Invitation.token_hash) == bindparam("token_hash"))
)
_LOCK_REQUEST = (
    select(FeedbackRequest)
    .where(col(FeedbackRequest.id) == bindparam("request_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_ANSWER_OF = select(Answer).where(col(Answer.invitation_id) == bindparam("invitation_id"))
_INSERT_ANSWER = insert(Answer)
_UPDATE_ANSWER = (
    update(Answer)
    .where(col(Answer.id) == bindparam("answer_id"))
    .values(rating=bindparam("rating"), body=bindparam("body"), updated_at=bindparam("now"))
)
_MARK_ANSWERED = (
    update(Invitation)
    .where(col(Invitation.id) == bindparam("invitation_id"))
    .values(status=InvitationStatus.answered, declined_at=None)
)


async def by_token(session: AsyncSession, *, token: str) -> Invitation:
    """The link's invitation. Its request and reviewer come in the same query, so the rest
    of the transaction finds them in the session instead of asking again."""
    row = (await session.exec(_BY_TOKEN, params={"token_hash": hash_token(token)})).first()
    if row is None:
        raise NotFound("This feedback link is not valid. Check that you copied all of it.")
    # The session's identity map holds objects weakly: keep the request and reviewer alive
    # for the transaction, so that later lookups of them find them instead of querying.
    session.info.setdefault("loaded", []).extend(row[1:])
    return row[0]


async def for_reviewer(
    session: AsyncSession, *, reviewer: Person, invitation_id: uuid.UUID
) -> Invitation:
    invitation = await session.get(Invitation, invitation_id)
    if invitation is None or invitation.reviewer_id != reviewer.id:
        raise NotFound("No such invitation in your inbox.")
    return invitation


async def _context(session: AsyncSession, invitation: Invitation) -> tuple[FeedbackRequest, Person]:
    request = await session.get(FeedbackRequest, invitation.request_id)
    assert request is not None
    requester = await session.get(Person, request.requester_id)
    assert requester is not None
    return request, requester


async def lock_request(session: AsyncSession, invitation: Invitation) -> FeedbackRequest:
    """Lock the invitation's request for the rest of the transaction, and return it fresh.

    Writers lock the request's row (PostgreSQL; SQLite writers hold the database's one
    write lock from BEGIN IMMEDIATE anyway), so answers, declines and closing on one
    request happen one at a time: a release counts every held answer, progress counts are
    exact, and no answer lands after the close has committed. A second call in the same
    transaction returns the row already locked.
    """
    locked: dict[uuid.UUID, FeedbackRequest] = session.info.setdefault("locked_requests", {})
    request = locked.get(invitation.request_id)
    if request is not None:
        return request
    if not _concurrent_writers(session):
        # SQLite: this transaction has held the database's write lock since it began, so
        # a request loaded in it is current; the session has it if the link's query did.
        loaded = await session.get(FeedbackRequest, invitation.request_id)
        assert loaded is not None
        locked[loaded.id] = loaded
        return loaded
    request = (
        await session.exec(_LOCK_REQUEST, params={"request_id": invitation.request_id})
    ).one()
    if _concurrent_writers(session):
        # Read before the lock was ours: another writer may have answered or declined.
        await session.refresh(invitation)
    locked[request.id] = request
    return request


def _concurrent_writers(session: AsyncSession) -> bool:
    """Whether rows read earlier in this transaction may have changed since (not SQLite's)."""
    return session.bind is None or session.bind.dialect.name != "sqlite"


async def _answer_of(session: AsyncSession, invitation: Invitation) -> Answer | None:
    return (await session.exec(_ANSWER_OF, params={"invitation_id": invitation.id})).first()


def _mine(answer: Answer | None) -> MyAnswer | None:
    if answer is None:
        return None
    return MyAnswer(
        rating=answer.rating,
        body=answer.body,
        updated_at=answer.updated_at,
        released=answer.release_batch_id is not None,
    )


async def view(
    session: AsyncSession, *, invitation: Invitation, require_open: bool = True
) -> InvitationPublic:
    """The invitation as its reviewer sees it. Closed requests are 410 unless asked otherwise."""
    request, requester = await _context(session, invitation)
    if require_open:
        _ensure_open(request)
    tags = (await requests.tags_of(session, [request.id]))[request.id]
    answer = await _answer_of(session, invitation)
    return _public(invitation, request, requester, tags=tags, answer=answer)


def _public(
    invitation: Invitation,
    request: FeedbackRequest,
    requester: Person,
    *,
    tags: list[str],
    answer: Answer | None,
) -> InvitationPublic:
    return InvitationPublic(
        invitation_id=invitation.id,
        request_id=request.id,
        requester=Requester(name=requester.name, email=requester.email),
        question=request.question,
        context=request.context,
        tags=tags,
        anonymous=request.anonymous,
        anonymity_k=request.anonymity_k if request.anonymous else None,
        status=invitation.status.value,
        request_open=requests.is_open(request),
        due_at=request.due_at,
        answer=_mine(answer),
    )


def _ensure_open(request: FeedbackRequest) -> None:
    if not requests.is_open(request):
        raise Gone("This request is closed: it no longer takes answers.")


@dataclass(frozen=True, slots=True)
class Written:
    """An answer as just stored."""

    id: uuid.UUID
    rating: int | None
    body: str
    created_at: datetime
    updated_at: datetime


async def save_answer(
    session: AsyncSession, *, invitation: Invitation, data: AnswerWrite
) -> tuple[MyAnswer, bool]:
    """Create or change the reviewer's answer. Returns it as the reviewer sees it, and
    whether it is new."""
    request = await lock_request(session, invitation)
    _ensure_open(request)
    # Only an answered invitation has an answer: saving sets the status, and declining is
    # refused once answered.
    answered = invitation.status == InvitationStatus.answered
    stored = await _answer_of(session, invitation) if answered else None
    answer = await _write_answer(session, invitation=invitation, stored=stored, data=data)
    created = stored is None

    released = False
    if request.anonymous:
        # A release takes every held answer, this one included.
        released = await _release_if_ready(session, request=request) is not None
        if created:
            await _progress_event(session, request=request)
    else:
        reviewer = (
            await session.get(Person, invitation.reviewer_id) if invitation.reviewer_id else None
        )
        progress = await requests.progress_of(session, request)
        await record_event(
            session,
            recipient_id=request.requester_id,
            type="response.created" if created else "response.updated",
            request_id=request.id,
            data={
                "response": visibility.named_response(answer, invitation, reviewer).model_dump(
                    mode="json"
                ),
                "progress": progress.model_dump(mode="json"),
            },
        )
    mine = MyAnswer(
        rating=answer.rating, body=answer.body, updated_at=answer.updated_at, released=released
    )
    return mine, created


async def _write_answer(
    session: AsyncSession, *, invitation: Invitation, stored: Answer | None, data: AnswerWrite
) -> Written:
    """Store the answer and mark the invitation answered, as plain SQL.

    This is the hottest write in the app, and the ORM's unit of work and instances cost
    more than the statements themselves. Objects already in the session are brought up to
    date as if loaded after the writes, so later queries and flushes neither miss nor
    repeat them.
    """
    connection = await session.connection()
    now = clock.now()
    if stored is None:
        answer = Written(new_id(), data.rating, data.body, now, now)
        await connection.execute(
            _INSERT_ANSWER,
            {
                "id": answer.id,
                "invitation_id": invitation.id,
                "request_id": invitation.request_id,
                "rating": answer.rating,
                "body": answer.body,
                "created_at": now,
                "updated_at": now,
            },
        )
    else:
        if stored.release_batch_id is not None:
            # Showing an edit of a released anonymous answer would single it out.
            raise Conflict(
                "This anonymous answer has already been shown to the requester as part of a "
                "group, so it can no longer be changed."
            )
        answer = Written(stored.id, data.rating, data.body, stored.created_at, now)
        await connection.execute(
            _UPDATE_ANSWER,
            {"answer_id": answer.id, "rating": answer.rating, "body": answer.body, "now": now},
        )
        for name, value in (("rating", data.rating), ("body", data.body), ("updated_at", now)):
            set_committed_value(stored, name, value)
    if invitation.status != InvitationStatus.answered or invitation.declined_at is not None:
        await connection.execute(_MARK_ANSWERED, {"invitation_id": invitation.id})
        set_committed_value(invitation, "status", InvitationStatus.answered)
        set_committed_value(invitation, "declined_at", None)
    return answer


async def decline(session: AsyncSession, *, invitation: Invitation) -> Invitation:
    request = await lock_request(session, invitation)
    _ensure_open(request)
    if invitation.status == InvitationStatus.answered:
        raise Conflict("You have already answered; you can change your answer instead.")
    if invitation.status == InvitationStatus.declined:
        return invitation
    invitation.status = InvitationStatus.declined
    invitation.declined_at = clock.now()
    session.add(invitation)
    await session.flush()
    if not request.anonymous:
        await _progress_event(session, request=request)
    return invitation


async def _progress_event(session: AsyncSession, *, request: FeedbackRequest) -> None:
    progress = await requests.progress_of(session, request)
    await record_event(
        session,
        recipient_id=request.requester_id,
        type="request.progress",
        request_id=request.id,
        data={"progress": progress.model_dump(mode="json")},
    )


async def _release_if_ready(
    session: AsyncSession, *, request: FeedbackRequest
) -> ReleaseBatch | None:
    """Release every held anonymous answer together once at least k are held."""
    held = list(
        (
            await session.exec(
                select(Answer)
                .where(Answer.request_id == request.id)
                .where(col(Answer.release_batch_id).is_(None))
            )
        ).all()
    )
    if len(held) < request.anonymity_k:
        return None
    batch = ReleaseBatch(request_id=request.id, released_at=clock.now(), size=len(held))
    session.add(batch)
    await session.flush()
    _shuffler.shuffle(held)
    for position, answer in enumerate(held):
        answer.release_batch_id = batch.id
        answer.release_position = position
        session.add(answer)
    await session.flush()
    progress = await requests.progress_of(session, request)
    await record_event(
        session,
        recipient_id=request.requester_id,
        type="responses.released",
        request_id=request.id,
        data={
            "released_at": batch.released_at.isoformat(),
            "responses": [
                visibility.anonymous_response(a, batch).model_dump(mode="json", exclude_none=True)
                for a in held
            ],
            "progress": progress.model_dump(mode="json"),
        },
    )
    return batch


async def inbox(session: AsyncSession, *, reviewer: Person) -> list[InvitationPublic]:
    """Invitations for this person on requests still open, newest first (two queries)."""
    requester = aliased(Person)
    rows = [
        row
        for row in await session.exec(
            select(Invitation, FeedbackRequest, requester, Answer)
            .join(FeedbackRequest, col(FeedbackRequest.id) == col(Invitation.request_id))
            .join(requester, col(requester.id) == col(FeedbackRequest.requester_id))
            .outerjoin(Answer, col(Answer.invitation_id) == col(Invitation.id))
            .where(Invitation.reviewer_id == reviewer.id)
            .order_by(col(FeedbackRequest.created_at).desc())
        )
        if requests.is_open(row[1])
    ]
    tags = await requests.tags_of(session, [request.id for _, request, _, _ in rows])
    return [
        _public(invitation, request, asker, tags=tags[request.id], answer=answer)
        for invitation, request, asker, answer in rows
    ]


async def pending_count(session: AsyncSession, *, reviewer: Person) -> int:
    result = await session.exec(
        select(func.count())
        .select_from(Invitation)
        .where(Invitation.reviewer_id == reviewer.id)
        .where(Invitation.status == InvitationStatus.pending)
    )
    return int(result.one())
