"""The live stream end to end: a real uvicorn server, real HTTP calls, a real websocket client."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

import pytest
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.live.conftest import World, next_event, open_live, quiet

TOM = "tom@example.com"
ANA = "ana@example.com"
LEE = "lee@example.com"
MAYA = "maya@example.com"


@pytest.fixture
async def priya_world(world: World) -> World:
    await world.add("priya@example.com", name="Priya Natarajan")
    await world.add(TOM, name="Tom Becker", password=False)
    return world


async def test_named_answer_reaches_the_requesters_socket_within_a_second(
    priya_world: World,
) -> None:
    priya = await priya_world.log_in("priya@example.com")
    reviewer = await priya_world.anonymous_http()
    async with priya.live() as ws:
        request_id = await priya.ask([TOM, "buyer@client.example"])
        created = await next_event(ws)
        assert created["type"] == "request.created"
        assert created["request_id"] == request_id
        token = await priya_world.token_for(TOM)

        receiving = asyncio.create_task(next_event(ws))
        started = time.perf_counter()
        response = await reviewer.put(
            f"/api/v1/invitations/{token}/response",
            json={"rating": 4, "body": "Clear story, slides too dense."},
        )
        event = await receiving
        latency = time.perf_counter() - started
        assert response.status_code == 201, response.text

    print(f"\nsubmit -> requester socket latency: {latency * 1000:.1f} ms")
    assert latency < 1.0
    assert event["type"] == "response.created"
    assert event["request_id"] == request_id
    assert event["seq"] == created["seq"] + 1
    answer = event["data"]["response"]
    assert answer["body"] == "Clear story, slides too dense."
    assert answer["rating"] == 4
    assert answer["reviewer"] == {"name": "Tom Becker", "email": TOM}
    assert event["data"]["progress"] == {
        "invited": 2,
        "received": 1,
        "declined": 0,
        "released": None,
        "withheld": None,
    }


async def test_reconnecting_with_after_gets_exactly_the_missed_events_even_across_a_restart(
    priya_world: World,
) -> None:
    world = priya_world
    await world.add(ANA, name="Ana Lima", password=False)
    priya = await world.log_in("priya@example.com")
    reviewer = await world.anonymous_http()

    async with priya.live() as ws:
        request_id = await priya.ask([TOM, ANA, LEE])
        seen = [await next_event(ws)]
    last = seen[-1]["seq"]
    tom, ana, lee = [await world.token_for(e) for e in (TOM, ANA, LEE)]

    # While she is away: an answer, an edit, a decline.
    r = await reviewer.put(f"/api/v1/invitations/{tom}/response", json={"body": "Good pace."})
    assert r.status_code == 201
    r = await reviewer.put(f"/api/v1/invitations/{tom}/response", json={"body": "Good pace!"})
    assert r.status_code == 200
    assert (await reviewer.post(f"/api/v1/invitations/{lee}/decline")).status_code == 200

    async with priya.live(after=last) as ws:
        missed = [await next_event(ws) for _ in range(3)]
        assert await quiet(ws) == []
    assert [e["type"] for e in missed] == [
        "response.created",
        "response.updated",
        "request.progress",
    ]
    assert [e["seq"] for e in missed] == [last + 1, last + 2, last + 3]
    assert missed[1]["data"]["response"]["body"] == "Good pace!"
    assert missed[2]["data"]["progress"]["declined"] == 1
    last = missed[-1]["seq"]

    # A restart on the same database file, with a client connected through it.
    async with priya.live(after=last) as ws:
        await world.server.restart()
        with pytest.raises(ConnectionClosed) as closed:
            await next_event(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012

    r = await reviewer.put(f"/api/v1/invitations/{ana}/response", json={"body": "Loved it."})
    assert r.status_code == 201
    assert (await priya.http.post(f"/api/v1/requests/{request_id}/close")).status_code == 200

    async with priya.live(after=last) as ws:
        after_restart = [await next_event(ws) for _ in range(2)]
        assert await quiet(ws) == []
    assert [e["type"] for e in after_restart] == ["response.created", "request.closed"]
    assert [e["seq"] for e in after_restart] == [last + 1, last + 2]
    assert after_restart[0]["data"]["response"]["body"] == "Loved it."

    # And live again after a resume: the next event arrives once, with the next seq.
    async with priya.live(after=last + 2) as ws:
        await priya.ask([TOM])
        event = await next_event(ws)
        assert (event["type"], event["seq"]) == ("request.created", last + 3)
        assert await quiet(ws) == []


async def test_resuming_from_a_seq_no_longer_kept_or_from_the_future_gets_resync(
    priya_world: World,
) -> None:
    world = priya_world
    priya = await world.log_in("priya@example.com")
    for _ in range(4):
        await priya.ask([TOM])
    # Events 1-4 are kept; pretend retention removed the first two.
    async with world.db.transaction() as session:
        connection = await session.connection()
        deleted = (
            await connection.execute(
                text(
                    "DELETE FROM live_event WHERE seq <= 2 AND recipient_id = "
                    "(SELECT id FROM person WHERE email = 'priya@example.com')"
                )
            )
        ).rowcount
    assert deleted == 2

    async with priya.live(after=0) as ws:
        assert await next_event(ws) == {"type": "resync", "seq": 4}
        # After a resync the stream goes on live from the current seq.
        await priya.ask([TOM])
        assert (await next_event(ws))["seq"] == 5
    async with priya.live(after=99) as ws:
        assert await next_event(ws) == {"type": "resync", "seq": 5}
    # Still kept: resuming after 2 replays 3, 4, 5 with no resync.
    async with priya.live(after=2) as ws:
        assert [(await next_event(ws))["seq"] for _ in range(3)] == [3, 4, 5]
        assert await quiet(ws) == []


@pytest.mark.parametrize(
    ("case", "origin", "with_cookie"),
    [
        ("foreign origin", "http://evil.example", True),
        ("missing origin", None, True),
        ("no cookie", "same", False),
        ("bogus cookie", "same", None),
    ],
)
async def test_handshake_is_refused_without_same_origin_and_a_valid_session(
    priya_world: World, case: str, origin: str | None, with_cookie: bool | None
) -> None:
    priya = await priya_world.log_in("priya@example.com")
    cookie = {True: priya.cookie, False: None, None: "not-a-real-session-token"}[with_cookie]
    with pytest.raises(InvalidStatus) as refused:
        async with open_live(priya_world.server, cookie=cookie, origin=origin):
            pass
    assert refused.value.response.status_code == 403, case


async def test_a_bad_after_value_is_refused(priya_world: World) -> None:
    priya = await priya_world.log_in("priya@example.com")
    for bad in ("-1", "abc", "1.5", "²", "9" * 40):
        with pytest.raises(InvalidStatus) as refused:
            async with open_live(
                priya_world.server, f"{priya_world.server.ws_url}?after={bad}", cookie=priya.cookie
            ):
                pass
        assert refused.value.response.status_code == 403, bad


async def test_an_incoming_message_over_64_kib_closes_the_connection_with_1009(
    priya_world: World,
) -> None:
    priya = await priya_world.log_in("priya@example.com")
    async with priya.live() as ws:
        await ws.send("x" * 1000)  # small messages are ignored
        await ws.send("x" * (64 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await next_event(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_request_closed_and_invitation_events_reach_requester_and_reviewer(
    priya_world: World,
) -> None:
    world = priya_world
    await world.add(MAYA, name="Maya Ross")
    priya = await world.log_in("priya@example.com")
    maya = await world.log_in(MAYA)
    async with priya.live() as priya_ws, maya.live() as maya_ws:
        request_id = await priya.ask([MAYA, "guest@client.example"], tags=["demo"])
        invited = await next_event(maya_ws)
        assert invited["type"] == "invitation.created"
        assert invited["request_id"] == request_id
        item = invited["data"]["invitation"]
        assert item["requester"] == {"name": "Priya Natarajan", "email": "priya@example.com"}
        assert item["question"] == "How did my demo go?"
        assert item["status"] == "pending"
        assert (await next_event(priya_ws))["type"] == "request.created"

        response = await priya.http.post(f"/api/v1/requests/{request_id}/close")
        assert response.status_code == 200
        closed = await next_event(priya_ws)
        assert closed["type"] == "request.closed"
        assert closed["data"]["request"]["status"] == "closed"
        reviewer_side = await next_event(maya_ws)
        assert reviewer_side["type"] == "invitation.closed"
        assert reviewer_side["request_id"] == request_id
        # Nobody gets anybody else's events.
        assert await quiet(priya_ws) == []
        assert await quiet(maya_ws) == []


async def test_anonymous_answers_reach_the_requester_only_as_a_shuffled_batch_of_k(
    priya_world: World,
) -> None:
    world = priya_world
    priya = await world.log_in("priya@example.com")
    reviewer = await world.anonymous_http()
    emails = [f"r{i}@example.com" for i in range(4)]
    bodies = [f"secret answer number {i}" for i in range(4)]
    async with priya.live() as ws:
        request_id = await priya.ask(emails, anonymous=True)
        assert (await next_event(ws))["type"] == "request.created"
        tokens = [await world.token_for(e) for e in emails]

        before_k: list[str] = []
        for token, body in zip(tokens[:2], bodies[:2], strict=True):
            r = await reviewer.put(f"/api/v1/invitations/{token}/response", json={"body": body})
            assert r.status_code == 201
            before_k.append(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[arg-type]
        # An edit before release, and a decline, say nothing either.
        r = await reviewer.put(
            f"/api/v1/invitations/{tokens[0]}/response", json={"body": bodies[0] + " (edited)"}
        )
        assert r.status_code == 200
        r = await reviewer.post(f"/api/v1/invitations/{tokens[3]}/decline")
        assert r.status_code == 200
        before_k += [json.dumps(e) for e in await quiet(ws)]

        for text in before_k:
            assert "secret answer" not in text
            event = json.loads(text)
            assert event["type"] == "request.progress"
            assert set(event["data"]) == {"progress"}
            assert all(v is None or isinstance(v, int) for v in event["data"]["progress"].values())
        assert [json.loads(t)["data"]["progress"]["received"] for t in before_k] == [1, 2]

        r = await reviewer.put(
            f"/api/v1/invitations/{tokens[2]}/response", json={"rating": 5, "body": bodies[2]}
        )
        assert r.status_code == 201
        released = await next_event(ws)
        progress = await next_event(ws)
        assert await quiet(ws) == []

    assert released["type"] == "responses.released"
    assert released["request_id"] == request_id
    responses = released["data"]["responses"]
    assert sorted(r["body"] for r in responses) == sorted(
        [bodies[0] + " (edited)", bodies[1], bodies[2]]
    )
    for answer in responses:
        assert set(answer) <= {"body", "rating", "released_at"}
        # Every answer carries only the batch's release time, the same for all of them.
        assert datetime.fromisoformat(answer["released_at"]) == datetime.fromisoformat(
            released["data"]["released_at"]
        )
    assert released["data"]["progress"]["released"] == 3
    assert progress["type"] == "request.progress"
    assert progress["data"]["progress"] == {
        "invited": 4,
        "received": 3,
        "declined": None,
        "released": 3,
        "withheld": None,
    }


async def test_a_connection_that_stops_answering_pings_is_dropped(
    start_server: object,
) -> None:
    world: World = await start_server(ping_interval=0.2, ping_timeout=0.3)  # type: ignore[operator]
    await world.add("priya@example.com")
    priya = await world.log_in("priya@example.com")

    async def connections(app: object) -> int:
        return app.hub.connection_count  # type: ignore[attr-defined,no-any-return]

    async with priya.live(ping_interval=None) as ws:
        assert await world.server.call(connections) == 1
        # The client's process hangs: it reads nothing more, so it answers no ping.
        ws.transport.pause_reading()
        deadline = time.monotonic() + 5
        while await world.server.call(connections) > 0:
            assert time.monotonic() < deadline, "the dead connection was never dropped"
            await asyncio.sleep(0.05)
        ws.transport.resume_reading()
        with pytest.raises(ConnectionClosed) as closed:
            await next_event(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


async def test_events_for_one_person_never_reach_another(priya_world: World) -> None:
    world = priya_world
    priya = await world.log_in("priya@example.com")
    await world.add(MAYA, name="Maya Ross")
    maya = await world.log_in(MAYA)
    async with maya.live() as maya_ws:
        await priya.ask(["guest@client.example"])
        assert await quiet(maya_ws) == []
