"""Reading the events table: replay on connect and catch-up after a gap."""

from __future__ import annotations

import uuid

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from feedback.live.events import LiveMessage, encode_event
from feedback.models.live import LiveEvent
from feedback.models.people import Person

REPLAY_LIMIT = 1000


async def events_after(
    session: AsyncSession, *, person_id: uuid.UUID, after: int, limit: int = REPLAY_LIMIT
) -> list[LiveMessage]:
    rows = await session.exec(
        select(LiveEvent)
        .where(LiveEvent.recipient_id == person_id)
        .where(col(LiveEvent.seq) > after)
        .order_by(col(LiveEvent.seq))
        .limit(limit)
    )
    return [LiveMessage(e.recipient_id, e.seq, encode_event(e)) for e in rows]


async def needs_resync(session: AsyncSession, *, person_id: uuid.UUID, after: int) -> bool:
    """True when events after `after` are no longer all kept, or `after` is from the future."""
    last = (await session.exec(select(Person.last_event_seq).where(Person.id == person_id))).one()
    if after > last:
        return True
    if after == last:
        return False
    oldest = (
        await session.exec(
            select(func.min(LiveEvent.seq)).where(LiveEvent.recipient_id == person_id)
        )
    ).one()
    return oldest is None or oldest > after + 1


async def last_seq(session: AsyncSession, *, person_id: uuid.UUID) -> int:
    return int(
        (await session.exec(select(Person.last_event_seq).where(Person.id == person_id))).one()
    )
