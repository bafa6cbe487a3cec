"""The WebSocket boundary: the only module that imports trio-websocket.

:class:`WebSocketTransport` is the small surface the session needs (send text, receive a
message, close politely, close at once). A *connector* opens one as an async context manager;
:func:`open_websocket` is the default, and tests and users may pass their own (a proxy, the
in-memory connector in :mod:`trio_stt.testing`).

Two rules live here and nowhere else:

* **Errors are mapped once.** trio-websocket, TLS and socket exceptions become ours
  (:class:`STTWebsocketConnectionError` and its subclasses) at this boundary, chained with
  ``from``; nothing above sees a transport library's types.
* **Never tear a frame.** A send cancelled half-way leaves half a frame on the wire, and a
  peer that gets another byte after it reads garbage (it closes with 1007). We hand
  trio-websocket a stream of ours that watches every write: once one was cut short, no byte
  follows it and closing means dropping the connection. So sends need no shield, and a
  cancelled caller is never held up by a peer that stopped reading.

Our messages do not go through trio-websocket's send path: :func:`masked_text_frame` builds
each frame in one pass and the watched stream writes it, one write at a time beside
trio-websocket's own (its pongs and close frames). That path cost a lock with two schedule
points and three payload copies per message, most of a busy session's CPU.

Closing comes in two kinds. :meth:`~WebSocketTransport.aclose` is the polite close handshake
(the caller bounds it). :meth:`~WebSocketTransport.abort` is for cancellation and failure:
it writes a close frame if that cannot tear anything (no write in flight, none cut short)
and drops the connection without waiting for an answer.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol
from urllib.parse import urlsplit

import trio
import trio_websocket
from wsproto.frame_protocol import FrameProtocol

from ._direct_stream import DirectSocketStream
from ._errors import (
    RealtimeProtocolError,
    STTWebsocketConnectionError,
    STTWebsocketTimeoutError,
    WebSocketClosedError,
    redact_secrets,
)
from ._frames import masked_text_frame
from ._rest import parse_error_body
from ._supervise import open_supervised_nursery

__all__ = [
    "WebSocketTransport",
    "WebSocketConnector",
    "TrioWebSocketTransport",
    "open_websocket",
    "choose_failure",
    "oversized_error",
    "connect_timeout_error",
    "send_timeout_error",
    "bounded_sends",
    "rejected_handshake_error",
]

GOODBYE_WRITE_SECONDS = 0.5
"""How long :meth:`abort` may spend writing its close frame (a few bytes into a socket that
has room take no time; a peer that stopped reading does not get to hold us)."""


class WebSocketTransport(Protocol):
    """What the session needs from a WebSocket connection; every error is one of ours."""

    async def send(self, message: str) -> None:
        """Send one text message. Raises :class:`WebSocketClosedError` when closed."""

    async def receive(self) -> str | bytes:
        """The next message. Raises :class:`WebSocketClosedError` when closed."""

    async def ping(self) -> None:
        """Send a ping and wait for its pong (the caller bounds how long it may take)."""

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """Close with a close handshake (the caller bounds how long it may take)."""

    async def abort(self, code: int = 1000) -> None:
        """Close at once: a close frame if one can be written whole, then drop the line."""


WebSocketConnector = Callable[..., AbstractAsyncContextManager[WebSocketTransport]]
"""``connector(url, headers, *, max_message_bytes, connect_timeout)``: an async context
manager that connects (raising ours on failure, :class:`STTWebsocketTimeoutError` after
*connect_timeout*), yields a :class:`WebSocketTransport`, and on exit leaves nothing open."""


class _WatchedStream(trio.abc.Stream):
    """The TCP or TLS stream under trio-websocket, watching every write (see above)."""

    def __init__(self, inner: trio.abc.Stream, tcp: DirectSocketStream) -> None:
        self.inner = inner
        self.writing = False
        self.torn = False
        self.cut = False
        self.peer_closed: Callable[[], bool] = lambda: False  # set by the transport
        self.tcp = tcp
        self._turn = trio.lowlevel.ParkingLot()  # writers waiting for the one in flight

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write *data* whole, after any write in flight (ours or trio-websocket's).

        A peer that closes stops reading, so a write in flight may never finish, and the
        answer to its close (trio-websocket's reader writes it before it tells anyone the
        connection closed) would wait behind it for ever. So a writer that finds the peer
        closed cuts the one in flight short by closing the socket under it: nobody will
        read it. (A cancel scope around every write would do it too, at a cost paid on
        every message of every session, for a moment that comes once.)
        """
        while self.writing:
            if not self.cut and self.peer_closed():
                self.cut = True
                self.tcp.close_now()
            await self._turn.park()
        if self.torn:
            raise trio.BrokenResourceError("a frame was cut short; nothing may follow it")
        self.writing = True
        try:
            await self.inner.send_all(data)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.torn = True
            if self.cut:
                raise trio.BrokenResourceError(
                    "the peer closed while this was being written"
                ) from None
            raise
        except BaseException:
            self.torn = True  # perhaps part of it went out: the stream is unusable
            raise
        finally:
            self.writing = False
            if self._turn:
                self._turn.unpark()

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


