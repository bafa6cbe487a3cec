"""Hostile servers on loopback: they speak just enough HTTP or WebSocket to do harm.

They are real servers (trio TCP listeners, trio-websocket's server) so that the client's
whole stack - httpx2, h11, trio-websocket, our error mapping - is exercised, not a mock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import trio
import trio_websocket


class RawRequest:
    """The request a raw server read: its header lines (lower-cased names) and body."""

    def __init__(self, head: bytes, body: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        self.request_line = lines[0]
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.body = body

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")


CREDENTIALS = (b"authorization", b"api-key")

Responder = Callable[[trio.SocketStream, RawRequest], Awaitable[None]]


async def _read_request(stream: trio.SocketStream) -> RawRequest:
    await trio.lowlevel.checkpoint()
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise trio.BrokenResourceError("client went away")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    request = RawRequest(head, b"")
    length = int(request.headers.get("content-length", "0"))
    while len(body) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise trio.BrokenResourceError("client went away")
        body += chunk
    request.body = body
    return request


@asynccontextmanager
async def open_raw_http_server(respond: Responder) -> AsyncIterator[str]:
    """Serve every connection with *respond*; yields the base URL (``http://127.0.0.1:N/v1``).

    One request per connection: *respond* writes whatever bytes it likes, then the
    connection is closed.
    """

    async def handle(stream: trio.SocketStream) -> None:
        try:
            request = await _read_request(stream)
            await respond(stream, request)
        except trio.BrokenResourceError:
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"http://127.0.0.1:{port}/v1"
        nursery.cancel_scope.cancel()


def http_response(
    body: bytes,
    *,
    status: str = "200 OK",
    content_type: str = "application/json",
    length: int | None = None,
) -> bytes:
    """A whole HTTP/1.1 response (``length`` overrides the Content-Length header)."""
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def answer(body: bytes, **kwargs: object) -> Responder:
    """A responder that sends one fixed response."""

    async def respond(stream: trio.SocketStream, request: RawRequest) -> None:
        await stream.send_all(http_response(body, **kwargs))  # type: ignore[arg-type]

    return respond


@asynccontextmanager
async def open_rejecting_websocket_server(status: int = 401) -> AsyncIterator[str]:
    """A WebSocket server that refuses every handshake, quoting the headers it was sent in
    the body and the Authorization header in a response header. Yields the base URL."""

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        given = dict(request.headers).get(b"authorization", b"")
        credentials = [value for name, value in request.headers if name in CREDENTIALS]
        quoted = repr([*credentials, request.headers]).encode()
        body = b'{"error":{"message":"Incorrect API key provided: ' + quoted + b'"}}'
        await request.reject(status, extra_headers=[(b"x-echo", given)], body=body)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None)
        yield f"http://127.0.0.1:{server.port}/v1"
        nursery.cancel_scope.cancel()
