"""Opening one realtime connection: the handshake, ``session.created``, our update and its
answer, each wait under its own deadline.

A connection opened here is handed to a :class:`~trio_stt._driver.ConnectionDriver` to run.
The session opens its first one before your block is entered; a rotation opens the next
one ahead, in a task that holds it open (:attr:`OpenConnection.release`) while the current
one still carries the audio.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import trio

from ._config import ClientConfig
from ._errors import RealtimeServerError, STTWebsocketTimeoutError
from ._protocol import (
    PCM,
    ClientState,
    RealtimeConnection,
    RealtimeEvent,
    ServerError,
    SessionCreated,
    WireFormat,
    handshake_headers,
)
from ._protocol._record import seconds_left
from ._session_options import SessionOptions, SessionStatistics
from ._settings import STTModelSettings
from ._websocket import WebSocketTransport, open_websocket

__all__ = ["OpenConnection", "open_connection", "held", "server_error"]

logger = logging.getLogger("trio_stt")


@dataclass(eq=False)
class OpenConnection:
    """A connected, configured connection, ready to carry audio."""

    transport: WebSocketTransport
    core: RealtimeConnection
    setup_events: list[RealtimeEvent]
    expires: float | None  # when the server will end it, on trio's clock
    release: trio.Event = field(default_factory=trio.Event)  # for one opened ahead


@dataclass(frozen=True)
class Opener:
    """Everything it takes to open another connection like the first."""

    model: str
    settings: STTModelSettings
    config: ClientConfig
    options: SessionOptions
    stats: SessionStatistics
    audio_format: WireFormat = PCM


@asynccontextmanager
async def open_connection(opener: Opener) -> AsyncIterator[OpenConnection]:
    """Connect and configure. Leaving the block drops the connection (a close frame if one
    can be written whole); close it politely first if there is time."""
    opts = opener.options
    core = RealtimeConnection(
        dialect=opts.dialect, max_message_bytes=opts.max_message_bytes,
        redact=opener.config.redactor.text, audio_format=opener.audio_format,
    )  # fmt: skip
    with opener.config.redactor.guard():
        credentials = await opener.config.credential_headers()
    headers = list(credentials.items()) + handshake_headers(opts.dialect)
    connector = opts.connector or partial(open_websocket, ssl_context=opener.config.ssl_context)
    async with connector(
        opener.config.realtime_url(opener.model),
        headers,
        max_message_bytes=opts.max_message_bytes,
        connect_timeout=opts.connect_timeout,
    ) as transport:
        events = await _receive_until(
            opener, transport, core, "session.created", opts.session_created_timeout
        )
        wire_model = opener.config.wire_model(opener.model)
        await transport.send(
            core.update_session(opener.model, opener.settings, wire_model=wire_model)
        )
        opener.stats.messages_sent += 1
        events += await _receive_until(
            opener, transport, core, "session.updated", opts.session_updated_timeout
        )
        logger.info("realtime session configured: %s, dialect %s", opener.model, opts.dialect)
        created = next((e for e in events if isinstance(e, SessionCreated)), None)
        left = seconds_left(created.session, time.time()) if created is not None else None
        expires = None if left is None else trio.current_time() + left
        connection = OpenConnection(transport, core, events, expires)
        del events, created  # this frame lives as long as the connection: hold no more
        yield connection


@asynccontextmanager
async def held(connection: OpenConnection) -> AsyncIterator[OpenConnection]:
    """Use a connection opened ahead; leaving lets the task that holds it close it."""
    try:
        yield connection
    finally:
        connection.release.set()


async def _receive_until(
    opener: Opener,
    transport: WebSocketTransport,
    core: RealtimeConnection,
    what: str,
    limit: float,
) -> list[RealtimeEvent]:
    """Read until the core leaves the phase it is in (the answer *what* came)."""
    await trio.lowlevel.checkpoint()
    state, events = core.state, []
    with trio.move_on_after(limit) as scope:
        while core.state is state:
            message = await transport.receive()
            opener.stats.messages_received += 1
            events += core.receive(message)
            if core.state is ClientState.FAILED:
                raise server_error(core.fatal_error)
    if scope.cancelled_caught:
        raise STTWebsocketTimeoutError(what, limit, kind="setup")
    return events


def server_error(event: ServerError | None) -> RealtimeServerError:
    """The exception for the fatal error event that failed a connection."""
    assert event is not None
    return RealtimeServerError(
        event.message, code=event.code, type=event.type, param=event.param,
        event_id=event.client_event_id,
    )  # fmt: skip
