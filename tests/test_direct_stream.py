"""The TCP stream that writes and reads without a scheduler round trip when it can.

Every test runs over a real loopback TCP connection, and the TLS one over trio's own
SSLStream on top, since that is how wss:// sessions use it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
import trustme

from trio_stt._direct_stream import DirectSocketStream


@asynccontextmanager
async def connected_pair() -> AsyncIterator[tuple[DirectSocketStream, trio.SocketStream]]:
    """A DirectSocketStream and the server's end of the same loopback connection."""
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listener:
        port = listener.socket.getsockname()[1]
        client = DirectSocketStream(await trio.open_tcp_stream("127.0.0.1", port))
        async with client, await listener.accept() as server:
            yield client, server


async def receive_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    received = bytearray()
    while True:
        chunk = await stream.receive_some()
        assert chunk, f"EOF after {len(received)} of {size} bytes"
        received += chunk
        if len(received) >= size:
            return bytes(received)


def pattern(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


async def test_a_write_larger_than_the_socket_buffer_arrives_whole_and_in_order() -> None:
    payload = pattern(8_000_000)  # far past what the kernel takes at once
    async with connected_pair() as (client, server):
        with trio.fail_after(30):
            async with trio.open_nursery() as transfer:
                transfer.start_soon(client.send_all, payload)
                assert await receive_exactly(server, len(payload)) == payload
        await client.send_all(b"and then more")  # the fast path still works afterwards
        assert await receive_exactly(server, 13) == b"and then more"


async def test_reads_return_what_arrived_and_b_empty_at_eof() -> None:
    async with connected_pair() as (client, server):
        await server.send_all(b"hello")
        await trio.testing.wait_all_tasks_blocked()
        assert await client.receive_some(3) == b"hel"  # taken at once, max_bytes honoured
        assert await client.receive_some() == b"lo"
        async with trio.open_nursery() as waiting:  # nothing there yet: trio waits for it
            waiting.start_soon(server.send_all, b"later")
            assert await client.receive_some() == b"later"
        await server.aclose()
        assert await client.receive_some() == b""


async def test_a_cancelled_write_writes_nothing() -> None:
    async with connected_pair() as (client, server):
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.send_all(b"never")
        assert scope.cancelled_caught
        await client.send_all(b"sent")
        assert await receive_exactly(server, 4) == b"sent"


async def test_errors_come_in_trios_words() -> None:
    async with connected_pair() as (client, server):
        server.socket.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        await server.aclose()  # linger 0: the peer resets the connection
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BrokenResourceError):
            for _ in range(100):  # the first write may still be taken before the reset lands
                await client.send_all(b"x" * 65536)
        await client.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await client.send_all(b"after close")
        with pytest.raises(trio.ClosedResourceError):
            await client.receive_some()


async def test_two_writers_at_once_is_a_bug_reported_not_interleaved_bytes() -> None:
    async with connected_pair() as (client, _server):
        async with trio.open_nursery() as writers:  # the first blocks on a full buffer
            writers.start_soon(client.send_all, b"x" * 8_000_000)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await client.send_all(b"y")
            writers.cancel_scope.cancel()


async def test_tls_runs_on_top_of_it() -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    payload = pattern(3_000_000)
    async with connected_pair() as (tcp, server_tcp):
        client = trio.SSLStream(tcp, client_context, server_hostname="localhost")
        server = trio.SSLStream(server_tcp, server_context, server_side=True)
        with trio.fail_after(30):
            async with trio.open_nursery() as transfer:
                transfer.start_soon(client.send_all, payload)
                assert await receive_exactly(server, len(payload)) == payload
            await server.send_all(b"reply")
            assert await receive_exactly(client, 5) == b"reply"
