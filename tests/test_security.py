"""Security headers on every page, refusal of cross-site writes, and how passwords are kept."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from feedback.accounts.auth import COOKIE
from feedback.models.people import Person
from tests.answers.links import ask_with_links
from tests.factories import PASSWORD, add_person, log_in

EVIL = "http://evil.example"


@pytest.fixture
def priya(client: TestClient) -> TestClient:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    log_in(client, "priya@example.com")
    return client


def _pages(client: TestClient) -> dict[str, object]:
    request_id, tokens = ask_with_links(client, ["buyer@client.example"])
    return {
        "/": client.get("/"),
        "/login": client.get("/login"),
        "/inbox": client.get("/inbox"),
        "/requests/new": client.get("/requests/new"),
        f"/requests/{request_id}": client.get(f"/requests/{request_id}"),
        "/r/{token}": client.get(f"/r/{tokens['buyer@client.example']}"),
        "404 page": client.get("/r/no-such-token"),
        "/api/v1/me": client.get("/api/v1/me"),
        "/api/v1/requests": client.get("/api/v1/requests"),
        "/healthz": client.get("/healthz"),
    }


def test_every_response_carries_a_strict_csp_and_nosniff(priya: TestClient) -> None:
    for name, response in _pages(priya).items():
        headers = response.headers  # type: ignore[attr-defined]
        csp = headers.get("content-security-policy")
        assert csp, f"{name} has no CSP"
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, name
        directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
        assert directives["default-src"] == ["'self'"], name
        assert directives["script-src"] == ["'self'"], name
        assert directives["frame-ancestors"] == ["'none'"], name
        assert directives["object-src"] == ["'none'"], name
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["referrer-policy"] == "no-referrer", name


def test_pages_need_no_inline_script_or_style_that_the_csp_would_block(priya: TestClient) -> None:
    for name, response in _pages(priya).items():
        if "text/html" not in response.headers["content-type"]:  # type: ignore[attr-defined]
            continue
        html = response.text  # type: ignore[attr-defined]
        for script in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in script, f"{name}: inline script {script}"
        assert not re.search(r"\son[a-z]+\s*=", html), f"{name}: inline event handler"
        assert not re.search(r"\sstyle\s*=", html), f"{name}: inline style attribute"
        assert "<style" not in html, f"{name}: inline style element"


CROSS_SITE = [
    pytest.param({"Origin": EVIL}, id="foreign-origin"),
    pytest.param({"Sec-Fetch-Site": "cross-site"}, id="sec-fetch-cross-site"),
    pytest.param({"Sec-Fetch-Site": "same-site", "Origin": "http://sub.testserver"}, id="sibling"),
    pytest.param({"Origin": "null"}, id="opaque-origin-without-fetch-metadata"),
    pytest.param({"Origin": "http://testserver.evil.example"}, id="lookalike-origin"),
]


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_a_cross_site_request_cannot_create_anything(
    priya: TestClient, headers: dict[str, str]
) -> None:
    body = {"question": "Forged?", "reviewers": ["attacker@evil.example"]}
    response = priya.post("/api/v1/requests", json=body, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    form = priya.post(
        "/requests/new",
        data={"question": "Forged?", "reviewers": "attacker@evil.example"},
        headers=headers,
        follow_redirects=False,
    )
    assert form.status_code == 403
    assert priya.get("/api/v1/requests").json()["requests"] == []


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_a_cross_site_page_cannot_answer_log_in_or_log_out(
    priya: TestClient, headers: dict[str, str]
) -> None:
    _request_id, tokens = ask_with_links(priya, ["buyer@client.example"])
    token = tokens["buyer@client.example"]
    assert priya.post(f"/r/{token}", data={"body": "Forged."}, headers=headers).status_code == 403
    put = priya.put(
        f"/api/v1/invitations/{token}/response", json={"body": "Forged."}, headers=headers
    )
    assert put.status_code == 403
    decline = priya.post(f"/api/v1/invitations/{token}/decline", headers=headers)
    assert decline.status_code == 403
    assert priya.get(f"/api/v1/invitations/{token}").json()["status"] == "pending"

    assert priya.delete("/api/v1/session", headers=headers).status_code == 403
    assert priya.post("/logout", headers=headers).status_code == 403
    assert priya.get("/api/v1/me").status_code == 200

    # Login CSRF: an attacker must not log a victim into the attacker's account.
    priya.cookies.clear()
    login = priya.post(
        "/api/v1/session",
        json={"email": "priya@example.com", "password": PASSWORD},
        headers=headers,
    )
    assert login.status_code == 403
    assert COOKIE not in login.cookies


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-browser-headers"),
        pytest.param({"Origin": "http://testserver"}, id="our-origin"),
        pytest.param({"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}, id="both"),
        pytest.param({"Origin": "null", "Sec-Fetch-Site": "same-origin"}, id="no-referrer-form"),
        pytest.param({"Sec-Fetch-Site": "none"}, id="typed-by-the-user"),
    ],
)
def test_a_same_origin_request_passes(priya: TestClient, headers: dict[str, str]) -> None:
    body = {"question": "Real?", "reviewers": ["buyer@client.example"]}
    response = priya.post("/api/v1/requests", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert len(priya.get("/api/v1/requests").json()["requests"]) == 1


def test_reading_is_allowed_from_anywhere_but_reveals_nothing_without_a_session(
    client: TestClient,
) -> None:
    response = client.get("/api/v1/requests", headers={"Origin": EVIL})
    assert response.status_code == 401
    assert "access-control-allow-origin" not in response.headers


def test_passwords_are_stored_as_salted_argon2id_hashes(client: TestClient) -> None:
    add_person(client, "priya@example.com", name="Priya Natarajan")
    add_person(client, "tom@example.com", name="Tom Becker")
    db = client.app_state["app"].db

    async def hashes() -> list[str]:
        async with db.transaction(write=False) as session:
            people = (await session.exec(select(Person))).all()
            return [p.password_hash or "" for p in people]

    assert client.portal is not None
    stored = client.portal.call(hashes)
    assert len(stored) == 2
    for value in stored:
        assert value.startswith("$argon2id$")
        assert PASSWORD not in value
    # Same password, different salt: equal passwords do not show as equal hashes.
    assert stored[0] != stored[1]
