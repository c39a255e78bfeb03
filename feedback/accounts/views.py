"""Logging in and out, by API and by form."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from feedback.accounts import service
from feedback.accounts.auth import COOKIE, current_person, require_person
from feedback.errors import Invalid, Unauthorized
from feedback.people.schemas import PersonPublic
from feedback.web import json_body, parse, render, state


class SessionCreate(BaseModel):
    """Body of `POST /api/v1/session`."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1000)


def _set_cookie(request: Request, response: Response, token: str) -> None:
    settings = state(request).settings
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.session_days * 86400,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


async def _log_in(request: Request, data: SessionCreate) -> tuple[str, PersonPublic]:
    async with state(request).db.transaction() as session:
        token, person = await service.log_in(
            session,
            email=data.email,
            password=data.password,
            days=state(request).settings.session_days,
        )
        return token, PersonPublic.model_validate(person)


async def create_session(request: Request) -> Response:
    token, person = await _log_in(request, await json_body(request, SessionCreate))
    response = JSONResponse(person.model_dump(mode="json"))
    _set_cookie(request, response, token)
    return response


async def _end_session(request: Request, response: Response) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        async with state(request).db.transaction() as session:
            await service.log_out(session, token=token)
    response.delete_cookie(
        COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=state(request).settings.secure_cookies,
    )
    return response


async def delete_session(request: Request) -> Response:
    return await _end_session(request, Response(status_code=204))


async def me(request: Request) -> Response:
    person = await require_person(request)
    return JSONResponse(PersonPublic.model_validate(person).model_dump(mode="json"))


async def login_page(request: Request) -> Response:
    if request.method == "GET":
        if await current_person(request) is not None:
            return RedirectResponse("/", status_code=303)
        return render(request, "accounts/login.html", {"next": _safe_next(request)})
    form = await request.form()
    next_url = _safe_next(request, str(form.get("next", "")))
    try:
        data = parse(
            SessionCreate, {"email": form.get("email", ""), "password": form.get("password", "")}
        )
        token, _person = await _log_in(request, data)
    except (Unauthorized, Invalid) as exc:
        message = exc.detail if isinstance(exc, Unauthorized) else "Enter your email and password."
        return render(
            request,
            "accounts/login.html",
            {"error": message, "email": form.get("email", ""), "next": next_url},
            status_code=401 if isinstance(exc, Unauthorized) else 422,
        )
    response = RedirectResponse(next_url, status_code=303)
    _set_cookie(request, response, token)
    return response


def _safe_next(request: Request, value: str | None = None) -> str:
    target = value if value is not None else request.query_params.get("next", "")
    # Only local paths: never bounce a login to another site.
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


async def logout_page(request: Request) -> Response:
    return await _end_session(request, RedirectResponse("/login", status_code=303))


routes = [
    Route("/api/v1/session", create_session, methods=["POST"]),
    Route("/api/v1/session", delete_session, methods=["DELETE"]),
    Route("/api/v1/me", me, methods=["GET"]),
    Route("/login", login_page, methods=["GET", "POST"]),
    Route("/logout", logout_page, methods=["POST"]),
]
