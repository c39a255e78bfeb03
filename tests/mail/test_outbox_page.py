"""With no SMTP server configured, mail waits in the outbox and the admin can read it."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from feedback.models.people import Role
from tests.answers.links import ask_with_links
from tests.factories import add_person, ask, log_in

XSS = "<script>alert('x')</script> & <b>bold</b>"


def test_the_admin_reads_waiting_mail_and_can_follow_its_link(client: TestClient) -> None:
    add_person(client, "admin@example.com", name="Ada Admin", role=Role.admin)
    add_person(client, "priya@example.com", name="Priya Natarajan")
    log_in(client, "priya@example.com")
    request_id = ask(client, ["buyer@client.example"], question="Was the demo clear?")

    # Only an admin may read other people's mail.
    assert client.get("/admin/outbox").status_code == 403
    client.cookies.clear()
    assert client.get("/admin/outbox").status_code == 401

    log_in(client, "admin@example.com")
    page = client.get("/admin/outbox")
    assert page.status_code == 200
    assert "FEEDBACK_SMTP_URL is not set" in page.text
    assert "Priya Natarajan asks for your feedback" in page.text
    assert "to buyer@client.example" in page.text
    assert "waiting" in page.text
    [link] = set(re.findall(r"http://testserver/r/[A-Za-z0-9_-]{43}", page.text))

    client.cookies.clear()
    path = link.removeprefix("http://testserver")
    answered = client.post(path, data={"action": "answer", "body": "Very clear."})
    assert "Thank you, your answer was sent." in answered.text
    log_in(client, "priya@example.com")
    detail = client.get(f"/api/v1/requests/{request_id}").json()
    assert [r["body"] for r in detail["responses"]] == ["Very clear."]


def test_a_question_with_markup_is_shown_as_text_everywhere(client: TestClient) -> None:
    add_person(client, "admin@example.com", name="Ada Admin", role=Role.admin)
    log_in(client, "admin@example.com")
    request_id, tokens = ask_with_links(client, ["buyer@client.example"], question=XSS, context=XSS)
    reviewer_page = f"/r/{tokens['buyer@client.example']}"

    for path in ("/admin/outbox", f"/requests/{request_id}", "/", reviewer_page):
        html = client.get(path).text
        assert "<script>alert" not in html, path
        assert "<b>bold</b>" not in html, path
        assert "&lt;script&gt;" in html, path
