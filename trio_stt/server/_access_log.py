"""One access-log line per request and per WebSocket session, written once it is over.

hypercorn's own access log was left behind for two reasons. It logs when the last byte is
handed to the socket, and again (with status ``-``) if the client closes first, so a fast
client got its request logged twice. And it logs a WebSocket at the handshake, so a session
that ran an hour and ended in an error looked like every other ``101``. Here the line is
written when the app is done with the request: once, with how it ended and how long it took
in milliseconds. The path goes without its query, which may carry a key (Azure's
``api-key=``).
"""

from __future__ import annotations

import logging

import trio

from ._app import Message, Receive, Scope, Send, STTServerApp

__all__ = ["ACCESS_LOGGER", "AccessLog"]

ACCESS_LOGGER = "trio_stt.server.access"


class AccessLog:
    """An ASGI app that runs *app* and logs each request to :data:`ACCESS_LOGGER`."""

    def __init__(self, app: STTServerApp) -> None:
        self.app = app
        self.logger = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        seen = _Seen()

        async def watched(message: Message) -> None:
            seen.note(message)
            await send(message)

        async def heard() -> Message:
            message = await receive()
            seen.note(message)
            return message

        start = trio.current_time()
        ended = "failed"
        try:
            await self.app(scope, heard, watched)
            ended = "client left" if seen.left and seen.status is None else ""
        except trio.Cancelled:
            ended = "cancelled"
            raise
        finally:
            self._write(scope, seen, trio.current_time() - start, ended)

    def _write(self, scope: Scope, seen: _Seen, seconds: float, ended: str) -> None:
        client = scope.get("client")
        who = f"{client[0]}:{client[1]}" if client else "-"
        method = "GET" if scope["type"] == "websocket" else scope.get("method", "-")
        status = seen.status if seen.status is not None else "-"
        size = f" {seen.body_bytes}B" if scope["type"] == "http" else ""
        took = f"{seconds * 1000:.1f}ms" if seconds < 10 else f"{seconds:.1f}s"
        closed = f" close={seen.close_code}" if seen.close_code is not None else ""
        note = f" ({ended})" if ended else ""
        self.logger.info(
            '%s "%s %s" %s%s %s%s%s', who, method, scope.get("path", ""), status, size, took,
            closed, note,
        )  # fmt: skip


class _Seen:
    """What the app sent: the status, the body's size, the WebSocket's close code."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.body_bytes = 0
        self.close_code: int | None = None
        self.left = False  # the client disconnected

    def note(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = int(message["status"])
        elif kind == "http.response.body":
            self.body_bytes += len(message.get("body", b""))
        elif kind == "websocket.accept":
            self.status = 101
        elif kind in ("http.disconnect", "websocket.disconnect"):
            self.left = True
        elif kind == "websocket.close":
            self.status = self.status or 403  # closed before the accept: refused
            self.close_code = int(message.get("code", 1000))
