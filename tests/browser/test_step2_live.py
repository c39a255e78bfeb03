"""Step 2 in a real browser: answers and invitations arrive on open pages without a reload,
and a page that went offline catches up by seq when it comes back."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE, LiveServer, Mailbox, expect, log_in

pytestmark = pytest.mark.browser


@pytest.fixture
def people(server: LiveServer) -> LiveServer:
    server.add_person("priya@example.com", "Priya Natarajan")
    server.add_person("tom@example.com", "Tom Becker")
    return server


def mark_page(page: Any) -> None:
    """Leave a marker on `window` that a reload would wipe."""
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page: Any) -> None:
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"


def test_answers_stream_onto_the_open_request_page_and_catch_up_after_going_offline(
    people: LiveServer, new_context: Callable[..., Any], mailbox: Mailbox
) -> None:
    desk_context = new_context(DESKTOP)
    log_in(desk_context, "priya@example.com")
    created = desk_context.request.post(
        "/api/v1/requests",
        data={
            "question": "How did I run today's incident call?",
            "reviewers": ["tom@example.com", "buyer@client.example"],
        },
    )
    assert created.status == 201, created.text()
    request_id = created.json()["id"]

    desk = desk_context.new_page()
    sockets: list[str] = []
    desk.on("websocket", lambda ws: sockets.append(ws.url))
    desk.goto(f"/requests/{request_id}")
    live = desk.locator("#live-status")
    expect(live).to_have_text("live")
    expect(desk.get_by_text("No answers to show yet.")).to_be_visible()
    mark_page(desk)

    # Tom answers from his phone while Priya's page is open.
    phone = new_context(PHONE).new_page()
    phone.goto(mailbox.link_for("tom@example.com"))
    phone.get_by_label("3", exact=True).check()
    phone.get_by_label("Your answer").fill("Clear roles; status updates could be more regular.")
    phone.get_by_role("button", name="Send answer").click()
    expect(phone.get_by_role("status")).to_have_text("Thank you, your answer was sent.")

    answers = desk.locator("#responses .response")
    expect(answers).to_have_count(1)
    first = answers.first
    expect(first).to_have_class(re.compile(r"\bfresh\b"))
    expect(first.locator(".who")).to_have_text("Tom Becker tom@example.com")
    expect(first.get_by_label("Rating 3 of 5")).to_be_visible()
    expect(first.locator(".body")).to_have_text(
        "Clear roles; status updates could be more regular."
    )
    # Written the way the server writes times, so a reload doesn't change how it looks.
    expect(first.locator(".meta")).to_have_text(
        re.compile(r"^\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC$")
    )
    expect(desk.locator("[data-progress]")).to_have_text("1 of 2 answered")
    expect(desk.get_by_text("No answers to show yet.")).to_be_hidden()
    desk.get_by_text("Who was asked").click()
    expect(desk.locator('[data-invitee="tom@example.com"]')).to_contain_text("answered")
    assert_not_reloaded(desk)

    # Priya's laptop drops off the network; the buyer answers meanwhile.
    desk_context.set_offline(True)
    expect(live).to_have_text("offline")
    buyer_link = mailbox.link_for("buyer@client.example")
    token = buyer_link.rsplit("/", 1)[1]
    api = new_context(DESKTOP).request
    saved = api.put(
        f"/api/v1/invitations/{token}/response",
        data={"rating": 4, "body": "Calm voice, and you summarised every ten minutes."},
    )
    assert saved.status == 201, saved.text()
    # Offline means offline: nothing arrives until the page reconnects.
    desk.wait_for_timeout(300)
    expect(answers).to_have_count(1)

    desk_context.set_offline(False)
    expect(live).to_have_text("live")
    expect(answers).to_have_count(2)
    second = answers.nth(1)
    expect(second).to_have_class(re.compile(r"\bfresh\b"))
    expect(second.locator(".who")).to_have_text("buyer@client.example")
    expect(second.locator(".body")).to_have_text(
        "Calm voice, and you summarised every ten minutes."
    )
    expect(desk.locator("[data-progress]")).to_have_text("2 of 2 answered")
    assert_not_reloaded(desk)
    # It resumed after the last event it had, rather than starting over.
    assert len(sockets) == 2, sockets
    opened_after, resumed_after = (int(url.rsplit("after=", 1)[1]) for url in sockets)
    assert resumed_after > opened_after

    # Priya closes the request from another tab; the open page follows.
    other_tab = desk_context.new_page()
    other_tab.goto(f"/requests/{request_id}")
    other_tab.get_by_role("button", name="Close this request").click()
    expect(other_tab.locator("[data-status]")).to_have_text("closed")
    expect(desk.locator("[data-status]")).to_have_text("closed")
    expect(desk.get_by_role("button", name="Close this request")).to_have_count(0)
    assert_not_reloaded(desk)


def test_new_invitation_appears_in_the_open_inbox(
    people: LiveServer, new_context: Callable[..., Any]
) -> None:
    tom_context = new_context(DESKTOP)
    log_in(tom_context, "tom@example.com")
    inbox = tom_context.new_page()
    inbox.goto("/inbox")
    expect(inbox.locator("#live-status")).to_have_text("live")
    expect(inbox.get_by_text("Nobody is waiting for your feedback right now.")).to_be_visible()
    mark_page(inbox)

    priya = new_context(DESKTOP)
    log_in(priya, "priya@example.com")
    created = priya.request.post(
        "/api/v1/requests",
        data={
            "question": "Was my design review easy to follow?",
            "context": "Search indexing redesign",
            "reviewers": ["tom@example.com"],
        },
    )
    assert created.status == 201, created.text()

    card = inbox.locator("#inbox .request-card")
    expect(card).to_have_count(1)
    expect(card).to_have_class(re.compile(r"\bfresh\b"))
    expect(card).to_contain_text("Priya Natarajan asks")
    expect(card.get_by_role("link", name="Was my design review easy to follow?")).to_be_visible()
    expect(card).to_contain_text("Search indexing redesign")
    expect(inbox.get_by_text("Nobody is waiting for your feedback right now.")).to_have_count(0)
    assert_not_reloaded(inbox)

    # The new card leads to a working answer page.
    card.get_by_role("link").click()
    expect(inbox.locator("h1")).to_have_text("Was my design review easy to follow?")
