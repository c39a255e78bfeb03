"""B3: memory held by idle live connections.

5,000 authenticated /api/v1/live sockets (one per person) open on one feedback server
process, doing nothing. The server's resident memory (VmRSS in /proc/PID/status) is read
before and after connecting them; the difference over 5,000 is the cost of one connection.
The baseline is a bare `websockets` server (compression off) with the same 5,000 clients.
Each of uvicorn's WebSocket implementations is tried, to find the leanest.

Usage: .venv/bin/python bench/b3_idle_memory.py [--connections N] [--ws IMPL ...]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _clients import close_all, connect_many
from _population import Requester, add_requesters, migrated_database
from _report import machine, today, write_section
from _servers import (
    WS_IMPLEMENTATIONS,
    Server,
    pin_load_generator,
    raise_open_files_limit,
    start_baseline,
    start_feedback,
    ws_available,
)

# What uvicorn picks (and so `feedback serve` uses) when `websockets` is installed.
DEFAULT_WS = "websockets-sansio"
WARMUP_CONNECTIONS = 20
SETTLE_SECONDS = 2.0
RATIO_TARGET = 1.5
# A "clear win" for recommending an implementation: this much less memory per connection.
CLEAR_WIN = 0.10


@dataclass
class Footprint:
    name: str
    before_kib: int
    after_kib: int
    connections: int
    connect_seconds: float
    server_cpu_seconds: float

    @property
    def per_connection_kib(self) -> float:
        return (self.after_kib - self.before_kib) / self.connections


async def footprint(
    name: str,
    server: Server,
    urls: list[str],
    headers: list[dict[str, str]] | None,
) -> Footprint:
    """Warm the server up, read RSS, connect everyone, let it settle, read RSS again."""
    # The first connections load code and fill caches; that is not per-connection cost.
    warm = await connect_many(
        urls[:WARMUP_CONNECTIONS], headers=headers[:WARMUP_CONNECTIONS] if headers else None
    )
    await close_all(warm)
    await asyncio.sleep(SETTLE_SECONDS)
    before = server.rss_kib()
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    sockets = await connect_many(urls, headers=headers)
    connect_seconds = time.perf_counter() - started
    server_cpu = server.cpu_seconds() - cpu_before
    await asyncio.sleep(SETTLE_SECONDS)
    after = server.rss_kib()
    still_open = sum(1 for s in sockets if s.close_code is None)
    try:
        if still_open != len(urls):
            raise RuntimeError(f"{name}: only {still_open} of {len(urls)} sockets stayed open")
        return Footprint(name, before, after, len(urls), connect_seconds, server_cpu)
    finally:
        await close_all(sockets)


async def measure_feedback(
    directory: Path, database_url: str, requesters: list[Requester], ws: str
) -> Footprint:
    server = start_feedback(directory, database_url, ws=ws)
    try:
        return await footprint(
            f"feedback ({ws})",
            server,
            [f"{server.ws_url}/api/v1/live"] * len(requesters),
            [
                {"Cookie": f"feedback_session={r.session_token}", "Origin": server.base_url}
                for r in requesters
            ],
        )
    finally:
        server.stop()


async def measure_baseline(directory: Path, connections: int) -> Footprint:
    server = start_baseline(directory)
    try:
        urls = [f"{server.ws_url}/live?id={i}" for i in range(connections)]
        return await footprint("baseline (bare websockets)", server, urls, None)
    finally:
        server.stop()


def row(result: Footprint, baseline: Footprint) -> str:
    ratio = result.per_connection_kib / baseline.per_connection_kib
    return (
        f"| {result.name} | {result.connections} | {result.before_kib / 1024:.1f} | {result.after_kib / 1024:.1f} | "
        f"{result.per_connection_kib:.1f} | {ratio:.2f}x | "
        f"{result.connections / result.connect_seconds:.0f} | "
        f"{result.server_cpu_seconds / result.connections * 1000:.2f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument(
        "--compare-connections",
        type=int,
        default=1000,
        help="sockets for the implementations `feedback serve` does not use (saves time)",
    )
    parser.add_argument(
        "--ws", nargs="+", choices=WS_IMPLEMENTATIONS, default=list(WS_IMPLEMENTATIONS)
    )
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    args = parser.parse_args()

    host = machine()
    pinning = pin_load_generator()
    limit = raise_open_files_limit()
    args.compare_connections = min(args.compare_connections, args.connections)
    if limit < args.connections + 100:
        parser.error(f"the open-files limit is {limit}; {args.connections} sockets need more")
    run: Callable[..., object] = asyncio.run
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        pass

    started = time.monotonic()
    skipped = [ws for ws in args.ws if not ws_available(ws)]
    results: list[Footprint] = []
    with tempfile.TemporaryDirectory(prefix="feedback-bench-b3-") as tmp:
        directory = Path(tmp)
        database_url = migrated_database(directory)
        # Connecting writes nothing, so every implementation can share one database.
        requesters = add_requesters(database_url, args.connections, with_requests=False)
        baseline = run(measure_baseline(directory, args.connections))
        assert isinstance(baseline, Footprint)
        for ws in args.ws:
            if ws in skipped:
                continue
            # The default implementation gets the full count; the others a smaller one, since
            # connecting through the app is slow and the figure per connection is stable.
            count = args.connections if ws == DEFAULT_WS else args.compare_connections
            result = run(measure_feedback(directory, database_url, requesters[:count], ws))
            assert isinstance(result, Footprint)
            results.append(result)
            print(f"{result.name}: {result.per_connection_kib:.1f} KiB per connection")
    elapsed = time.monotonic() - started

    default = next((r for r in results if r.name == f"feedback ({DEFAULT_WS})"), None)
    leanest = min(results, key=lambda r: r.per_connection_kib)
    lines = [
        "## B3: idle connections memory",
        "",
        f"Run {today()} on {host}; {pinning}; {elapsed:.0f} s in all.",
        "",
        f"{args.connections} idle sockets, one per logged-in person, on one server process "
        f"({args.compare_connections} for the WebSocket implementations `feedback serve` does "
        "not use, to keep the run short). Per connection = (VmRSS after connecting and "
        "settling 2 s - VmRSS before) / sockets; "
        f"{WARMUP_CONNECTIONS} warm-up connections are opened and closed first so loading "
        "code is not counted. Server CPU per connect is the server's user+system time while "
        "connecting, over sockets.",
        "",
        "| server | sockets | RSS before MiB | RSS after MiB | KiB per connection | vs baseline | "
        "connects/s | server CPU ms per connect |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        row(baseline, baseline),
        *(row(r, baseline) for r in results),
        "",
    ]
    for r in results:
        ratio = r.per_connection_kib / baseline.per_connection_kib
        verdict = "met" if ratio <= RATIO_TARGET else "NOT met"
        lines.append(f"- Target <= {RATIO_TARGET:g}x baseline with {r.name}: **{verdict}**.")
    if skipped:
        lines.append(f"- Not measured (package not installed): {', '.join(skipped)}.")
    lines.append(f"- Leanest: {leanest.name}, {leanest.per_connection_kib:.1f} KiB per connection.")
    if default is not None and leanest is not default:
        saving = 1 - leanest.per_connection_kib / default.per_connection_kib
        if saving >= CLEAR_WIN:
            lines.append(
                f"- It uses {saving:.0%} less per connection than websockets-sansio "
                "(uvicorn's default with `websockets` installed): a clear win for "
                "`feedback serve`."
            )
        else:
            lines.append(
                f"- Only {saving:.0%} less than websockets-sansio (uvicorn's default): within "
                "noise, no reason to change `feedback serve`."
            )
    elif default is not None:
        lines.append("- websockets-sansio (uvicorn's default) is already the leanest.")
    lines += [
        "",
        "How it is set up: the same servers as B1 (feedback through `python -m uvicorn "
        "feedback.app:create_app --factory` with `feedback serve`'s WebSocket options and "
        "`--ws` varied; baseline bench/_baseline_server.py). Each idle feedback socket holds "
        "a hub subscriber with an empty mailbox (a list) and the one task uvicorn runs it in; "
        "a sender task exists only while messages are waiting. Live sockets enter through "
        "the app class itself, past the middleware and router, and once the handshake is "
        "checked they drop the request headers and Starlette's parsed copies of them. "
        "Clients answer the server's pings and send nothing.",
        "",
        "What got it here (KiB per idle socket, websockets-sansio): 41.9 with a sender and a "
        "receiver task per socket behind the full middleware chain (2026-11-25); 38.3 once "
        "SQLite ran inline instead of through aiosqlite; 31.7 entering "
        "straight to the handler and dropping the loaded person; 26.3 with no idle tasks; "
        "23.4 entering through the app class, with a list for the mailbox and without "
        "Starlette's cached headers, cookies and query; 22.1 without the scope's header "
        "list. Most of what remains is uvicorn's per-connection protocol objects, its ASGI "
        "scope and receive queue, and Starlette's WebSocket.",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("b3", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
