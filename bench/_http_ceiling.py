"""The HTTP ceiling for B5: the same route shape through Starlette and uvicorn, no database.

PUT /api/v1/invitations/{token}/response parses and checks the JSON body and answers 201
with a small JSON document, as feedback does, but stores nothing. Run with the same
uvicorn options as feedback; it is the most any Python ASGI app on this core could ingest.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def respond(request: Request) -> Response:
    data = await request.json()
    if not isinstance(data, dict) or not isinstance(data.get("body"), str):
        return JSONResponse({"detail": "body"}, status_code=422)
    answer = {"rating": data.get("rating"), "body": data["body"], "released": False}
    return JSONResponse({"status": "answered", "answer": answer}, status_code=201)


app = Starlette(
    routes=[
        Route("/healthz", healthz),
        Route("/api/v1/invitations/{token}/response", respond, methods=["PUT"]),
    ]
)
