"""The OpenAPI 3.1 document for /api/v1, built from the same pydantic schemas the views use.

Bodies and JSON answers come from the views' own models, so a field renamed in a schema
is renamed here too. What no model describes (the list wrappers, the error body, the live
socket's messages) is written out below; tests/api/test_openapi.py checks all of it against
what the running app really sends.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel

from feedback.accounts.auth import COOKIE
from feedback.accounts.views import SessionCreate
from feedback.answers import idempotency
from feedback.answers.schemas import AnswerSaved, AnswerWrite, Declined, InvitationPublic
from feedback.live.events import EVENT_TYPES
from feedback.people.schemas import DirectoryEntry, PersonPublic
from feedback.requests.schemas import RequestCreate, RequestCreated, RequestDetail, RequestSummary

REF = "#/components/schemas/{model}"
JSON = "application/json"

# Bodies the API accepts: validation-mode schemas, with their defaults and limits.
BODY_MODELS: tuple[type[BaseModel], ...] = (SessionCreate, RequestCreate, AnswerWrite)
# What it returns. Views dump these with model_dump(mode="json"), which writes every field
# (null included), so every property is marked required.
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    PersonPublic,
    DirectoryEntry,
    RequestCreated,
    RequestSummary,
    RequestDetail,
    InvitationPublic,
    AnswerSaved,
    Declined,
)


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _model_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}

    def add(name: str, schema: dict[str, Any]) -> None:
        if name in schemas and schemas[name] != schema:
            # Two models sharing a nested name with different shapes would silently clobber.
            raise RuntimeError(f"two different schemas are both called {name!r}")
        schemas[name] = schema

    for models, mode in ((BODY_MODELS, "validation"), (RESPONSE_MODELS, "serialization")):
        for model in models:
            schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
            defs = schema.pop("$defs", {})
            parts = [(model.__name__, schema), *defs.items()]
            for name, part in parts:
                if mode == "serialization" and "properties" in part:
                    part["required"] = list(part["properties"])
                add(name, part)
    return schemas


def _hand_written_schemas() -> dict[str, Any]:
    uuid = {"type": "string", "format": "uuid"}
    when = {"type": "string", "format": "date-time"}
    nullable_when = {"anyOf": [when, {"type": "null"}]}
    return {
        "Error": {
            "type": "object",
            "description": (
                "Every error under /api/ has this body. `error` is a stable code (invalid, "
                "unauthorized, forbidden, not_found, conflict, gone, unavailable, "
                "method_not_allowed, server_error); `detail` is a sentence for people; "
                "`field` names the offending input when there is one."
            ),
            "required": ["error", "detail"],
            "properties": {
                "error": {"type": "string"},
                "detail": {"type": "string"},
                "field": {"type": "string"},
            },
        },
        "Readiness": {
            "type": "object",
            "description": (
                "Each check's verdict, `ok` or what is wrong. When not ready, also `error` "
                "(unavailable) and `detail` naming the failing checks."
            ),
            "required": ["status", "checks"],
            "properties": {
                "status": {"enum": ["ready", "unavailable"]},
                "checks": {"type": "object", "additionalProperties": {"type": "string"}},
                "error": {"const": "unavailable"},
                "detail": {"type": "string"},
            },
        },
        "RequestList": {
            "type": "object",
            "description": "The caller's own requests, newest first.",
            "required": ["requests"],
            "properties": {"requests": {"type": "array", "items": ref("RequestSummary")}},
        },
        "Inbox": {
            "type": "object",
            "description": "Invitations to the caller on requests still open, newest first.",
            "required": ["invitations"],
            "properties": {"invitations": {"type": "array", "items": ref("InvitationPublic")}},
        },
        "Directory": {
            "type": "object",
            "description": "At most 20 active people whose name or email contains `q`.",
            "required": ["people"],
            "properties": {"people": {"type": "array", "items": ref("DirectoryEntry")}},
        },
        # The live socket's payloads. These are built as dicts in the services, not models.
        "InvitationItem": {
            "type": "object",
            "description": (
                "A new invitation as the reviewer's inbox shows it, sent in invitation.created. "
                "Unlike InvitationPublic it carries the request's `created_at` and no "
                "`request_open` (a new invitation is always on an open request)."
            ),
            "required": [
                "invitation_id",
                "request_id",
                "requester",
                "question",
                "context",
                "tags",
                "anonymous",
                "status",
                "created_at",
                "due_at",
                "answer",
            ],
            "properties": {
                "invitation_id": uuid,
                "request_id": uuid,
                "requester": ref("Requester"),
                "question": {"type": "string"},
                "context": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "anonymous": {"type": "boolean"},
                "status": {"type": "string"},
                "created_at": when,
                "due_at": nullable_when,
                "answer": {"type": "null"},
            },
        },
        "ReleasedResponse": {
            "type": "object",
            "description": (
                "One anonymous answer in a released batch: no id, no reviewer, no time of its "
                "own. `rating` is left out when the reviewer gave none."
            ),
            "required": ["body", "released_at"],
            "properties": {
                "body": {"type": "string"},
                "rating": {"type": "integer", "minimum": 1, "maximum": 5},
                "released_at": when,
            },
        },
        "LiveResync": {
            "type": "object",
            "description": (
                "Sent instead of a replay when the events after `?after` are no longer all "
                "kept (or `after` is ahead of the server): reload state over HTTP, then carry "
                "on from `seq`."
            ),
            "required": ["type", "seq"],
            "properties": {"type": {"const": "resync"}, "seq": {"type": "integer", "minimum": 0}},
        },
    }


# Each live event type, what it means, and the shape of its `data`.
LIVE_EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "request.created": (
        "To the requester: they created a request (also seen by their other open tabs).",
        {"request": ref("RequestSummary")},
    ),
    "request.closed": (
        "To the requester: the request closed. Anonymous answers still below k stay withheld.",
        {"request": ref("RequestSummary")},
    ),
    "request.progress": (
        "To the requester: counts changed. Named requests: an invitee declined. Anonymous "
        "requests: a new answer was received but is not yet released.",
        {"progress": ref("Progress")},
    ),
    "invitation.created": (
        "To a reviewer who is in the directory: they were asked for feedback.",
        {"invitation": ref("InvitationItem")},
    ),
    "invitation.closed": (
        "To each reviewer in the directory: a request they were asked on closed.",
        {"request_id": {"type": "string", "format": "uuid"}},
    ),
    "response.created": (
        "To the requester of a named request: a new answer, with its reviewer.",
        {"response": ref("ResponsePublic"), "progress": ref("Progress")},
    ),
    "response.updated": (
        "To the requester of a named request: a reviewer changed their answer.",
        {"response": ref("ResponsePublic"), "progress": ref("Progress")},
    ),
    "responses.released": (
        "To the requester of an anonymous request: a shuffled batch of at least k answers.",
        {
            "released_at": {"type": "string", "format": "date-time"},
            "responses": {"type": "array", "items": ref("ReleasedResponse")},
            "progress": ref("Progress"),
        },
    ),
}
if set(LIVE_EVENTS) != EVENT_TYPES:
    raise RuntimeError(f"document every live event type: {sorted(EVENT_TYPES ^ set(LIVE_EVENTS))}")


def live_schema_name(event_type: str) -> str:
    """`responses.released` -> `LiveResponsesReleased`."""
    return "Live" + "".join(part.title() for part in event_type.replace(".", "_").split("_"))


def _live_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for event_type, (meaning, data) in LIVE_EVENTS.items():
        schemas[live_schema_name(event_type)] = {
            "type": "object",
            "description": meaning,
            "required": ["seq", "type", "request_id", "data"],
            "properties": {
                "seq": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Per person, contiguous, never reused.",
                },
                "type": {"const": event_type},
                "request_id": {"type": "string", "format": "uuid"},
                "data": {"type": "object", "required": list(data), "properties": data},
            },
        }
    names = [*schemas, "LiveResync"]
    schemas["LiveMessage"] = {
        "description": "One text frame on /api/v1/live: a JSON object, one per frame.",
        "oneOf": [ref(name) for name in names],
        "discriminator": {
            "propertyName": "type",
            "mapping": {
                **{t: REF.format(model=live_schema_name(t)) for t in LIVE_EVENTS},
                "resync": REF.format(model="LiveResync"),
            },
        },
    }
    return schemas


def _error(description: str, code: str, detail: str, field: str | None = None) -> dict[str, Any]:
    example: dict[str, str] = {"error": code, "detail": detail}
    if field:
        example["field"] = field
    return {
        "description": description,
        "content": {JSON: {"schema": ref("Error"), "example": example}},
    }


RESPONSES: dict[str, Any] = {
    "Invalid": _error(
        "The body is not valid JSON or breaks a rule; `field` names the input.",
        "invalid",
        "question: String should have at most 280 characters",
        "question",
    ),
    "Unauthorized": _error(
        "No valid session cookie: log in with POST /api/v1/session.",
        "unauthorized",
        "Log in first.",
    ),
    "CrossSite": _error(
        "A browser sent this state-changing request from another site: Sec-Fetch-Site is "
        "neither same-origin nor none, or Origin is neither this site nor absent.",
        "forbidden",
        "Cross-site requests may not change anything.",
    ),
    "NotFound": _error(
        "Nothing here for this caller: unknown id or token, or somebody else's.",
        "not_found",
        "No such request.",
    ),
    "Unavailable": _error(
        "The database is unreachable right now; retry shortly.",
        "unavailable",
        "The database is unavailable right now; try again shortly.",
    ),
    "Gone": _error(
        "The request is closed or past its due date: it no longer takes answers.",
        "gone",
        "This request is closed: it no longer takes answers.",
    ),
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": ref(name)}}}


def _use(*names: str) -> dict[str, Any]:
    codes = {
        "Invalid": "422",
        "Unauthorized": "401",
        "CrossSite": "403",
        "NotFound": "404",
        "Gone": "410",
        "Unavailable": "503",
    }
    return {codes[name]: {"$ref": f"#/components/responses/{name}"} for name in names}


SESSION: list[dict[str, list[str]]] = [{"session": []}]
PUBLIC: list[dict[str, list[str]]] = []


def _path_param(name: str, description: str, *, is_uuid: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if is_uuid:
        schema["format"] = "uuid"
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


REQUEST_ID = _path_param("id", "The request's id.", is_uuid=True)
INVITATION_ID = _path_param("id", "The invitation's id, from GET /api/v1/inbox.", is_uuid=True)
TOKEN = _path_param(
    "token", "The secret token from the reviewer's emailed link /r/{token}.", is_uuid=False
)


def _answer_ops(where: str, params: list[dict[str, Any]], security: Any) -> dict[str, Any]:
    """PUT .../response and POST .../decline, shared by the link and the inbox."""
    login = ("Unauthorized",) if security is SESSION else ()
    frozen = _error(
        "The answer was already released in an anonymous batch, so it can no longer change.",
        "conflict",
        "This anonymous answer has already been shown to the requester as part of a group, "
        "so it can no longer be changed.",
    )
    saved = "the reviewer's answer, as saved"
    idempotency_key = {
        "name": idempotency.HEADER,
        "in": "header",
        "required": False,
        "description": (
            "Makes retries safe: the same key with the same body replays the first outcome "
            "(status and JSON) without writing again; the same key with a different body is "
            f"refused with 422 (`field` is {idempotency.HEADER}). Scoped to this invitation. "
            f"1 to {idempotency.MAX_KEY_LENGTH} printable ASCII characters, such as a UUID."
        ),
        "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH},
    }
    return {
        "response": {
            "parameters": params,
            "put": {
                "operationId": f"save_answer_{where}",
                "summary": "Answer, or change the answer",
                "description": (
                    "Creates the answer (201) or replaces it (200). Answering after declining "
                    "is allowed. Anonymous answers freeze once released in a batch (409)."
                ),
                "tags": ["answers"],
                "security": security,
                "parameters": [idempotency_key],
                "requestBody": _body("AnswerWrite"),
                "responses": {
                    "201": _json(f"Created: {saved}.", ref("AnswerSaved")),
                    "200": _json(f"Updated: {saved}.", ref("AnswerSaved")),
                    **_use(*login, "CrossSite", "NotFound"),
                    "409": frozen,
                    **_use("Gone", "Invalid"),
                },
            },
        },
        "decline": {
            "parameters": params,
            "post": {
                "operationId": f"decline_{where}",
                "summary": "Decline to answer",
                "description": (
                    "Declining twice is harmless (200 again). Declining after answering is "
                    "refused (409): change the answer instead."
                ),
                "tags": ["answers"],
                "security": security,
                "responses": {
                    "200": _json("Declined.", ref("Declined")),
                    **_use(*login, "CrossSite", "NotFound"),
                    "409": _error(
                        "Already answered.",
                        "conflict",
                        "You have already answered; you can change your answer instead.",
                    ),
                    **_use("Gone"),
                },
            },
        },
    }


def _paths() -> dict[str, Any]:
    link = _answer_ops("by_link", [TOKEN], PUBLIC)
    inbox = _answer_ops("in_inbox", [INVITATION_ID], SESSION)
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness check",
                "tags": ["service"],
                "security": PUBLIC,
                "responses": {
                    "200": {
                        "description": "The process is up.",
                        "content": {"text/plain": {"schema": {"const": "ok"}}},
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readiness",
                "summary": "Readiness check for load balancers",
                "description": (
                    "Checks the database, the migrations and the live broker. Never cached."
                ),
                "tags": ["service"],
                "security": PUBLIC,
                "responses": {
                    "200": _json("Ready to serve.", ref("Readiness")),
                    "503": _json("Not ready: `detail` says what is wrong.", ref("Readiness")),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "tags": ["service"],
                "security": PUBLIC,
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format 0.0.4.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["service"],
                "security": PUBLIC,
                "responses": {"200": _json("OpenAPI 3.1 document.", {"type": "object"})},
            }
        },
        "/api/v1/session": {
            "post": {
                "operationId": "log_in",
                "summary": "Log in",
                "description": (
                    f"Checks the email and password and sets the `{COOKIE}` cookie (HttpOnly, "
                    "SameSite=Lax, Secure when the site is https; lasts FEEDBACK_SESSION_DAYS)."
                ),
                "tags": ["session"],
                "security": PUBLIC,
                "requestBody": _body("SessionCreate"),
                "responses": {
                    "200": {
                        **_json("Logged in: the person.", ref("PersonPublic")),
                        "headers": {
                            "Set-Cookie": {
                                "description": f"`{COOKIE}=<opaque token>; HttpOnly; ...`",
                                "schema": {"type": "string"},
                            }
                        },
                    },
                    "401": _error(
                        "Wrong email or password, or the account is inactive.",
                        "unauthorized",
                        "The email or password is wrong.",
                    ),
                    **_use("CrossSite", "Invalid"),
                },
            },
            "delete": {
                "operationId": "log_out",
                "summary": "Log out",
                "description": "Ends the session (if any) and clears the cookie. Always 204.",
                "tags": ["session"],
                "security": PUBLIC,
                "responses": {"204": {"description": "Logged out."}, **_use("CrossSite")},
            },
        },
        "/api/v1/me": {
            "get": {
                "operationId": "me",
                "summary": "Who am I",
                "tags": ["session"],
                "security": SESSION,
                "responses": {
                    "200": _json("The logged-in person.", ref("PersonPublic")),
                    **_use("Unauthorized"),
                },
            }
        },
        "/api/v1/people": {
            "get": {
                "operationId": "search_people",
                "summary": "Search the directory",
                "description": "For the reviewer autocomplete. Matches name or email.",
                "tags": ["people"],
                "security": SESSION,
                "parameters": [
                    {
                        "name": "q",
                        "in": "query",
                        "required": False,
                        "description": "Text to look for (first 100 characters used).",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json("Matching people.", ref("Directory")),
                    **_use("Unauthorized"),
                },
            }
        },
        "/api/v1/requests": {
            "post": {
                "operationId": "create_request",
                "summary": "Ask for feedback",
                "description": (
                    "Sends one personal link per reviewer by mail. Anonymous requests need at "
                    "least k reviewers; k (FEEDBACK_ANONYMITY_K, never below 3) is fixed on the "
                    "request when it is created."
                ),
                "tags": ["requests"],
                "security": SESSION,
                "requestBody": _body("RequestCreate"),
                "responses": {
                    "201": _json("Created.", ref("RequestCreated")),
                    **_use("Unauthorized", "CrossSite", "Invalid"),
                },
            },
            "get": {
                "operationId": "list_requests",
                "summary": "My requests",
                "tags": ["requests"],
                "security": SESSION,
                "responses": {
                    "200": _json("The caller's requests.", ref("RequestList")),
                    **_use("Unauthorized"),
                },
            },
        },
        "/api/v1/requests/{id}": {
            "parameters": [REQUEST_ID],
            "get": {
                "operationId": "get_request",
                "summary": "One of my requests, with the answers I may see",
                "description": (
                    "Named requests: every answer with its reviewer, and each invitee's "
                    "status. Anonymous requests: only released batches, shuffled, with no "
                    "identity and no time but the batch's; `invitees` is null; `notice` says "
                    "how many answers wait for the batch to fill, or stay withheld after close."
                ),
                "tags": ["requests"],
                "security": SESSION,
                "responses": {
                    "200": _json("The request.", ref("RequestDetail")),
                    **_use("Unauthorized", "NotFound"),
                },
            },
        },
        "/api/v1/requests/{id}/close": {
            "parameters": [REQUEST_ID],
            "post": {
                "operationId": "close_request",
                "summary": "Close one of my requests",
                "description": "Stops answers; held anonymous answers below k stay withheld.",
                "tags": ["requests"],
                "security": SESSION,
                "responses": {
                    "200": _json("The closed request.", ref("RequestDetail")),
                    **_use("Unauthorized", "CrossSite", "NotFound"),
                    "409": _error("Already closed.", "conflict", "This request is already closed."),
                },
            },
        },
        "/api/v1/inbox": {
            "get": {
                "operationId": "inbox",
                "summary": "Invitations to me",
                "description": "Only invitations on requests that are still open.",
                "tags": ["answers"],
                "security": SESSION,
                "responses": {
                    "200": _json("The caller's inbox.", ref("Inbox")),
                    **_use("Unauthorized"),
                },
            }
        },
        "/api/v1/inbox/{id}/response": inbox["response"],
        "/api/v1/inbox/{id}/decline": inbox["decline"],
        "/api/v1/invitations/{token}": {
            "parameters": [TOKEN],
            "get": {
                "operationId": "get_invitation",
                "summary": "What a reviewer's link shows",
                "description": (
                    "No login: the token is the credential. Never changes anything. Sent with "
                    "Cache-Control: no-store."
                ),
                "tags": ["answers"],
                "security": PUBLIC,
                "responses": {
                    "200": _json("The invitation.", ref("InvitationPublic")),
                    **_use("NotFound", "Gone"),
                },
            },
        },
        "/api/v1/invitations/{token}/response": link["response"],
        "/api/v1/invitations/{token}/decline": link["decline"],
        "/api/v1/live": {
            "get": {
                "operationId": "live",
                "summary": "Live events (websocket)",
                "description": (
                    "A websocket, not plain HTTP: connect with an Upgrade request carrying the "
                    "session cookie and an Origin of this site. The server sends one JSON object "
                    "per text frame (schema LiveMessage: `{seq, type, request_id, data}`, or "
                    "`{type: resync, seq}`); clients send nothing. `seq` numbers every event of "
                    "one person, contiguously. Pass the last `seq` seen as `?after=` to get "
                    "every kept event after it replayed first; without it, only new events "
                    "arrive. If those events are no longer kept, the first frame is a resync. "
                    "Close codes: 1008 refused (no session, foreign or missing Origin, bad "
                    "`after`; the handshake itself is answered 403), 1009 frame too big, 1012 "
                    "server restarting, 1013 client too slow; reconnect with `?after=`. "
                    "See docs/api.md for every event type."
                ),
                "tags": ["live"],
                "security": SESSION,
                "parameters": [
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "description": "The last seq the client has seen (digits only).",
                        "schema": {"type": "string", "pattern": "^[0-9]+$"},
                    }
                ],
                "responses": {
                    "101": {
                        "description": "Switching to the websocket protocol; then LiveMessage "
                        "frames.",
                        "content": {JSON: {"schema": ref("LiveMessage")}},
                    },
                    "403": {"description": "Handshake refused (closed with 1008 before accept)."},
                },
            }
        },
    }
    # Anything that reads the database answers 503 while the database is unreachable.
    for path, item in paths.items():
        if path in {"/healthz", "/readyz", "/api/v1/openapi.json", "/api/v1/live"}:
            continue
        for method, operation in item.items():
            if method != "parameters":
                operation["responses"].update(_use("Unavailable"))
    return paths


@cache
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "feedback",
            "version": "1",
            "summary": "Real-time 360° feedback: ask right after a task, answers stream back.",
            "description": "Human documentation, with examples: docs/api.md.",
        },
        "tags": [
            {"name": "session", "description": "Logging in and out."},
            {"name": "people", "description": "The directory."},
            {"name": "requests", "description": "Asking for feedback and reading answers."},
            {"name": "answers", "description": "Answering, by emailed link or from the inbox."},
            {"name": "live", "description": "The websocket event stream."},
            {"name": "service", "description": "Health and this document."},
        ],
        "paths": _paths(),
        "components": {
            "schemas": {**_model_schemas(), **_hand_written_schemas(), **_live_schemas()},
            "responses": RESPONSES,
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": COOKIE,
                    "description": "Set by POST /api/v1/session.",
                }
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """A fresh copy each call, so no caller can change what the next one gets."""
    return copy.deepcopy(_document())
