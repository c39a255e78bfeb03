"""The outbox page: with no SMTP server configured, admins read the mail here."""

from __future__ import annotations

from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feedback.accounts.auth import require_role
from feedback.mail.sender import build_message, mail_environment
from feedback.models.mail import OutboxMail
from feedback.models.people import Role
from feedback.web import render, state


async def outbox_page(request: Request) -> Response:
    await require_role(request, Role.admin)
    app = state(request)
    async with app.db.transaction(write=False) as session:
        mails = (
            await session.exec(
                select(OutboxMail).order_by(col(OutboxMail.created_at).desc()).limit(100)
            )
        ).all()
    env = mail_environment()
    sealer = app.outbox.sealer
    shown = []
    for mail in mails:
        message = build_message(mail, env=env, sealer=sealer, settings=app.settings)
        text = message.get_body(("plain",))
        shown.append(
            {
                "mail": mail,
                "subject": message["Subject"],
                "text": text.get_content() if text is not None else "",
            }
        )
    return render(
        request, "mail/outbox.html", {"mails": shown, "smtp": app.settings.smtp_url is not None}
    )


routes = [Route("/admin/outbox", outbox_page, methods=["GET"])]
