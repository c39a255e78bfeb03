"""A server killed with SIGKILL in the middle of 200 answer submissions loses nothing it
acknowledged, and clients that retry with their Idempotency-Key create no duplicates."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx2
import pytest

from tests.ops.conftest import Server, server_env
from tests.ops.reviewers import add_requester, ask_many, read_back

SUBMISSIONS = 200
# Kill once this many answers are acknowledged: the rest are in flight or not yet sent.
KILL_AFTER = 40
RETRY_CONCURRENCY = 16
# The 200 clients start 10 ms apart (over two seconds), so a server that answers in a
# millisecond is still mid-burst when the kill comes.
STAGGER = 0.01


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url_for(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{request.getfixturevalue('database_path')}"
    return str(request.getfixturevalue("postgres_url"))


Outcome = int | str  # an HTTP status, or the name of the error the client saw


async def _submit_all(
    server: Server, tokens: list[str], bodies: dict[str, str], keys: dict[str, str]
) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    acknowledged = 0
    limits = httpx2.Limits(max_connections=SUBMISSIONS, max_keepalive_connections=SUBMISSIONS)
    async with httpx2.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:

        async def submit(n: int, token: str) -> None:
            nonlocal acknowledged
            await asyncio.sleep(n * STAGGER)
            try:
                response = await client.put(
                    f"/api/v1/invitations/{token}/response",
                    json={"rating": 4, "body": bodies[token]},
                    headers={"Idempotency-Key": keys[token]},
                )
            except httpx2.HTTPError as exc:
                outcomes[token] = type(exc).__name__
                return
            outcomes[token] = response.status_code
            if response.is_success:
                acknowledged += 1
                if acknowledged == KILL_AFTER:
                    server.process.kill()  # SIGKILL: no shutdown, no flush, no goodbye

        await asyncio.gather(*(submit(n, token) for n, token in enumerate(tokens)))
    return outcomes


async def _retry(
    server: Server, failed: list[str], bodies: dict[str, str], keys: dict[str, str]
) -> dict[str, int]:
    # Retrying clients come back at their own pace, not all in one burst.
    gate = asyncio.Semaphore(RETRY_CONCURRENCY)
    async with httpx2.AsyncClient(base_url=server.url, timeout=60) as client:

        async def retry(token: str) -> tuple[str, int]:
            async with gate:
                response = await client.put(
                    f"/api/v1/invitations/{token}/response",
                    json={"rating": 4, "body": bodies[token]},
                    headers={"Idempotency-Key": keys[token]},
                )
            return token, response.status_code

        return dict(await asyncio.gather(*(retry(token) for token in failed)))


def test_kill_9_mid_submission_loses_no_acknowledged_answer_and_retries_make_no_duplicates(
    database_url_for: str, tmp_path: Path
) -> None:
    url = database_url_for
    env = server_env(url)
    add_requester(url)
    first = Server(env, tmp_path / "first.log")
    try:
        first.wait_ready()
        tokens = ask_many(first.url, url, SUBMISSIONS)
        assert len(tokens) == SUBMISSIONS
        bodies = {token: f"Answer {n}: the launch went well." for n, token in enumerate(tokens)}
        keys = {token: f"submit-{n}" for n, token in enumerate(tokens)}

        outcomes = asyncio.run(_submit_all(first, tokens, bodies, keys))
        assert first.process.wait(timeout=10) == -9, first.log()
    finally:
        first.stop()

    acknowledged = [t for t, o in outcomes.items() if isinstance(o, int) and 200 <= o < 300]
    failed = [t for t in tokens if t not in acknowledged]
    assert len(acknowledged) >= KILL_AFTER, outcomes
    # Otherwise the kill came too late to test anything.
    assert failed, "every submission finished before the kill"
    assert all(outcomes[t] == 201 for t in acknowledged)

    # What the crashed server acknowledged is all there, each with its event.
    after_crash = read_back(url)
    acknowledged_bodies = {bodies[t] for t in acknowledged}
    assert acknowledged_bodies <= after_crash.answer_bodies
    assert all(after_crash.created_event_bodies[b] == 1 for b in acknowledged_bodies)
    assert set(after_crash.created_events_per_answer) == after_crash.answer_ids

    second = Server(env, tmp_path / "second.log")
    try:
        second.wait_ready()
        retried = asyncio.run(_retry(second, failed, bodies, keys))
    finally:
        second.stop()
    # First writes and replays of writes whose acknowledgement the crash swallowed alike.
    assert retried == dict.fromkeys(failed, 201), second.log()

    stored = read_back(url)
    assert len(stored.answers_per_invitation) == SUBMISSIONS
    assert set(stored.answers_per_invitation.values()) == {1}
    assert stored.answer_bodies == set(bodies.values())
    assert set(stored.created_events_per_answer) == stored.answer_ids
    assert set(stored.created_events_per_answer.values()) == {1}
    assert set(stored.created_event_bodies.values()) == {1}
    assert stored.idempotency_keys == SUBMISSIONS
    # A transaction the kill cut short gave back its sequence number with everything else.
    seqs = [e.seq for e in stored.events]
    assert seqs == list(range(1, len(seqs) + 1))
