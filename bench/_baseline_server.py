"""The baseline: a bare `websockets` server doing only what the live path must do.

- `ws://host:port/live?id=N` registers client N and keeps reading (the app does the same,
  to notice disconnects).
- `GET /publish?to=N` is a plain HTTP request (answered from `process_request`, before any
  WebSocket handshake): it forwards one fixed message to client N with `broadcast`, which
  never awaits the client, and answers 200. It stands in for the app's HTTP submit, minus
  routing, validation, the database and the hub.
- `GET /healthz` answers 200 so the benchmark knows the server is up.

Compression is off and the message cap is 64 KiB, as in `feedback serve`. It runs on uvloop
when installed, as uvicorn does by default.

Usage: python bench/_baseline_server.py HOST PORT
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

# About the size of the app's `response.created` message for a short named answer.
MESSAGE_BYTES = 500

clients: dict[str, ServerConnection] = {}


def message_for(target: str) -> str:
    head = {"seq": 1, "type": "response.created", "request_id": target, "data": {}}
    text = json.dumps(head, separators=(",", ":"))
    head["data"] = {"body": "x" * max(0, MESSAGE_BYTES - len(text) - 11)}
    return json.dumps(head, separators=(",", ":"))


def process_request(connection: ServerConnection, request: Request) -> Response | None:
    url = urlsplit(request.path)
    if url.path == "/healthz":
        return connection.respond(200, "ok\n")
    if url.path == "/publish":
        target = parse_qs(url.query).get("to", [""])[0]
        client = clients.get(target)
        if client is None:
            return connection.respond(404, "no such client\n")
        broadcast([client], message_for(target))
        return connection.respond(200, "sent\n")
    return None


async def handler(connection: ServerConnection) -> None:
    key = parse_qs(urlsplit(connection.request.path).query).get("id", [""])[0]  # type: ignore[union-attr]
    clients[key] = connection
    try:
        async for _message in connection:
            pass
    finally:
        if clients.get(key) is connection:
            del clients[key]


async def main(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        handler,
        host,
        port,
        process_request=process_request,
        compression=None,
        max_size=64 * 1024,
        ping_interval=20,
        ping_timeout=20,
        backlog=2048,
    ):
        await stop


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    else:
        uvloop.run(main(sys.argv[1], int(sys.argv[2])))
