"""Brokers carry wake-ups between the process that committed an event and the processes
holding the recipients' sockets. The in-memory one serves a single process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from feedback.live.events import LiveMessage
from feedback.live.hub import Hub


class Broker(Protocol):
    async def start(self) -> None: ...
    async def publish(self, messages: Sequence[LiveMessage]) -> None: ...
    async def stop(self) -> None: ...


class MemoryBroker:
    """Single process: hand messages straight to the local hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def start(self) -> None:
        return None

    async def publish(self, messages: Sequence[LiveMessage]) -> None:
        self.hub.publish(messages)

    async def stop(self) -> None:
        return None


def make_broker(url: str, hub: Hub) -> Broker:
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        return MemoryBroker(hub)
    raise ValueError(f"FEEDBACK_BROKER_URL {scheme}:// is not supported yet; use memory://")
