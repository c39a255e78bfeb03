"""Redis pub/sub: one channel per Redis database number, whole messages on it."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from feedback.live.brokers import RemoteBroker
from feedback.live.events import LiveMessage
from feedback.live.hub import Hub

log = logging.getLogger("feedback.live")

# An idle subscription is pinged this often; no answer within PING_TIMEOUT means the link
# is dead even if no error says so (a peer that vanished without closing the socket).
PING_EVERY_SECONDS = 5.0
PING_TIMEOUT_SECONDS = 10.0


def channel_for(url: str) -> str:
    # Pub/sub ignores the database number; putting it in the channel name keeps deployments
    # (and test runs) that share a Redis apart the way their keys are.
    path = urlsplit(url).path.strip("/")
    return f"feedback:live:{path or '0'}"


class RedisBroker(RemoteBroker):
    kind = "redis"

    def __init__(
        self, url: str, hub: Hub, *, on_reconnect: Callable[[], None] | None = None
    ) -> None:
        super().__init__(hub, on_reconnect=on_reconnect)
        self.channel = channel_for(url)
        # No hidden retries: a failure surfaces here, where reconnecting also means catching up.
        self._client: Redis = Redis.from_url(
            url,
            socket_connect_timeout=2,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
            client_name=f"feedback-live-{self.origin}",
        )

    async def _listen(self, ready: Callable[[], None]) -> None:
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            ready()
            last_heard = time.monotonic()
            pinged_at: float | None = None
            while True:
                message = await pubsub.get_message(timeout=1.0)
                now = time.monotonic()
                if message is not None:
                    last_heard, pinged_at = now, None
                    if message["type"] == "message":
                        self._deliver(message["data"])
                    continue
                if pinged_at is not None and now - pinged_at > PING_TIMEOUT_SECONDS:
                    raise ConnectionError("Redis did not answer a ping")
                if pinged_at is None and now - last_heard > PING_EVERY_SECONDS:
                    await pubsub.ping()
                    pinged_at = now
        finally:
            try:
                await pubsub.aclose()
            except Exception:  # the connection is already gone
                log.debug("closing the Redis subscription failed", exc_info=True)

    def _deliver(self, data: bytes | str) -> None:
        try:
            envelope = json.loads(data)
            if envelope["o"] == self.origin:
                return
            messages = [LiveMessage(uuid.UUID(r), int(s), str(t)) for r, s, t in envelope["m"]]
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed message on %s", self.channel)
            return
        self.received += len(messages)
        self.hub.publish(messages)

    async def _send(self, messages: list[LiveMessage]) -> None:
        payload = json.dumps(
            {"o": self.origin, "m": [[str(m.recipient_id), m.seq, m.text] for m in messages]},
            separators=(",", ":"),
        )
        await self._client.publish(self.channel, payload)

    async def _close(self) -> None:
        await self._client.aclose()
