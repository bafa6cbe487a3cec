"""A WebSocket connector that reaches the fake server's ASGI app in memory.

No socket, no kernel, nothing but trio tasks and channels: a session test runs on it under
``MockClock(autojump_threshold=0)`` and every timeout is exact. The app is the same one the
loopback server runs (authorisation, paths, faults, VAD), so what a session does against
this connector it does against the real server; tests of the transport itself (framing,
TLS, closing sockets) still belong on loopback.

The two directions are bounded channels, as a socket's buffers are: a reader who stops
reading stops the server, then the sender.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import trio

from .._errors import (
    STTWebsocketConnectionError,
    WebSocketClosedError,
)
from .._supervise import open_supervised_nursery
from .._websocket import (
    WebSocketConnector,
    choose_failure,
    connect_timeout_error,
    oversized_error,
    rejected_handshake_error,
)

__all__ = ["memory_connector", "MemoryWebSocket"]

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

BUFFERED_MESSAGES = 64
"""Messages in flight each way before the writer waits (a socket buffer's worth)."""

APP_EXIT_SECONDS = 1.0
"""How long closing waits for the app to notice the disconnect and return."""


class MemoryWebSocket:
    """The client end of an in-memory WebSocket (a :class:`WebSocketTransport`)."""

    def __init__(
        self,
        to_app: trio.MemorySendChannel[Message],
        from_app: trio.MemoryReceiveChannel[Message],
        max_message_bytes: int,
        answers_pings: Callable[[], bool] = lambda: True,
    ) -> None:
        self._answers_pings = answers_pings
        self._to_app = to_app
        self._from_app = from_app
        self._limit = max_message_bytes
        self.closed: tuple[int, str | None] | None = None

    def __repr__(self) -> str:
        return f"<MemoryWebSocket closed={self.closed}>"

    def _closed_error(self) -> WebSocketClosedError:
        code, reason = self.closed or (1006, None)
        return WebSocketClosedError(code, reason)

    async def send(self, message: str) -> None:
        if self.closed is not None:
            raise self._closed_error()
        try:
            await self._to_app.send({"type": "websocket.receive", "text": message})
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.closed = self.closed or (1006, None)
            raise self._closed_error() from None

    async def receive(self) -> str | bytes:
        if self.closed is not None:
            await trio.lowlevel.checkpoint()
            raise self._closed_error()
        try:
            message = await self._from_app.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            self.closed = (1006, None)  # the app went away without a close
            raise self._closed_error() from None
        if message["type"] == "websocket.close":
            self.closed = (message.get("code", 1000), message.get("reason") or None)
            raise self._closed_error()
        data: str | bytes = message.get("text") or message.get("bytes") or ""
        if len(data) > self._limit:
            self.closed = (1009, None)
            raise oversized_error(self._limit)
        return data

    async def ping(self) -> None:
        """ASGI has no pings: the pong comes at once, or never if the server is told so."""
        if self.closed is not None:
            await trio.lowlevel.checkpoint()
            raise self._closed_error()
        if self._answers_pings():
            await trio.lowlevel.checkpoint()
            return
        await trio.sleep_forever()

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        await self.abort(code)

    async def abort(self, code: int = 1000) -> None:
        if self.closed is None:
            self.closed = (code, None)
        with trio.CancelScope(shield=True):
            with contextlib.suppress(
                trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError
            ):
                self._to_app.send_nowait({"type": "websocket.disconnect", "code": code})
            self._to_app.close()
            await trio.lowlevel.checkpoint()


def memory_connector(
    app: ASGIApp, *, answers_pings: Callable[[], bool] = lambda: True
) -> WebSocketConnector:
    """A connector (``SessionOptions(connector=...)``) for *app*'s realtime endpoint.

    *answers_pings* is asked at each ping whether the server answers it (a half-open
    connection does not).
    """

    @asynccontextmanager
    async def connect(
        url: str,
        headers: Sequence[tuple[str, str]],
        *,
        max_message_bytes: int,
        connect_timeout: float,
    ) -> AsyncIterator[MemoryWebSocket]:
        parts = urlsplit(url)
        scope: Message = {
            "type": "websocket",
            "scheme": parts.scheme,
            "path": parts.path,
            "query_string": parts.query.encode("latin-1"),
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            "subprotocols": [],
            "extensions": {"websocket.http.response": {}},
        }
        to_app_tx, to_app_rx = trio.open_memory_channel[Message](BUFFERED_MESSAGES)
        from_app_tx, from_app_rx = trio.open_memory_channel[Message](BUFFERED_MESSAGES)
        app_done = trio.Event()

        async def run_app() -> None:
            async def receive() -> Message:
                try:
                    return await to_app_rx.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    await trio.lowlevel.checkpoint()
                    return {"type": "websocket.disconnect", "code": 1006}

            async def send(message: Message) -> None:
                # If the client has gone, the app finds out from receive().
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await from_app_tx.send(message)
                    return
                await trio.lowlevel.checkpoint()

            try:
                with from_app_tx:
                    await app(scope, receive, send)
            finally:
                app_done.set()

        async with open_supervised_nursery(choose_failure) as nursery:
            nursery.start_soon(run_app)
            websocket = MemoryWebSocket(to_app_tx, from_app_rx, max_message_bytes, answers_pings)
            try:
                with trio.move_on_after(connect_timeout) as waiting:
                    await to_app_tx.send({"type": "websocket.connect"})
                    answer = await from_app_rx.receive()
                if waiting.cancelled_caught:
                    raise connect_timeout_error(url, connect_timeout)
                if answer["type"] == "websocket.http.response.start":
                    raise rejected_handshake_error(answer["status"])
                if answer["type"] != "websocket.accept":
                    raise STTWebsocketConnectionError(
                        f"websocket handshake rejected (the app answered {answer['type']} "
                        f"with code {answer.get('code')})"
                    )
                yield websocket
            finally:
                await websocket.abort()  # noqa: ASYNC102 - shields itself
                # Let the app see the disconnect and return, as it would on a socket.
                with trio.move_on_after(APP_EXIT_SECONDS, shield=True):
                    await app_done.wait()
                nursery.cancel_scope.cancel()

    return connect
