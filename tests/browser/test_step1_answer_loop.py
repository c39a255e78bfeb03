"""Step 1 in a real browser: ask on a laptop, answer from the emailed link on a phone."""

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


def unlabelled_fields(page: Any) -> list[str]:
    """Visible form controls that a screen reader would announce without a name."""
    return page.evaluate(
        """() => [...document.querySelectorAll('input, textarea, select')]
            .filter((f) => f.type !== 'hidden' && f.offsetParent !== null)
            .filter((f) => !(f.labels && f.labels.length) && !f.getAttribute('aria-label'))
            .map((f) => f.outerHTML)"""
    )


def test_reviewer_answers_on_a_phone_and_the_requester_sees_it_with_name_and_rating(
    people: LiveServer, new_context: Callable[..., Any], mailbox: Mailbox
) -> None:
    desk = new_context(DESKTOP).new_page()
    desk.goto("/requests/new")
    # Not logged in yet: the form sends her to log in and back.
    expect(desk).to_have_url(re.compile(r"/login\?next=/requests/new$"))
    desk.get_by_label("Email").fill("priya@example.com")
    desk.get_by_label("Password").fill("correct-horse-battery")
    desk.get_by_role("button", name="Log in").click()
    expect(desk.get_by_role("heading", name="Ask for feedback")).to_be_visible()

    desk.get_by_label("Your question").fill("How well did I handle the price objection?")
    desk.get_by_label("Context").fill("Acme renewal call")
    desk.get_by_label("Tags").fill("objection handling, presenting")
    desk.locator("#reviewers").fill("tom@example.com, buyer@client.example")
    desk.get_by_role("button", name="Send request").click()
    expect(
        desk.get_by_role("heading", name="How well did I handle the price objection?")
    ).to_be_visible()
    expect(desk.locator("[data-progress]")).to_have_text("0 of 2 answered")
    expect(desk.locator(".tags li")).to_have_text(["objection handling", "presenting"])
    request_url = desk.url

    link = mailbox.link_for("tom@example.com")
    phone = new_context(PHONE).new_page()
    phone.goto(link)
    expect(phone.locator(".answer-page header")).to_contain_text(
        "Priya Natarajan asks for your feedback"
    )
    expect(phone.locator("h1")).to_have_text("How well did I handle the price objection?")
    expect(phone.get_by_text("Acme renewal call")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert unlabelled_fields(phone) == []

    phone.get_by_label("4", exact=True).check()
    phone.get_by_label("Your answer").fill(
        "You named the cost of waiting; next time pause after the number."
    )
    phone.get_by_role("button", name="Send answer").click()
    expect(phone.get_by_role("status")).to_have_text("Thank you, your answer was sent.")
    expect(phone.get_by_label("4", exact=True)).to_be_checked()
    expect(phone.get_by_role("button", name="Update answer")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    desk.goto(request_url)
    answer = desk.locator("#responses .response")
    expect(answer).to_have_count(1)
    expect(answer.locator(".who")).to_have_text("Tom Becker tom@example.com")
    expect(answer.get_by_label("Rating 4 of 5")).to_be_visible()
    expect(answer.locator(".body")).to_have_text(
        "You named the cost of waiting; next time pause after the number."
    )
    expect(desk.locator("[data-progress]")).to_have_text("1 of 2 answered")


def test_reviewer_page_works_without_javascript(
    people: LiveServer, new_context: Callable[..., Any], mailbox: Mailbox
) -> None:
    desk_context = new_context(DESKTOP)
    log_in(desk_context, "priya@example.com")
    created = desk_context.request.post(
        "/api/v1/requests",
        data={"question": "Did I listen enough?", "reviewers": ["tom@example.com"]},
    )
    assert created.status == 201, created.text()

    phone = new_context(PHONE, java_script_enabled=False).new_page()
    phone.goto(mailbox.link_for("tom@example.com"))
    expect(phone.locator("h1")).to_have_text("Did I listen enough?")
    phone.get_by_label("2", exact=True).check()
    phone.get_by_label("Your answer").fill("You cut in twice while they were explaining.")
    phone.get_by_role("button", name="Send answer").click()
    expect(phone.get_by_role("status")).to_have_text("Thank you, your answer was sent.")

    detail = desk_context.request.get(f"/api/v1/requests/{created.json()['id']}").json()
    assert [(r["reviewer"]["name"], r["rating"], r["body"]) for r in detail["responses"]] == [
        ("Tom Becker", 2, "You cut in twice while they were explaining.")
    ]
