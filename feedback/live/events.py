"""Writing live events into the outbox table, inside the caller's transaction."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from feedback.models.live import LiveEvent
from feedback.models.people import Person
from feedback.models.types import now

# The types a client may receive; docs/api.md describes each one's data.
EVENT_TYPES = frozenset(
    {
        "request.created",
        "request.closed",
        "request.progress",
        "invitation.created",
        "invitation.closed",
        "response.created",
        "response.updated",
        "responses.released",
    }
)


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """A committed event, encoded once, on its way to the recipient's open sockets."""

    recipient_id: uuid.UUID
    seq: int
    text: str


def encode(*, seq: int, type: str, request_id: uuid.UUID | None, data: dict[str, Any]) -> str:
    return json.dumps(
        {
            "seq": seq,
            "type": type,
            "request_id": str(request_id) if request_id else None,
            "data": data,
        },
        separators=(",", ":"),
    )


def encode_event(event: LiveEvent) -> str:
    return encode(seq=event.seq, type=event.type, request_id=event.request_id, data=event.data)


# Built once: constructing a statement and its cache key on every call costs more than
# running it. The values come in as bound parameters.
_BUMP_SEQ = (
    update(Person)
    .where(col(Person.id) == bindparam("recipient"))
    .values(last_event_seq=col(Person.last_event_seq) + 1)
    .returning(col(Person.last_event_seq))
)
_INSERT_EVENT = insert(LiveEvent)


async def record_event(
    session: AsyncSession,
    *,
    recipient_id: uuid.UUID,
    type: str,
    request_id: uuid.UUID | None,
    data: dict[str, Any],
) -> LiveMessage:
    """Add an event for one person. It is published only if the transaction commits.

    The per-person counter is bumped with an UPDATE, which locks that person's row until
    commit: two transactions writing to the same person commit their seqs in order, so a
    client resuming after seq N can never miss a smaller seq committed later.

    Both statements run as plain SQL on the session's connection: nothing loaded in the
    session needs them, and the ORM's bookkeeping would cost more than the statements.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown live event type {type!r}")
    connection = await session.connection()
    result = await connection.execute(_BUMP_SEQ, {"recipient": recipient_id})
    seq = int(result.scalar_one())
    await connection.execute(
        _INSERT_EVENT,
        {
            "recipient_id": recipient_id,
            "seq": seq,
            "type": type,
            "request_id": request_id,
            "data": data,
            "created_at": now(),
        },
    )
    message = LiveMessage(
        recipient_id, seq, encode(seq=seq, type=type, request_id=request_id, data=data)
    )
    session.info.setdefault("live_events", []).append(message)
    return message


def committed_messages(session: AsyncSession) -> list[LiveMessage]:
    """The events a just-committed transaction wrote, encoded for the hub."""
    messages: list[LiveMessage] = session.info.pop("live_events", [])
    return messages
