"""Answering: the reviewer link (page and JSON twins) and the logged-in inbox."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from feedback.accounts.auth import current_person, require_person
from feedback.answers import idempotency, service
from feedback.answers.schemas import AnswerSaved, AnswerWrite, Declined, InvitationPublic
from feedback.errors import Conflict, Gone, Invalid
from feedback.live import service as live
from feedback.models.requests import Invitation
from feedback.web import json_body, parse, path_uuid, render, state

Finder = Callable[[AsyncSession], Awaitable[Invitation]]

NO_STORE = {"cache-control": "no-store"}


def _by_token(request: Request) -> Finder:
    token = str(request.path_params["token"])
    return lambda session: service.by_token(session, token=token)


def _in_inbox(request: Request) -> Finder:
    async def find(session: AsyncSession) -> Invitation:
        reviewer = await require_person(request)
        return await service.for_reviewer(
            session, reviewer=reviewer, invitation_id=path_uuid(request, "id")
        )

    return find


async def _show(request: Request, find: Finder) -> InvitationPublic:
    async with state(request).db.transaction(write=False) as session:
        return await service.view(session, invitation=await find(session))


async def _save(request: Request, find: Finder, data: AnswerWrite) -> tuple[AnswerSaved, bool]:
    async with state(request).db.transaction() as session:
        invitation = await find(session)
        mine, created = await service.save_answer(session, invitation=invitation, data=data)
        return AnswerSaved(status=invitation.status.value, answer=mine), created


async def _save_json(request: Request, find: Finder) -> Response:
    """PUT .../response: saves, or replays the outcome of an earlier use of its Idempotency-Key."""
    data = await json_body(request, AnswerWrite)
    key = idempotency.key_of(request)
    async with state(request).db.transaction() as session:
        invitation = await find(session)
        if key is not None:
            await service.lock_request(session, invitation)
            earlier = await idempotency.stored(session, invitation=invitation, key=key, data=data)
            if earlier is not None:
                return JSONResponse(earlier.body, status_code=earlier.status_code)
        mine, created = await service.save_answer(session, invitation=invitation, data=data)
        body = AnswerSaved(status=invitation.status.value, answer=mine).model_dump(mode="json")
        status_code = 201 if created else 200
        if key is not None:
            await idempotency.remember(
                session,
                invitation=invitation,
                key=key,
                data=data,
                status_code=status_code,
                body=body,
            )
    return JSONResponse(body, status_code=status_code)


async def _decline(request: Request, find: Finder) -> Declined:
    async with state(request).db.transaction() as session:
        invitation = await service.decline(session, invitation=await find(session))
        return Declined(status=invitation.status.value)


# JSON


async def api_invitation(request: Request) -> Response:
    shown = await _show(request, _by_token(request))
    return JSONResponse(shown.model_dump(mode="json"), headers=NO_STORE)


async def api_invitation_response(request: Request) -> Response:
    return await _save_json(request, _by_token(request))


async def api_invitation_decline(request: Request) -> Response:
    return JSONResponse((await _decline(request, _by_token(request))).model_dump())


async def api_inbox(request: Request) -> Response:
    person = await require_person(request)
    async with state(request).db.transaction(write=False) as session:
        items = await service.inbox(session, reviewer=person)
    return JSONResponse({"invitations": [i.model_dump(mode="json") for i in items]})


async def api_inbox_response(request: Request) -> Response:
    await require_person(request)
    return await _save_json(request, _in_inbox(request))


async def api_inbox_decline(request: Request) -> Response:
    await require_person(request)
    return JSONResponse((await _decline(request, _in_inbox(request))).model_dump())


# Pages


async def _answer_page(
    request: Request, find: Finder, *, action_url: str, template: str
) -> Response:
    """GET shows the form; POST saves or declines. GET never changes anything."""
    notice = error = None
    status_code = 200
    form: dict[str, str] = {}
    if request.method == "POST":
        submitted = await request.form()
        form = {key: str(value) for key, value in submitted.items()}
        try:
            if form.get("action") == "decline":
                await _decline(request, find)
                notice = "You declined. Thank you for letting them know."
            else:
                rating = form.get("rating") or None
                if rating is not None and not rating.isdigit():
                    raise Invalid("rating: choose 1 to 5, or no rating", field="rating")
                data = parse(
                    AnswerWrite,
                    {"rating": int(rating) if rating else None, "body": form.get("body", "")},
                )
                _saved, created = await _save(request, find, data)
                notice = (
                    "Thank you, your answer was sent." if created else "Your answer was updated."
                )
                form = {}
        except (Invalid, Conflict) as exc:
            error, status_code = exc, exc.status
        except Gone:
            raise
    shown = await _show(request, find)
    return render(
        request,
        template,
        {
            "invitation": shown,
            "action_url": action_url,
            "notice": notice,
            "error": error,
            "form": form,
        },
        status_code=status_code,
    )


async def reviewer_page(request: Request) -> Response:
    response = await _answer_page(
        request, _by_token(request), action_url=request.url.path, template="answers/answer.html"
    )
    response.headers.update(NO_STORE)
    return response


async def inbox_page(request: Request) -> Response:
    person = await current_person(request)
    if person is None:
        return RedirectResponse("/login?next=/inbox", status_code=303)
    async with state(request).db.transaction(write=False) as session:
        items = await service.inbox(session, reviewer=person)
        seq = await live.last_seq(session, person_id=person.id)
    return render(request, "answers/inbox.html", {"invitations": items, "live_seq": seq})


async def inbox_answer_page(request: Request) -> Response:
    if await current_person(request) is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return await _answer_page(
        request, _in_inbox(request), action_url=request.url.path, template="answers/answer.html"
    )


routes = [
    Route("/api/v1/invitations/{token}", api_invitation, methods=["GET"]),
    Route("/api/v1/invitations/{token}/response", api_invitation_response, methods=["PUT"]),
    Route("/api/v1/invitations/{token}/decline", api_invitation_decline, methods=["POST"]),
    Route("/api/v1/inbox", api_inbox, methods=["GET"]),
    Route("/api/v1/inbox/{id}/response", api_inbox_response, methods=["PUT"]),
    Route("/api/v1/inbox/{id}/decline", api_inbox_decline, methods=["POST"]),
    Route("/r/{token}", reviewer_page, methods=["GET", "POST"]),
    Route("/inbox", inbox_page, methods=["GET"]),
    Route("/inbox/{id}", inbox_answer_page, methods=["GET", "POST"]),
]
