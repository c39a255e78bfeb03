"""Idempotency-Key on answer submission: a retried PUT gets the first outcome back.

A reviewer on a flaky connection (or a client whose server died mid-request) cannot tell
whether its answer was stored. Sending the same Idempotency-Key again is then safe: the
same body replays the stored status and JSON without writing, a different body is refused
with 422, because the key already stands for another answer. Keys are scoped to one
invitation and stored in the answer's own transaction, so a crash keeps both or neither.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request

from feedback.answers.schemas import AnswerWrite
from feedback.errors import Invalid
from feedback.models.idempotency import IdempotencyKey
from feedback.models.requests import Invitation

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Stored:
    """The response the key's first use produced."""

    status_code: int
    body: dict[str, Any]


def key_of(request: Request) -> str | None:
    """The request's Idempotency-Key, or None when it sent none."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise Invalid(
            f"{HEADER}: use 1 to {MAX_KEY_LENGTH} printable ASCII characters, such as a UUID.",
            field=HEADER,
        )
    return key


def fingerprint(data: AnswerWrite) -> str:
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def stored(
    session: AsyncSession, *, invitation: Invitation, key: str, data: AnswerWrite
) -> Stored | None:
    """The stored outcome for this key, or None if the key is new to this invitation.

    The caller holds the request's lock (`service.lock_request`), so two concurrent uses
    of one key run one after the other: the second finds the first's row.
    """
    row = await session.get(IdempotencyKey, (invitation.id, key))
    if row is None:
        return None
    if row.fingerprint != fingerprint(data):
        raise Invalid(
            f"{HEADER}: this key was already used with a different answer; "
            "send a new key for a new answer.",
            field=HEADER,
        )
    return Stored(status_code=row.status_code, body=row.response)


async def remember(
    session: AsyncSession,
    *,
    invitation: Invitation,
    key: str,
    data: AnswerWrite,
    status_code: int,
    body: dict[str, Any],
) -> None:
    """Keep the outcome with the answer, in the caller's transaction."""
    session.add(
        IdempotencyKey(
            invitation_id=invitation.id,
            key=key,
            fingerprint=fingerprint(data),
            status_code=status_code,
            response=body,
        )
    )
