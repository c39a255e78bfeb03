"""A client that stops reading must cost nobody else anything, and must be able to catch up."""

from __future__ import annotations

import socket
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from websockets.exceptions import ConnectionClosed

from feedback.web import AppState
from tests.live.conftest import World, next_event, quiet

TOM = "tom@example.com"
GUEST = "guest@client.example"
EDITS = 80


def tiny_receive_buffer_socket(port: int) -> socket.socket:
    """A client socket whose kernel receive buffer is a few KiB (set before connecting, so
    the window never grows): a client that stops reading stalls the server quickly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_a_stalled_client_delays_nobody_is_closed_with_1013_and_resumes_by_seq(
    start_server: Callable[..., Awaitable[World]],
) -> None:
    world = await start_server(live_queue_size=8, send_buffer=4096)
    await world.add("priya@example.com", name="Priya Natarajan")
    await world.add("ravi@example.com", name="Ravi Shah")
    await world.add(TOM, name="Tom Becker", password=False)
    priya = await world.log_in("priya@example.com")
    ravi = await world.log_in("ravi@example.com")
    priya_id = uuid.UUID((await priya.http.get("/api/v1/me")).json()["id"])
    reviewer = await world.anonymous_http()
    await priya.ask([TOM])
    await ravi.ask([GUEST])
    tom_token = await world.token_for(TOM)
    guest_token = await world.token_for(GUEST)
    start = 1  # both people have seen request.created (seq 1)

    stalled_sock = tiny_receive_buffer_socket(world.server.port)
    async with (
        priya.live(after=start, sock=stalled_sock, ping_interval=None, max_queue=1) as stalled,
        priya.live(after=start) as healthy,
        ravi.live(after=start) as other,
    ):
        # The stalled client's process stops reading its socket altogether.
        stalled.transport.pause_reading()

        latencies: list[float] = []
        submits: list[float] = []
        for i in range(EDITS):
            body = f"edit {i:03d} " + "long answer text " * 115
            started = time.perf_counter()
            response = await reviewer.put(
                f"/api/v1/invitations/{tom_token}/response", json={"body": body}
            )
            submits.append(time.perf_counter() - started)
            assert response.status_code == (201 if i == 0 else 200), response.text
            event = await next_event(healthy, within=2)
            latencies.append(time.perf_counter() - started)
            assert event["seq"] == start + 1 + i
            assert event["data"]["response"]["body"] == body.strip()
            if i % 20 == 10:
                # Another person's stream is just as prompt.
                started = time.perf_counter()
                response = await reviewer.put(
                    f"/api/v1/invitations/{guest_token}/response", json={"body": f"note {i}"}
                )
                assert response.status_code in {200, 201}
                assert (await next_event(other, within=2))["data"]["response"][
                    "body"
                ] == f"note {i}"
                latencies.append(time.perf_counter() - started)

        print(
            f"\nhealthy client with a stalled neighbour: median {statistics.median(latencies) * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.1f} ms; submit max {max(submits) * 1000:.1f} ms"
        )
        # Generous bounds (the machine runs other work too); a publish that waited on the
        # stalled socket would instead hang the submit until the HTTP timeout.
        assert statistics.median(latencies) < 0.5
        assert max(latencies) < 2.0
        assert max(submits) < 2.0

        # The server gave up on the stalled socket while it was still not reading.
        async def overflowed(app: AppState) -> list[bool]:
            return sorted(s.overflowed for s in app.hub._subscribers.get(priya_id, ()))

        assert await world.server.call(overflowed) == [False, True]

        # When it reads again it finds what was already on its way, then a 1013 close.
        stalled.transport.resume_reading()
        got: list[dict[str, object]] = []
        try:
            while True:
                got.append(await next_event(stalled, within=5))
        except ConnectionClosed as exc:
            assert exc.rcvd is not None
            assert exc.rcvd.code == 1013
        seqs = [int(str(e["seq"])) for e in got]
        assert seqs == list(range(start + 1, start + 1 + len(seqs)))
        assert len(seqs) < EDITS
        print(f"stalled client got {len(seqs)} of {EDITS} events before its 1013 close")

        # Resuming from the last seq it saw brings exactly the rest, once each, in order.
        last = seqs[-1] if seqs else start
        async with priya.live(after=last) as resumed:
            rest = [await next_event(resumed) for _ in range(start + EDITS - last)]
            assert await quiet(resumed) == []
        assert [e["seq"] for e in rest] == list(range(last + 1, start + EDITS + 1))
        assert rest[-1]["data"]["response"]["body"].startswith(f"edit {EDITS - 1:03d} ")

        assert await quiet(healthy) == []
