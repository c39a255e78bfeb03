"""Invitations travel by real SMTP; a reviewer follows the link in the mail and answers."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from feedback import clock
from feedback.app import create_app
from feedback.crypto import Sealer
from feedback.db import Database
from feedback.mail.sender import MailSender
from feedback.models.mail import OutboxMail
from tests.conftest import make_settings
from tests.factories import add_person, ask, log_in
from tests.mail.conftest import SmtpServer, free_port

QUESTION = "Did I listen enough before pitching?"
LINK = re.compile(r"http://testserver/r/([A-Za-z0-9_-]{43})")


def _outbox(client: TestClient) -> list[OutboxMail]:
    db = client.app_state["app"].db

    async def read() -> list[OutboxMail]:
        async with db.transaction(write=False) as session:
            return list((await session.exec(select(OutboxMail))).all())

    assert client.portal is not None
    return client.portal.call(read)


def _wait_until(check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _parse(envelope: object) -> EmailMessage:
    message = message_from_bytes(envelope.content, policy=policy.default)  # type: ignore[attr-defined]
    assert isinstance(message, EmailMessage)
    return message


@pytest.fixture
def mailing_client(database_url: str, smtp_server: SmtpServer) -> Iterator[TestClient]:
    settings = make_settings(database_url, smtp_url=smtp_server.url)
    with TestClient(create_app(settings)) as client:
        add_person(client, "priya@example.com", name="Priya Natarajan")
        log_in(client, "priya@example.com")
        yield client


def test_the_invitation_arrives_by_smtp_and_its_link_lets_the_reviewer_answer(
    mailing_client: TestClient, smtp_server: SmtpServer
) -> None:
    client = mailing_client
    request_id = ask(
        client, ["buyer@client.example"], question=QUESTION, context="Initech discovery call"
    )
    [envelope] = smtp_server.mailbox.wait_for(1)
    assert envelope.rcpt_tos == ["buyer@client.example"]
    assert envelope.mail_from == "feedback@test.example"

    message = _parse(envelope)
    assert message.get_content_type() == "multipart/alternative"
    assert "Priya Natarajan" in message["Subject"]
    assert message["To"] == "buyer@client.example"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    text_body, html_body = text.get_content(), html.get_content()
    assert QUESTION in text_body and QUESTION in html_body
    assert "Initech discovery call" in text_body
    [token] = LINK.findall(text_body)
    assert f'href="http://testserver/r/{token}"' in html_body

    # The reviewer opens the link from the mail, without any account.
    client.cookies.clear()
    page = client.get(f"/r/{token}")
    assert page.status_code == 200
    assert QUESTION in page.text
    saved = client.post(f"/r/{token}", data={"action": "answer", "rating": "4", "body": "Yes."})
    assert "Thank you, your answer was sent." in saved.text

    log_in(client, "priya@example.com")
    detail = client.get(f"/api/v1/requests/{request_id}").json()
    assert [(r["body"], r["rating"], r["reviewer"]["email"]) for r in detail["responses"]] == [
        ("Yes.", 4, "buyer@client.example")
    ]


def test_each_reviewer_gets_their_own_link_by_json_too(
    mailing_client: TestClient, smtp_server: SmtpServer
) -> None:
    client = mailing_client
    request_id = ask(client, ["a@client.example", "b@client.example"], question=QUESTION)
    envelopes = smtp_server.mailbox.wait_for(2)
    tokens = {
        e.rcpt_tos[0]: LINK.findall(_parse(e).get_body(("plain",)).get_content())[0]  # type: ignore[union-attr]
        for e in envelopes
    }
    assert sorted(tokens) == ["a@client.example", "b@client.example"]
    assert tokens["a@client.example"] != tokens["b@client.example"]

    client.cookies.clear()
    shown = client.get(f"/api/v1/invitations/{tokens['b@client.example']}").json()
    assert shown["question"] == QUESTION
    put = client.put(
        f"/api/v1/invitations/{tokens['b@client.example']}/response", json={"body": "From B."}
    )
    assert put.status_code == 201

    log_in(client, "priya@example.com")
    detail = client.get(f"/api/v1/requests/{request_id}").json()
    assert [r["reviewer"]["email"] for r in detail["responses"]] == ["b@client.example"]


def test_once_sent_the_outbox_forgets_the_link(
    mailing_client: TestClient, smtp_server: SmtpServer
) -> None:
    ask(mailing_client, ["buyer@client.example"])
    smtp_server.mailbox.wait_for(1)

    def sent() -> bool:
        return all(row.sent_at is not None for row in _outbox(mailing_client))

    _wait_until(sent)
    [row] = _outbox(mailing_client)
    assert row.sealed_context is None
    assert row.attempts == 1
    assert row.last_error is None


def test_an_smtp_outage_delays_mail_but_loses_none_and_sends_it_once_later(
    database_url: str, smtp_server: SmtpServer
) -> None:
    dead = make_settings(database_url, smtp_url=f"smtp://127.0.0.1:{free_port()}")
    with TestClient(create_app(dead)) as client:
        add_person(client, "priya@example.com", name="Priya Natarajan")
        log_in(client, "priya@example.com")
        ask(client, ["buyer@client.example"], question=QUESTION)

        def failed_once() -> bool:
            return all(row.attempts > 0 and row.last_error for row in _outbox(client))

        _wait_until(failed_once)
        [row] = _outbox(client)
    assert row.sent_at is None
    assert row.failed_at is None
    assert row.sealed_context is not None  # still able to build the link
    assert "Connect" in (row.last_error or "")
    assert row.next_attempt_at > clock.now()
    assert smtp_server.mailbox.envelopes == []

    # SMTP is back. A sender pass before the retry time sends nothing; after it, once.
    working = make_settings(database_url, smtp_url=smtp_server.url)

    async def deliver() -> list[int]:
        db = Database(working)
        sender = MailSender(db=db, settings=working, sealer=Sealer(working.resolved_secret_key()))
        try:
            early = await sender.send_due()
            with clock.frozen_at(row.next_attempt_at + timedelta(seconds=1)):
                due = await sender.send_due()
                again = await sender.send_due()
            async with db.transaction(write=False) as session:
                [after] = (await session.exec(select(OutboxMail))).all()
            assert after.sent_at is not None
            assert after.sealed_context is None
            assert after.last_error is None
            return [early, due, again]
        finally:
            await db.dispose()

    assert asyncio.run(deliver()) == [0, 1, 0]
    [envelope] = smtp_server.mailbox.wait_for(1)
    message = _parse(envelope)
    assert QUESTION in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert LINK.search(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    time.sleep(0.2)
    assert len(smtp_server.mailbox.envelopes) == 1


def test_the_html_mail_shows_a_question_with_markup_as_text(
    mailing_client: TestClient, smtp_server: SmtpServer
) -> None:
    ask(mailing_client, ["buyer@client.example"], question="<img src=x onerror=alert(1)> ok?")
    [envelope] = smtp_server.mailbox.wait_for(1)
    html = _parse(envelope).get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; ok?" in html


def test_mail_that_keeps_failing_is_given_up_after_the_last_attempt(database_url: str) -> None:
    dead = make_settings(
        database_url, smtp_url=f"smtp://127.0.0.1:{free_port()}", mail_max_attempts=2
    )
    with TestClient(create_app(make_settings(database_url))) as client:
        add_person(client, "priya@example.com", name="Priya Natarajan")
        log_in(client, "priya@example.com")
        ask(client, ["buyer@client.example"])

    async def attempts() -> list[tuple[int, bool, bool]]:
        db = Database(dead)
        sender = MailSender(db=db, settings=dead, sealer=Sealer(dead.resolved_secret_key()))
        seen = []
        try:
            moment = clock.now()
            for _ in range(3):
                moment += timedelta(days=1)  # past any backoff
                with clock.frozen_at(moment):
                    await sender.send_due()
                async with db.transaction(write=False) as session:
                    [row] = (await session.exec(select(OutboxMail))).all()
                seen.append((row.attempts, row.failed_at is not None, row.sent_at is not None))
        finally:
            await db.dispose()
        return seen

    # Two tries, then it is marked failed and left alone (the admin sees it in the outbox).
    assert asyncio.run(attempts()) == [(1, False, False), (2, True, False), (2, True, False)]


def test_sending_and_following_the_link_logs_no_token(
    mailing_client: TestClient, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        ask(mailing_client, ["buyer@client.example"])
        [envelope] = smtp_server.mailbox.wait_for(1)
        [token] = LINK.findall(_parse(envelope).get_body(("plain",)).get_content())  # type: ignore[union-attr]
        _wait_until(lambda: all(row.sent_at for row in _outbox(mailing_client)))
        mailing_client.get(f"/r/{token}")
        mailing_client.post(f"/r/{token}", data={"action": "answer", "body": "Fine."})

    # Leave out the test's own HTTP client and SMTP server; the rest is the app's.
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore", "mail."))]
    assert any(r.name.startswith("feedback.mail") for r in ours), "the sender logs its work"
    for record in ours:
        assert token not in record.getMessage() + repr(record.__dict__), record.name
