"""Reviewer links as the mail would carry them, read from the sealed outbox rows.

The app never stores a link in clear: the outbox keeps it sealed with SECRET_KEY until the
mail goes out. Tests without an SMTP server open the seal with the app's own Sealer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlmodel import col, select
from starlette.testclient import TestClient

from feedback.models.mail import OutboxMail
from tests.factories import ask


def outbox_rows(client: TestClient) -> list[OutboxMail]:
    db = client.app_state["app"].db

    async def read() -> list[OutboxMail]:
        async with db.transaction(write=False) as session:
            rows = await session.exec(select(OutboxMail).order_by(col(OutboxMail.created_at)))
            return list(rows.all())

    assert client.portal is not None
    return client.portal.call(read)


def ask_with_links(
    client: TestClient, reviewers: list[str], **fields: Any
) -> tuple[str, dict[str, str]]:
    """Ask as the logged-in person; return the request id and each reviewer's link token."""
    before = {row.id for row in outbox_rows(client)}
    request_id = ask(client, reviewers, **fields)
    sealer = client.app_state["app"].outbox.sealer
    tokens: dict[str, str] = {}
    for row in outbox_rows(client):
        if row.id in before or row.sealed_context is None:
            continue
        link = sealer.open(row.sealed_context)["link"]
        prefix = "http://testserver/r/"
        assert link.startswith(prefix), link
        tokens[row.to_email] = link.removeprefix(prefix)
    assert sorted(tokens) == sorted(r.lower() for r in reviewers)
    return request_id, tokens


@contextmanager
def without_session(client: TestClient) -> Iterator[TestClient]:
    """Act as someone who only has the link (no cookie), then give the session back.

    Cheaper than logging out and in again, which costs a password hash each time.
    """
    saved = dict(client.cookies.items())
    client.cookies.clear()
    try:
        yield client
    finally:
        client.cookies.clear()
        for name, value in saved.items():
            client.cookies.set(name, value)
