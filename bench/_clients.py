"""The load generator's side: many WebSocket clients, and a minimal HTTP/1.1 client.

The HTTP client opens one connection per request (`Connection: close`), as a reviewer's
browser submitting a form might, and is the same code for the app and for the baseline,
so client-side cost cancels out of the ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from _servers import HOST
from websockets.asyncio.client import ClientConnection, connect

CONNECT_CONCURRENCY = 64


async def connect_many(
    urls: Sequence[str], *, headers: Sequence[dict[str, str]] | None = None
) -> list[ClientConnection]:
    """Open one socket per url, a bounded number at a time; raise if any is refused."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(index: int) -> ClientConnection:
        async with gate:
            return await connect(
                urls[index],
                additional_headers=headers[index] if headers else None,
                compression=None,
                # The server pings (as in production); clients only answer.
                ping_interval=None,
                max_size=64 * 1024,
                open_timeout=60,
                close_timeout=2,
            )

    return list(await asyncio.gather(*(one(i) for i in range(len(urls)))))


async def close_all(connections: Sequence[ClientConnection]) -> None:
    gate = asyncio.Semaphore(256)

    async def one(connection: ClientConnection) -> None:
        async with gate:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=5)

    await asyncio.gather(*(one(c) for c in connections))


def http_request(
    port: int, method: str, path: str, *, body: bytes = b"", content_type: str = ""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close"]
    if body or method in {"PUT", "POST"}:
        lines.append(f"Content-Length: {len(body)}")
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def send_http(port: int, raw: bytes) -> int:
    """Send one request, read the whole response, return its status code."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(raw)
        status_line = await reader.readline()
        await reader.read()  # the server closes after the response
        return int(status_line.split()[1])
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
