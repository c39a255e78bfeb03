"""Structured logs with a request id on every line, and secrets kept out of them.

FEEDBACK_LOG_FORMAT=json writes one JSON object per line (for a log shipper), console a
readable line, auto picks console on a terminal and JSON otherwise.

Reviewer links (/r/<token>, /api/v1/invitations/<token>) grant access to whoever holds
them, and so do session cookies: every line is scrubbed of them before it is written, and
the request log names the route template (/r/{token}), never the path.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID: ContextVar[str] = ContextVar("feedback_request_id", default="-")

_SECRETS = (
    # (?!\{) leaves route templates such as /r/{token} readable.
    re.compile(r"(/r/)(?!\{)[^/?#\s\"'<>]+"),
    re.compile(r"(/api/v1/invitations/)(?!\{)[^/?#\s\"'<>]+"),
    re.compile(r"(feedback_session=)[^;\s\"'&]+"),
    re.compile(r"([?&]token=)[^&#\s\"']+"),
)
# color_message: uvicorn's ANSI-coloured copy of the message, noise in JSON.
_RECORD_FIELDS = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
}


def redact(text: str) -> str:
    for pattern in _SECRETS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", REQUEST_ID.get()),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        request_id = getattr(record, "request_id", REQUEST_ID.get())
        line = f"{when} {record.levelname:<7} {record.name} [{request_id}] {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def resolve_format(name: str, stream: object = None) -> str:
    name = (name or "auto").lower()
    if name not in {"json", "console", "auto"}:
        raise ValueError("FEEDBACK_LOG_FORMAT must be json, console or auto")
    if name == "auto":
        stream = stream if stream is not None else sys.stderr
        return "console" if getattr(stream, "isatty", lambda: False)() else "json"
    return name


def configure_logging(format_name: str = "auto", *, level: int = logging.INFO) -> str:
    """Send every logger (ours, uvicorn's, the libraries') through one scrubbed handler."""
    chosen = resolve_format(format_name)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else ConsoleFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # uvicorn's access log prints raw paths, reviewer tokens included; ours logs templates.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    return chosen
