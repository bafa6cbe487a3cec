"""The WebSocket boundary: the only module that imports trio-websocket.

:class:`WebSocketTransport` is the small surface the session needs (send text, receive a
message, close politely, abort). :func:`connect_websocket` is the default factory; tests and
users may pass their own factory with the same signature (a proxy, an in-memory stream).

We open the TCP/TLS stream ourselves and hand it to ``trio_websocket.wrap_client_stream``
because we need to hold the stream: after a send is interrupted half-way through a frame the
only safe move is to drop the connection without writing another byte (a close frame after
half a frame is garbage to the peer, which answers 1007), and :func:`trio.aclose_forcefully`
on our own stream does exactly that.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol
from urllib.parse import urlsplit

import trio
import trio_websocket

from ._errors import STTWebsocketConnectionError, WebSocketClosedError, redact_secrets

__all__ = [
    "WebSocketTransport",
    "WebSocketConnector",
    "TrioWebSocketTransport",
    "connect_websocket",
    "map_websocket_error",
]


class WebSocketTransport(Protocol):
    """What the session needs from a WebSocket connection."""

    async def send(self, message: str) -> None:
        """Send one text message. Raises :class:`WebSocketClosedError` when closed."""

    async def receive(self) -> str | bytes:
        """The next message. Raises :class:`WebSocketClosedError` when closed."""

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """Close with a close handshake (the caller bounds how long it may take)."""

    async def abort(self) -> None:
        """Drop the connection at once, writing nothing more."""


WebSocketConnector = Callable[
    [str, Sequence[tuple[str, str]], trio.Nursery, int], Awaitable[WebSocketTransport]
]
"""``(url, headers, nursery, max_message_bytes) -> transport``; the nursery runs its reader."""


def _closed_error(exc: trio_websocket.ConnectionClosed) -> WebSocketClosedError:
    reason = exc.reason
    return WebSocketClosedError(reason.code if reason else None, reason.reason if reason else None)


class TrioWebSocketTransport:
    """A trio-websocket connection over a stream we own."""

    def __init__(
        self, connection: trio_websocket.WebSocketConnection, stream: trio.abc.Stream
    ) -> None:
        self._ws = connection
        self._stream = stream

    def __repr__(self) -> str:
        return f"<TrioWebSocketTransport closed={self._ws.closed is not None}>"

    @property
    def close_reason(self) -> tuple[int | None, str | None] | None:
        reason = self._ws.closed
        return None if reason is None else (reason.code, reason.reason)

    async def send(self, message: str) -> None:
        try:
            await self._ws.send_message(message)
        except trio_websocket.ConnectionClosed as exc:
            raise _closed_error(exc) from exc

    async def receive(self) -> str | bytes:
        try:
            return await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise _closed_error(exc) from exc

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        await self._ws.aclose(code, reason)

    async def abort(self) -> None:
        await trio.aclose_forcefully(self._stream)


async def connect_websocket(
    url: str,
    headers: Sequence[tuple[str, str]],
    nursery: trio.Nursery,
    max_message_bytes: int,
) -> TrioWebSocketTransport:
    """Open a WebSocket to *url*; trio-websocket's reader task runs in *nursery*."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        tcp = await trio.open_tcp_stream(host, port)
    except OSError as exc:
        raise STTWebsocketConnectionError(
            f"cannot connect to {host}:{port}: {exc.strerror or exc}"
        ) from exc
    stream: trio.abc.Stream = tcp
    try:
        if secure:
            tls = trio.SSLStream(
                tcp, ssl.create_default_context(), server_hostname=host, https_compatible=True
            )
            await tls.do_handshake()
            stream = tls
        host_header = parts.netloc.rsplit("@", 1)[-1]
        connection = await trio_websocket.wrap_client_stream(
            nursery,
            stream,  # type: ignore[arg-type]
            host_header,
            resource,
            extra_headers=[(k.encode(), v.encode()) for k, v in headers],
            message_queue_size=1,
            max_message_size=max_message_bytes,
        )
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return TrioWebSocketTransport(connection, stream)


def map_websocket_error(exc: BaseException) -> STTWebsocketConnectionError | None:
    """Our exception for a trio-websocket or TLS failure raised inside its reader task."""
    if isinstance(exc, trio_websocket.ConnectionRejected):
        body = redact_secrets((exc.body or b"").decode("utf-8", "replace"))[:200]
        hint = " (check the API key)" if exc.status_code in (401, 403) else ""
        return STTWebsocketConnectionError(
            f"websocket handshake rejected with HTTP {exc.status_code}{hint}: {body}".rstrip(": ")
        )
    if isinstance(exc, trio_websocket.ConnectionClosed):
        return _closed_error(exc)
    if isinstance(exc, trio_websocket.HandshakeError):
        return STTWebsocketConnectionError(f"websocket handshake failed: {type(exc).__name__}")
    if isinstance(exc, (ssl.SSLError, trio.BrokenResourceError)):
        return STTWebsocketConnectionError(f"connection failed: {exc}")
    return None
