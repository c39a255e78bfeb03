"""Request plumbing shared by every domain's views: state, bodies, rendering, errors."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.templating import Jinja2Templates

from feedback.db import Database
from feedback.errors import FeedbackError, Invalid, NotFound
from feedback.live.broker import Broker
from feedback.live.hub import Hub
from feedback.mail.outbox import Outbox
from feedback.settings import Settings

log = logging.getLogger("feedback")
Model = TypeVar("Model", bound=BaseModel)
MAX_JSON_BYTES = 64 * 1024


@dataclass
class AppState:
    """Everything the lifespan builds; views reach it as `state(request)`."""

    settings: Settings
    db: Database
    hub: Hub
    broker: Broker
    outbox: Outbox
    templates: Jinja2Templates


def state(conn: HTTPConnection) -> AppState:
    return conn.state.app  # type: ignore[no-any-return]


def wants_json(conn: HTTPConnection) -> bool:
    return conn.url.path.startswith("/api/") or "application/json" in conn.headers.get("accept", "")


def path_uuid(request: Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(request.path_params[name]))
    except ValueError:
        raise NotFound("No such item.") from None


def validation_error(exc: ValidationError) -> Invalid:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "is not a known field"
    elif first["type"] == "missing":
        message = "is required"
    return Invalid(f"{field}: {message}", field=field)


def parse(model: type[Model], data: Any) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


async def json_body(request: Request, model: type[Model]) -> Model:
    raw = await request.body()
    if len(raw) > MAX_JSON_BYTES:
        raise Invalid("The request body is too large.", field="body")
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        raise Invalid("The request body is not valid JSON.", field="body") from None
    if not isinstance(data, dict):
        raise Invalid("The request body must be a JSON object.", field="body")
    return parse(model, data)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    ctx = {"person": getattr(request.state, "person", None), "settings": state(request).settings}
    ctx.update(context or {})
    return state(request).templates.TemplateResponse(request, name, ctx, status_code=status_code)


def error_response(request: Request, exc: FeedbackError) -> Response:
    body: dict[str, Any] = {"error": exc.code, "detail": exc.detail}
    if exc.field:
        body["field"] = exc.field
    if wants_json(request):
        return JSONResponse(body, status_code=exc.status)
    return render(request, "error.html", {"error": exc}, status_code=exc.status)


async def handle_feedback_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FeedbackError)
    return error_response(request, exc)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    from starlette.exceptions import HTTPException

    assert isinstance(exc, HTTPException)
    mapped = FeedbackError(exc.detail or "Error")
    mapped.status = exc.status_code
    mapped.code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    return error_response(request, mapped)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    request_id = request.scope.get("request_id", "-")
    log.exception("unhandled error", extra={"request_id": request_id})
    body = {"error": "server_error", "detail": f"Something went wrong (request id {request_id})."}
    if wants_json(request):
        return JSONResponse(body, status_code=500)
    try:
        return render(
            request, "error.html", {"error": FeedbackError(body["detail"])}, status_code=500
        )
    except Exception:
        return HTMLResponse(body["detail"], status_code=500)
