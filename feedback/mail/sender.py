"""Delivering the outbox over SMTP with retries. An SMTP outage only delays mail.

Each message is claimed by pushing its next attempt forward before sending, so two
senders never send the same message at once; it is marked sent only after the SMTP
server accepted it. A crash in between means at most a duplicate, never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import update
from sqlmodel import col, select

from feedback import clock
from feedback.crypto import Sealer
from feedback.db import Database
from feedback.models.mail import OutboxMail
from feedback.paths import web_dir
from feedback.settings import Settings

log = logging.getLogger("feedback.mail")
BATCH = 50


def mail_environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(web_dir() / "templates" / "email"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def build_message(
    mail: OutboxMail, *, env: Environment, sealer: Sealer, settings: Settings
) -> EmailMessage:
    """Render the multipart text + HTML message for one outbox row."""
    context = dict(mail.context)
    if mail.sealed_context:
        context.update(sealer.open(mail.sealed_context) or {})
    context["base_url"] = settings.base_url
    message = EmailMessage()
    message["Subject"] = env.get_template(f"{mail.template}.subject.txt").render(context).strip()
    message["From"] = formataddr(("Feedback", settings.mail_from))
    message["To"] = mail.to_email
    message["Message-ID"] = make_msgid(domain=settings.mail_from.rsplit("@", 1)[-1])
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(env.get_template(f"{mail.template}.txt").render(context))
    message.add_alternative(
        env.get_template(f"{mail.template}.html").render(context), subtype="html"
    )
    return message


def smtp_options(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    options: dict[str, Any] = {
        "hostname": parts.hostname,
        "port": parts.port or (465 if parts.scheme == "smtps" else 25),
        "timeout": 20,
        "use_tls": parts.scheme == "smtps",
        # None: upgrade when the server offers STARTTLS; True: insist on it.
        "start_tls": True
        if parts.scheme == "smtp+starttls" or query.get("starttls") == ["1"]
        else (False if parts.scheme == "smtps" else None),
    }
    if parts.username:
        options["username"] = unquote(parts.username)
        options["password"] = unquote(parts.password or "")
    return options


class MailSender:
    def __init__(self, *, db: Database, settings: Settings, sealer: Sealer) -> None:
        self.db = db
        self.settings = settings
        self.sealer = sealer
        self.env = mail_environment()
        self._wake = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return self.settings.smtp_url is not None

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            try:
                sent = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("mail sender pass failed")
                sent = 0
            if sent < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), timeout=self.settings.mail_retry_seconds
                    )
                self._wake.clear()

    async def send_due(self) -> int:
        """Try every due message once. Returns how many were sent."""
        if self.settings.smtp_url is None:
            return 0
        now = clock.now()
        async with self.db.transaction(write=False) as session:
            due = (
                await session.exec(
                    select(OutboxMail)
                    .where(col(OutboxMail.sent_at).is_(None))
                    .where(col(OutboxMail.failed_at).is_(None))
                    .where(col(OutboxMail.next_attempt_at) <= now)
                    .order_by(col(OutboxMail.created_at))
                    .limit(BATCH)
                )
            ).all()
        sent = 0
        for mail in due:
            if await self._claim(mail, now=now):
                sent += await self._deliver(mail)
        return sent

    async def _claim(self, mail: OutboxMail, *, now: object) -> bool:
        backoff = timedelta(seconds=self.settings.mail_retry_seconds * 2 ** min(mail.attempts, 6))
        async with self.db.transaction() as session:
            result = await session.exec(
                update(OutboxMail)
                .where(col(OutboxMail.id) == mail.id)
                .where(col(OutboxMail.attempts) == mail.attempts)
                .where(col(OutboxMail.sent_at).is_(None))
                .values(attempts=mail.attempts + 1, next_attempt_at=clock.now() + backoff)
            )
            return bool(result.rowcount)

    async def _deliver(self, mail: OutboxMail) -> int:
        assert self.settings.smtp_url is not None
        try:
            message = build_message(mail, env=self.env, sealer=self.sealer, settings=self.settings)
            await aiosmtplib.send(
                message, **smtp_options(self.settings.smtp_url.get_secret_value())
            )  # type: ignore[arg-type]
        except Exception as exc:  # SMTP errors, timeouts, refused connections alike
            give_up = mail.attempts + 1 >= self.settings.mail_max_attempts
            log.warning(
                "mail %s to %s failed (attempt %d%s): %s",
                mail.id,
                mail.to_email,
                mail.attempts + 1,
                ", giving up" if give_up else "",
                type(exc).__name__,
            )
            async with self.db.transaction() as session:
                await session.exec(
                    update(OutboxMail)
                    .where(col(OutboxMail.id) == mail.id)
                    .values(
                        last_error=f"{type(exc).__name__}: {exc}"[:500],
                        failed_at=clock.now() if give_up else None,
                    )
                )
            return 0
        async with self.db.transaction() as session:
            # The link is only needed until the message is out; then it is erased.
            await session.exec(
                update(OutboxMail)
                .where(col(OutboxMail.id) == mail.id)
                .values(sent_at=clock.now(), sealed_context=None, last_error=None)
            )
        log.info("mail %s sent to %s", mail.id, mail.to_email)
        return 1
