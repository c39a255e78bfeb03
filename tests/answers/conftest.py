"""A requester, Priya, who has asked for feedback; reviewers hold the mailed links."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from tests.answers.links import ask_with_links
from tests.factories import add_person, log_in

QUESTION = "How did I handle the price objection?"
CONTEXT = "Acme renewal call, Tuesday"


@dataclass
class Asked:
    client: TestClient
    request_id: str
    tokens: dict[str, str]

    def as_requester(self) -> TestClient:
        self.client.cookies.clear()
        log_in(self.client, "priya@example.com")
        return self.client

    def as_stranger(self) -> TestClient:
        """A reviewer who only has the link: no account, no cookie."""
        self.client.cookies.clear()
        return self.client


@pytest.fixture
def priya(client: TestClient) -> TestClient:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    log_in(client, "priya@example.com")
    return client


@pytest.fixture
def asked(priya: TestClient) -> Asked:
    """A named request to two reviewers outside the directory; the caller has no session."""
    request_id, tokens = ask_with_links(
        priya,
        ["buyer@client.example", "coach@outside.example"],
        question=QUESTION,
        context=CONTEXT,
        tags=["objection handling"],
    )
    priya.cookies.clear()
    return Asked(priya, request_id, tokens)
