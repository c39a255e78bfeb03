"""Writing live events into the outbox table, inside the caller's transaction."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from feedback.models.live import LiveEvent
from feedback.models.people import Person

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


def encode(event: LiveEvent) -> str:
    return json.dumps(
        {
            "seq": event.seq,
            "type": event.type,
            "request_id": str(event.request_id) if event.request_id else None,
            "data": event.data,
        },
        separators=(",", ":"),
    )


async def record_event(
    session: AsyncSession,
    *,
    recipient_id: uuid.UUID,
    type: str,
    request_id: uuid.UUID | None,
    data: dict[str, Any],
) -> LiveEvent:
    """Add an event for one person. It is published only if the transaction commits.

    The per-person counter is bumped with an UPDATE, which locks that person's row until
    commit: two transactions writing to the same person commit their seqs in order, so a
    client resuming after seq N can never miss a smaller seq committed later.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown live event type {type!r}")
    result = await session.exec(
        update(Person)
        .where(col(Person.id) == recipient_id)
        .values(last_event_seq=col(Person.last_event_seq) + 1)
        .returning(col(Person.last_event_seq))
        # Nothing in the session needs the new value: skip matching loaded Person objects.
        .execution_options(synchronize_session=False)
    )
    seq = int(result.scalar_one())
    event = LiveEvent(
        recipient_id=recipient_id, seq=seq, type=type, request_id=request_id, data=data
    )
    session.add(event)
    session.info.setdefault("live_events", []).append(event)
    return event


def committed_messages(session: AsyncSession) -> list[LiveMessage]:
    """The events a just-committed transaction wrote, encoded for the hub."""
    events: list[LiveEvent] = session.info.pop("live_events", [])
    return [LiveMessage(e.recipient_id, e.seq, encode(e)) for e in events]
