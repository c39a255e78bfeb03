"""Queueing mail in the outbox table, in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from feedback.crypto import Sealer
from feedback.models.mail import OutboxMail


class Outbox:
    """What services need to queue mail: the site's base URL and the sealing key."""

    def __init__(self, *, base_url: str, sealer: Sealer) -> None:
        self.base_url = base_url
        self.sealer = sealer

    async def enqueue(
        self,
        session: AsyncSession,
        *,
        to: str,
        template: str,
        context: dict[str, Any],
        sealed: dict[str, Any] | None = None,
    ) -> OutboxMail:
        mail = OutboxMail(
            to_email=to,
            template=template,
            context=context,
            sealed_context=self.sealer.seal(sealed) if sealed else None,
        )
        session.add(mail)
        session.info["mail_queued"] = True
        return mail
