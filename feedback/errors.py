"""Errors that carry their HTTP status. One handler renders them as JSON or HTML."""

from __future__ import annotations


class FeedbackError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class Invalid(FeedbackError):
    status = 422
    code = "invalid"


class Unauthorized(FeedbackError):
    status = 401
    code = "unauthorized"


class Forbidden(FeedbackError):
    status = 403
    code = "forbidden"


class NotFound(FeedbackError):
    status = 404
    code = "not_found"


class Conflict(FeedbackError):
    status = 409
    code = "conflict"


class Gone(FeedbackError):
    status = 410
    code = "gone"


class Unavailable(FeedbackError):
    status = 503
    code = "unavailable"
