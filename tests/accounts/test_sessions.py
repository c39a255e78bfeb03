"""Logging in and out, by API and by the HTML form."""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func
from sqlmodel import select
from starlette.testclient import TestClient

from feedback import clock
from feedback.accounts.auth import COOKIE
from feedback.app import create_app
from feedback.models.people import LoginSession, Person
from tests.conftest import make_settings
from tests.factories import PASSWORD, add_person, log_in

WRONG = "The email or password is wrong."


@pytest.fixture
def priya(client: TestClient) -> Person:
    manager = add_person(client, "sam@example.com", name="Sam Okafor", role="manager")
    assert manager.role == "manager"
    return add_person(
        client, "priya@example.com", name="Priya Natarajan", manager_email="sam@example.com"
    )


def _session_rows(client: TestClient) -> int:
    db = client.app_state["app"].db

    async def count() -> int:
        async with db.transaction(write=False) as session:
            return int((await session.exec(select(func.count()).select_from(LoginSession))).one())

    assert client.portal is not None
    return client.portal.call(count)


def test_login_sets_an_httponly_lax_cookie_that_is_not_the_person_id(
    client: TestClient, priya: Person
) -> None:
    response = client.post(
        "/api/v1/session", json={"email": "Priya@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["email"] == "priya@example.com"

    header = response.headers["set-cookie"]
    morsel = SimpleCookie(header)[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/"
    value = morsel.value
    assert len(value) >= 40  # a random token, not something guessable
    assert str(priya.id) not in value
    assert priya.id.hex not in value
    assert "priya" not in value.lower()


def test_plain_http_base_url_does_not_mark_the_cookie_secure(
    client: TestClient, priya: Person
) -> None:
    # base_url is http://testserver here; a Secure cookie would never come back over http.
    response = client.post("/api/v1/session", json={"email": priya.email, "password": PASSWORD})
    assert "secure" not in response.headers["set-cookie"].lower()


def test_wrong_password_and_unknown_email_get_the_same_401(
    client: TestClient, priya: Person
) -> None:
    wrong_password = client.post(
        "/api/v1/session", json={"email": "priya@example.com", "password": "not-her-password"}
    )
    unknown_email = client.post(
        "/api/v1/session", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert (
        wrong_password.json() == unknown_email.json() == {"error": "unauthorized", "detail": WRONG}
    )
    assert COOKIE not in wrong_password.cookies
    assert COOKIE not in unknown_email.cookies
    assert _session_rows(client) == 0


def test_me_returns_exactly_the_public_fields(client: TestClient, priya: Person) -> None:
    log_in(client, "priya@example.com")
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json() == {
        "id": str(priya.id),
        "email": "priya@example.com",
        "name": "Priya Natarajan",
        "role": "employee",
        "manager_id": str(priya.manager_id),
    }


def test_me_without_a_session_is_401(client: TestClient) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_logout_ends_the_session_on_the_server_so_a_replayed_cookie_fails(
    client: TestClient, priya: Person
) -> None:
    log_in(client, "priya@example.com")
    stolen = client.cookies[COOKIE]
    assert _session_rows(client) == 1

    response = client.delete("/api/v1/session")
    assert response.status_code == 204
    assert _session_rows(client) == 0
    assert client.get("/api/v1/me").status_code == 401

    # Someone who kept a copy of the cookie gets nothing either.
    client.cookies.set(COOKIE, stolen)
    replay = client.get("/api/v1/me")
    assert replay.status_code == 401


def test_logging_out_one_browser_keeps_the_other_logged_in(
    client: TestClient, priya: Person
) -> None:
    log_in(client, "priya@example.com")
    laptop = client.cookies[COOKIE]
    client.cookies.clear()
    log_in(client, "priya@example.com")
    phone = client.cookies[COOKIE]
    assert laptop != phone

    client.delete("/api/v1/session")
    client.cookies.set(COOKIE, laptop)
    assert client.get("/api/v1/me").status_code == 200
    client.cookies.set(COOKIE, phone)
    assert client.get("/api/v1/me").status_code == 401


def test_a_session_expires_after_the_configured_days(client: TestClient, priya: Person) -> None:
    log_in(client, "priya@example.com")
    days = client.app_state["app"].settings.session_days
    with clock.frozen_at(clock.now() + timedelta(days=days - 1)):
        assert client.get("/api/v1/me").status_code == 200
    with clock.frozen_at(clock.now() + timedelta(days=days, minutes=1)):
        assert client.get("/api/v1/me").status_code == 401


def test_a_made_up_cookie_is_not_a_session(client: TestClient, priya: Person) -> None:
    client.cookies.set(COOKIE, str(priya.id))
    assert client.get("/api/v1/me").status_code == 401


def test_login_form_success_redirects_to_next_with_a_session(
    client: TestClient, priya: Person
) -> None:
    page = client.get("/login?next=/inbox")
    assert page.status_code == 200
    assert 'name="next" value="/inbox"' in page.text

    response = client.post(
        "/login",
        data={"email": "priya@example.com", "password": PASSWORD, "next": "/inbox"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/inbox"
    assert COOKIE in response.cookies
    assert client.get("/api/v1/me").json()["email"] == "priya@example.com"


def test_login_form_failure_shows_the_message_and_keeps_the_email(
    client: TestClient, priya: Person
) -> None:
    response = client.post(
        "/login",
        data={"email": "priya@example.com", "password": "wrong-password", "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert WRONG in response.text
    assert 'value="priya@example.com"' in response.text
    assert COOKIE not in response.cookies
    assert client.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize(
    "next_url",
    ["//evil.example", "//evil.example/login", "https://evil.example/", "/\\evil.example", "evil"],
)
def test_login_never_redirects_to_another_site(
    client: TestClient, priya: Person, next_url: str
) -> None:
    page = client.get("/login", params={"next": next_url})
    assert "evil" not in page.text.split('name="next"', 1)[1].split(">", 1)[0]

    response = client.post(
        "/login",
        data={"email": "priya@example.com", "password": PASSWORD, "next": next_url},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


@pytest.mark.parametrize(
    "next_url", ["/\t/evil.example", "/\n/evil.example", "/\r\nSet-Cookie: stolen=1"]
)
def test_control_characters_in_next_cannot_make_an_off_site_redirect(
    client: TestClient, priya: Person, next_url: str
) -> None:
    response = client.post(
        "/login",
        data={"email": "priya@example.com", "password": PASSWORD, "next": next_url},
        follow_redirects=False,
    )
    location = response.headers["location"]
    # Browsers drop raw tabs and newlines from URLs, so a raw "/\t/x" would become "//x";
    # percent-encoded, they stay part of a local path.
    assert not any(c in location for c in "\t\r\n")
    assert location.startswith("/") and not location.startswith("//")
    assert urlsplit(location).netloc == ""
    assert "stolen" not in str(response.headers.get_list("set-cookie"))


def test_logout_form_ends_the_session_and_returns_to_login(
    client: TestClient, priya: Person
) -> None:
    log_in(client, "priya@example.com")
    response = client.post("/logout", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert _session_rows(client) == 0
    assert client.get("/api/v1/me").status_code == 401


def test_on_https_both_the_login_cookie_and_its_deletion_are_secure(
    database_url: str, priya: Person
) -> None:
    # A deletion without Secure would be refused by browsers for a Secure cookie, leaving
    # the old one in place on a site served over https.
    settings = make_settings(database_url, base_url="https://testserver")
    with TestClient(create_app(settings), base_url="https://testserver") as https:
        login = https.post("/api/v1/session", json={"email": priya.email, "password": PASSWORD})
        assert SimpleCookie(login.headers["set-cookie"])[COOKIE]["secure"] is True
        logout = https.post("/logout", follow_redirects=False)
        deletion = SimpleCookie(logout.headers["set-cookie"])[COOKIE]
        assert deletion.value == ""
        assert deletion["secure"] is True
