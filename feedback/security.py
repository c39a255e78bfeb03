"""Security headers on every response, and refusal of cross-site state changes."""

from __future__ import annotations

import json
import secrets
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def same_origin(headers: Headers, base_origin: str) -> bool:
    """Is this request from our own pages? Non-browser clients send neither header."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in {"same-origin", "none"}:
        return False
    origin = headers.get("origin")
    # Our pages set Referrer-Policy: no-referrer, which makes browsers send `Origin: null`
    # on their own form posts; Sec-Fetch-Site, which no page can set, vouches for those.
    if origin is None or (origin == "null" and site == "same-origin"):
        return True
    host = headers.get("host", "")
    # An attacker's page cannot make a victim's browser send our Host with its own Origin.
    return origin.rstrip("/") in {base_origin, f"http://{host}", f"https://{host}"}


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, *, base_url: str) -> None:
        self.app = app
        self.base_url = base_url
        self.base_origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        request_id = Headers(scope=scope).get("x-request-id", "")[:64] or secrets.token_hex(8)
        scope["request_id"] = request_id
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["method"] not in SAFE_METHODS and not same_origin(headers, self.base_origin):
            body = json.dumps(
                {"error": "forbidden", "detail": "Cross-site requests may not change anything."}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"x-request-id", request_id.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.setdefault("content-security-policy", CSP)
                out.setdefault("referrer-policy", "no-referrer")
                out.setdefault("x-content-type-options", "nosniff")
                out.setdefault("x-frame-options", "DENY")
                out.setdefault("permissions-policy", "camera=(), microphone=(), geolocation=()")
                out.setdefault("cross-origin-opener-policy", "same-origin")
                out["x-request-id"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_headers)
