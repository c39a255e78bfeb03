"""The directory, for the reviewer autocomplete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feedback.accounts.auth import require_person
from feedback.people import service
from feedback.people.schemas import DirectoryEntry
from feedback.web import state


async def directory(request: Request) -> Response:
    await require_person(request)
    query = request.query_params.get("q", "")[:100]
    async with state(request).db.transaction(write=False) as session:
        people = await service.search_directory(session, query=query, limit=20)
        entries = [DirectoryEntry.model_validate(p).model_dump() for p in people]
    return JSONResponse({"people": entries})


routes = [Route("/api/v1/people", directory, methods=["GET"])]
