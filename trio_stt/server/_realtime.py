"""Realtime endpoint (placeholder until the realtime core lands)."""

from __future__ import annotations

from typing import Any


class RealtimeEndpoint:
    def __init__(self, config: Any) -> None:
        self.config = config

    async def handle(self, scope: Any, receive: Any, send: Any, authorized: bool) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1011})