def oversized_error(limit: int) -> RealtimeProtocolError:
    """A message over *limit* arrived; the connection was closed with 1009."""
    return RealtimeProtocolError(
        f"the server sent a message over the {limit:,}-byte limit (closed with 1009)"
    )


def connect_timeout_error(url: str, seconds: float) -> STTWebsocketTimeoutError:
    """The connection to *url* (its query, which may hold secrets, left out) took too long."""
    return STTWebsocketTimeoutError(
        f"the websocket connection to {url.split('?')[0]}", seconds, kind="connect"
    )


def send_timeout_error(seconds: float) -> WebSocketClosedError:
    """A send waited *seconds* for a peer that stopped reading, and the line was dropped."""
    return WebSocketClosedError(
        None, None, detail=f"a send took longer than {seconds:g} s (the server stopped "
        "reading); the connection was dropped",
    )  # fmt: skip


class _TimedSends:
    """A transport whose every send is bounded, for transports that cannot bound their own
    (see :func:`bounded_sends`). The deadline per send costs a little on each message."""

    def __init__(self, inner: WebSocketTransport, seconds: float) -> None:
        self._inner = inner
        self._seconds = seconds
        self.receive = inner.receive
        self.ping = inner.ping
        self.aclose = inner.aclose
        self.abort = inner.abort

    async def send(self, message: str) -> None:
        with trio.move_on_after(self._seconds) as waited:
            await self._inner.send(message)
        if waited.cancelled_caught:
            raise send_timeout_error(self._seconds)


def bounded_sends(transport: WebSocketTransport, seconds: float) -> WebSocketTransport:
    """*transport*, with each send failing after *seconds* of waiting for a peer that
    stopped reading (:func:`send_timeout_error`).

    The default transport times a send only on the path where it waits for the peer, so
    the writes the kernel takes at once cost nothing; any other transport gets a deadline
    per send.
    """
    set_send_timeout = getattr(transport, "set_send_timeout", None)
    if set_send_timeout is None:
        return _TimedSends(transport, seconds)
    set_send_timeout(seconds)
    return transport


def _closed_error(
    exc: trio_websocket.ConnectionClosed, limit: int
) -> WebSocketClosedError | RealtimeProtocolError:
    reason = exc.reason
    if reason is not None and reason.code == 1009:
        return oversized_error(limit)  # trio-websocket refused a message over our limit
    return WebSocketClosedError(reason.code if reason else None, reason.reason if reason else None)


class TrioWebSocketTransport:
    """A trio-websocket connection over a stream we watch."""

    def __init__(
        self,
        connection: trio_websocket.WebSocketConnection,
        stream: _WatchedStream,
        max_message_bytes: int,
    ) -> None:
        self._ws = connection
        self._stream = stream
        self._limit = max_message_bytes
        stream.peer_closed = lambda: connection.closed is not None

    def __repr__(self) -> str:
        return f"<TrioWebSocketTransport closed={self._ws.closed is not None}>"

    def set_send_timeout(self, seconds: float) -> None:
        """Bound each send by *seconds*, timed only while it waits for the peer (the
        session asks this of transports that offer it, instead of timing every send)."""
        self._stream.tcp.send_timeout = seconds

    async def send(self, message: str) -> None:
        closed = self._ws.closed
        if closed is None:
            try:
                await self._stream.send_all(masked_text_frame(message))
                return
            except trio.TooSlowError:
                raise send_timeout_error(self._stream.tcp.send_timeout) from None
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                closed = self._ws.closed  # the reader may know why
                if closed is None:
                    raise WebSocketClosedError(1006, "the connection was lost") from exc
        raise _closed_error(trio_websocket.ConnectionClosed(closed), self._limit)

    async def receive(self) -> str | bytes:
        try:
            return await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise _closed_error(exc, self._limit) from exc

    async def ping(self) -> None:
        try:
            await self._ws.ping()
        except trio_websocket.ConnectionClosed as exc:
            raise _closed_error(exc, self._limit) from exc

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        if self._stream.torn or self._stream.writing:
            await self.abort(code)
            return
        await self._ws.aclose(code, reason)

    async def abort(self, code: int = 1000) -> None:
        with trio.CancelScope(shield=True):
            stream = self._stream
            if self._ws.closed is None and not (stream.torn or stream.writing):
                frame = FrameProtocol(client=True, extensions=[]).close(code)
                # Already gone (broken, closed): there is nobody to say goodbye to.
                gone = (trio.BrokenResourceError, trio.ClosedResourceError)
                with trio.move_on_after(GOODBYE_WRITE_SECONDS), contextlib.suppress(*gone):
                    await stream.send_all(frame)
            await trio.aclose_forcefully(stream.inner)


