"""Service endpoints: health and the OpenAPI document."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from feedback.api.openapi import openapi_document


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/api/v1/openapi.json", openapi, methods=["GET"]),
]
