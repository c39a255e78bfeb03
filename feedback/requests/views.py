"""Asking: the API and the pages for one's own requests."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from feedback.accounts.auth import current_person, require_person
from feedback.answers import service as answers
from feedback.errors import Invalid
from feedback.live import service as live
from feedback.requests import service
from feedback.requests.schemas import RequestCreate, RequestCreated
from feedback.web import json_body, parse, path_uuid, render, state


async def _create(request: Request, data: RequestCreate) -> RequestCreated:
    person = await require_person(request)
    app = state(request)
    async with app.db.transaction() as session:
        created, invitations = await service.create_request(
            session,
            requester=person,
            data=data,
            anonymity_k=app.settings.anonymity_k,
            outbox=app.outbox,
        )
        return RequestCreated(
            id=created.id, status=created.status.value, reviewers=len(invitations)
        )


async def api_create(request: Request) -> Response:
    await require_person(request)
    created = await _create(request, await json_body(request, RequestCreate))
    return JSONResponse(created.model_dump(mode="json"), status_code=201)


async def api_list(request: Request) -> Response:
    person = await require_person(request)
    async with state(request).db.transaction(write=False) as session:
        mine = await service.list_mine(session, requester=person)
    return JSONResponse({"requests": [r.model_dump(mode="json") for r in mine]})


async def api_detail(request: Request) -> Response:
    person = await require_person(request)
    async with state(request).db.transaction(write=False) as session:
        own = await service.get_own(session, requester=person, request_id=path_uuid(request, "id"))
        detail = await service.detail(session, request=own)
    return JSONResponse(detail.model_dump(mode="json"))


async def api_close(request: Request) -> Response:
    person = await require_person(request)
    async with state(request).db.transaction() as session:
        closed = await service.close_request(
            session, requester=person, request_id=path_uuid(request, "id")
        )
        detail = await service.detail(session, request=closed)
    return JSONResponse(detail.model_dump(mode="json"))


# Pages


async def _login_redirect(request: Request) -> Response | None:
    if await current_person(request) is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return None


async def home(request: Request) -> Response:
    if (redirect := await _login_redirect(request)) is not None:
        return redirect
    person = await require_person(request)
    async with state(request).db.transaction(write=False) as session:
        mine = await service.list_mine(session, requester=person)
        waiting = await answers.pending_count(session, reviewer=person)
        seq = await live.last_seq(session, person_id=person.id)
    return render(
        request, "requests/list.html", {"requests": mine, "waiting": waiting, "live_seq": seq}
    )


def _form_data(form: FormData) -> dict[str, Any]:
    def split(name: str) -> list[str]:
        return [
            part.strip() for part in re.split(r"[,;\n]", str(form.get(name, ""))) if part.strip()
        ]

    data: dict[str, Any] = {
        "question": str(form.get("question", "")),
        "context": str(form.get("context", "")) or None,
        "tags": split("tags"),
        "reviewers": split("reviewers"),
        "anonymous": form.get("anonymous") == "on",
    }
    due = str(form.get("due_date", "")).strip()
    if due:
        try:
            day = datetime.strptime(due, "%Y-%m-%d").date()
        except ValueError:
            raise Invalid("due_at: use a date like 2026-12-31", field="due_at") from None
        data["due_at"] = datetime.combine(day, time(23, 59), tzinfo=UTC)
    return data


async def new_page(request: Request) -> Response:
    if (redirect := await _login_redirect(request)) is not None:
        return redirect
    if request.method == "GET":
        return render(
            request, "requests/new.html", {"form": {}, "k": state(request).settings.anonymity_k}
        )
    form = await request.form()
    try:
        created = await _create(request, parse(RequestCreate, _form_data(form)))
    except Invalid as exc:
        return render(
            request,
            "requests/new.html",
            {"form": dict(form), "error": exc, "k": state(request).settings.anonymity_k},
            status_code=422,
        )
    return RedirectResponse(f"/requests/{created.id}", status_code=303)


async def detail_page(request: Request) -> Response:
    if (redirect := await _login_redirect(request)) is not None:
        return redirect
    person = await require_person(request)
    async with state(request).db.transaction(write=False) as session:
        own = await service.get_own(session, requester=person, request_id=path_uuid(request, "id"))
        detail = await service.detail(session, request=own)
        seq = await live.last_seq(session, person_id=person.id)
    return render(request, "requests/detail.html", {"request_detail": detail, "live_seq": seq})


async def close_page(request: Request) -> Response:
    person = await require_person(request)
    async with state(request).db.transaction() as session:
        await service.close_request(session, requester=person, request_id=path_uuid(request, "id"))
    return RedirectResponse(f"/requests/{request.path_params['id']}", status_code=303)


routes = [
    Route("/api/v1/requests", api_create, methods=["POST"]),
    Route("/api/v1/requests", api_list, methods=["GET"]),
    Route("/api/v1/requests/{id}", api_detail, methods=["GET"]),
    Route("/api/v1/requests/{id}/close", api_close, methods=["POST"]),
    Route("/", home, methods=["GET"]),
    Route("/requests/new", new_page, methods=["GET", "POST"]),
    Route("/requests/{id}", detail_page, methods=["GET"]),
    Route("/requests/{id}/close", close_page, methods=["POST"]),
]