def choose_failure(failures: Sequence[BaseException]) -> BaseException:
    """One exception of ours for what failed inside trio-websocket's reader task."""
    for exc in failures:
        if not isinstance(exc, Exception):
            return exc
    exc = failures[0]
    if isinstance(exc, STTWebsocketConnectionError):
        return exc
    if isinstance(exc, trio_websocket.HandshakeError):  # a rejection, read by the reader task
        return _handshake_error(exc)
    error = STTWebsocketConnectionError(f"connection failed: {type(exc).__name__}")
    error.__cause__ = exc
    return error


def _handshake_error(exc: trio_websocket.HandshakeError) -> STTWebsocketConnectionError:
    """Our error for a failed handshake. Never chained to *exc*: a rejection carries the
    server's headers and body, which may quote the credentials we sent."""
    if isinstance(exc, trio_websocket.ConnectionRejected):
        return rejected_handshake_error(exc.status_code, exc.body or b"")
    return STTWebsocketConnectionError(f"websocket handshake failed: {type(exc).__name__}")


def rejected_handshake_error(status_code: int, body: bytes = b"") -> STTWebsocketConnectionError:
    """The server answered the handshake with an HTTP status; the error carries it, so
    that a reconnect can tell a refusal (4xx) from a server in trouble (5xx)."""
    text = redact_secrets(body.decode("utf-8", "replace"))
    text = parse_error_body(text)[0][:300] if text.strip() else ""  # a page: one line
    hint = " (check the API key)" if status_code in (401, 403) else ""
    error = STTWebsocketConnectionError(
        f"websocket handshake rejected with HTTP {status_code}{hint}: {text}".rstrip(": ")
    )
    error.status_code = status_code
    return error


async def _open_stream(
    host: str, port: int, secure: bool, ssl_context: ssl.SSLContext | None = None
) -> tuple[trio.abc.Stream, DirectSocketStream]:
    """The stream to speak WebSocket over, and the TCP stream at its bottom."""
    try:
        tcp = DirectSocketStream(await trio.open_tcp_stream(host, port))
    except OSError as exc:
        raise STTWebsocketConnectionError(
            f"cannot connect to {host}:{port}: {exc.strerror or exc} (is a server running there?)"
        ) from exc
    if not secure:
        return tcp, tcp
    tls = trio.SSLStream(
        tcp,
        ssl_context or ssl.create_default_context(),
        server_hostname=host,
        https_compatible=True,
    )
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError as exc:
        await trio.aclose_forcefully(tcp)
        raise STTWebsocketConnectionError(
            f"TLS handshake with {host}:{port} failed: {exc.__cause__ or exc}"
        ) from exc
    except BaseException:
        await trio.aclose_forcefully(tcp)
        raise
    return tls, tcp


@asynccontextmanager
async def open_websocket(
    url: str,
    headers: Sequence[tuple[str, str]],
    *,
    max_message_bytes: int,
    connect_timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[TrioWebSocketTransport]:
    """The default connector: TCP (and TLS for ``wss``, with *ssl_context* or the system's
    trust store), then the WebSocket handshake.

    trio-websocket's reader runs in a nursery of ours for as long as the block; on the way
    out the connection is aborted (a close frame if it is safe, then the socket closed), so
    a cancelled caller gets control back at once. Close politely first if you have time.
    """
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    async with open_supervised_nursery(choose_failure) as nursery:
        transport: TrioWebSocketTransport | None = None
        with trio.move_on_after(connect_timeout):
            stream = _WatchedStream(*await _open_stream(host, port, secure, ssl_context))
            try:
                connection = await trio_websocket.wrap_client_stream(
                    nursery,
                    stream,  # type: ignore[arg-type]
                    parts.netloc.rsplit("@", 1)[-1],
                    resource,
                    extra_headers=[(k.encode(), v.encode()) for k, v in headers],
                    message_queue_size=1,
                    max_message_size=max_message_bytes,
                )
            except trio_websocket.HandshakeError as exc:
                await trio.aclose_forcefully(stream.inner)
                raise _handshake_error(exc) from None
            except BaseException:
                await trio.aclose_forcefully(stream.inner)
                raise
            transport = TrioWebSocketTransport(connection, stream, max_message_bytes)
        if transport is None:
            raise connect_timeout_error(url, connect_timeout)
        try:
            yield transport
        finally:
            nursery.cancel_scope.cancel()  # trio-websocket's reader: nothing may write now
            await transport.abort()  # noqa: ASYNC102 - shields itself, bounded
