"""A TCP stream that tries each write and read once before asking trio to wait.

trio's :class:`trio.SocketStream` makes every ``send_all`` and ``receive_some`` a full
checkpoint: the call goes through an async context manager, then yields to the scheduler
even when the kernel took or gave the bytes at once. A realtime session writes a small frame
ten times a second per stream, and at hundreds of streams that round trip through the
scheduler was the largest single cost of sending audio. This stream calls the kernel first;
only when the socket would block (or something is wrong) does it hand over to the
:class:`trio.SocketStream` underneath, which waits and reports errors trio's way.

Each call still checks for cancellation first, so a cancelled sender stops at the next
write. It skips the schedule point only when no waiting was needed; the session's sender
parks whenever its input is empty, so it cannot starve the other tasks. It sits under TLS as
well as under plain WebSocket streams, since :class:`trio.SSLStream` writes through it.
"""

from __future__ import annotations

import math
import os

import trio


class DirectSocketStream(trio.abc.HalfCloseableStream):
    """Wraps a connected :class:`trio.SocketStream`; one write and one read at a time."""

    def __init__(self, inner: trio.SocketStream) -> None:
        self.inner = inner
        self._fd = inner.socket.fileno()
        self._busy_send = False
        self._busy_receive = False
        # A write that has to wait for the peer may wait this long, then TooSlowError.
        # Timed here, on the one path that waits, so that the writes the kernel takes at
        # once (nearly all of them) cost no deadline: hundreds of sessions moving a
        # deadline on every write keep trio's deadline heap busy enough to show in p99.
        self.send_timeout = math.inf

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._busy_send:
            raise trio.BusyResourceError("another task is writing to this stream")
        self._busy_send = True
        try:
            sent = self._try_write(data) if data else 0
            if sent < len(data) or not data:
                with memoryview(data) as view, trio.move_on_after(self.send_timeout) as waited:
                    await self.inner.send_all(view[sent:])
                if waited.cancelled_caught:
                    raise trio.TooSlowError(f"a write waited {self.send_timeout:g} s")
        finally:
            self._busy_send = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._busy_receive:
            raise trio.BusyResourceError("another task is reading from this stream")
        self._busy_receive = True
        try:
            if max_bytes is not None and max_bytes < 1:
                return await self.inner.receive_some(max_bytes)  # let trio refuse it
            data = self._try_read(max_bytes or 65536)
            if data is not None:
                return data
            return await self.inner.receive_some(max_bytes)
        finally:
            self._busy_receive = False

    # One non-blocking attempt each. Would-block, a closed socket and errors all go to the
    # SocketStream underneath: it waits, or raises the error the way trio words it.

    def _try_write(self, data: bytes | bytearray | memoryview) -> int:
        if self.inner.socket.fileno() == -1:
            return 0
        try:
            return os.write(self._fd, data)
        except OSError:
            return 0

    def _try_read(self, max_bytes: int) -> bytes | None:
        if self.inner.socket.fileno() == -1:
            return None
        try:
            return os.read(self._fd, max_bytes)
        except OSError:
            return None

    def close_now(self) -> None:
        """Close the socket at once: a task blocked writing to it (or reading) wakes with
        :class:`trio.ClosedResourceError` (trio's socket close notifies its waiters)."""
        self.inner.socket.close()

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()
