"""Keepalive: pings find a connection that died without closing while nobody speaks.

With a silent speaker and no turn outstanding, no other deadline is armed, and a dead
socket would only show when the next audio is sent (and TCP gives up minutes later). The
fake server in memory can leave pings unanswered, for exact timing; a hand-made server on a
real socket shows the same against a peer that goes silent for good.
"""

from __future__ import annotations

from functools import partial

import pytest
import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from trio_stt import (
    ClientConfig,
    OpenAISTTModel,
    SessionOptions,
    StreamedAudioInput,
    STTWebsocketTimeoutError,
)
from trio_stt._protocol._server import RealtimeServerConnection
from trio_stt.testing import open_fake_server

from .helpers import session_tasks


async def test_a_half_open_connection_is_found_while_the_speaker_is_silent(
    exact_clock: trio.testing.MockClock,
) -> None:
    # Without reconnecting, so that the failure itself is seen (test_reconnect.py has the
    # session that gets through it).
    options_kw = {"keepalive_interval": 15.0, "keepalive_timeout": 5.0, "reconnect": None}
    async with open_fake_server() as server:
        options = SessionOptions(connector=server.connector, **options_kw)
        audio = StreamedAudioInput()
        started = trio.current_time()
        with pytest.raises(STTWebsocketTimeoutError, match="keepalive ping") as info:
            async with server.model("gpt-live-transcribe").create_session(
                audio, options=options
            ) as session:
                await trio.sleep(61)  # four pings, answered: nothing happens
                assert session.statistics().pings_answered == 4
                server.faults.ignore_pings = True  # the line goes dead, nothing closes
                await trio.sleep_forever()
        # The ping at 75 s goes unanswered and is given up on at 80 s.
        assert trio.current_time() - started == 80
        assert str(info.value) == (
            "timed out after 5 s waiting for a pong to the keepalive ping "
            "(the connection died without closing)"
        )
        assert session_tasks() == []


async def test_no_pings_when_turned_off(exact_clock: trio.testing.MockClock) -> None:
    async with open_fake_server() as server:
        server.faults.ignore_pings = True
        options = SessionOptions(connector=server.connector, keepalive_interval=None)
        async with server.model("gpt-live-transcribe").create_session(
            StreamedAudioInput(), options=options
        ) as session:
            await trio.sleep(3600)  # an hour of silence, and no one asks
            assert session.statistics().pings_answered == 0


def test_keepalive_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="keepalive_timeout must be a finite number > 0"):
        SessionOptions(keepalive_timeout=0)
    with pytest.raises(ValueError, match="keepalive_interval"):
        SessionOptions(keepalive_interval=float("inf"))


async def silent_after_setup(stream: trio.SocketStream) -> None:
    """A realtime server that configures the session, then never reads or writes again."""
    ws = WSConnection(ConnectionType.SERVER)
    core = RealtimeServerConnection()
    configured = False
    while not configured:
        ws.receive_data(await stream.receive_some())
        for event in ws.events():
            if isinstance(event, Request):
                await stream.send_all(ws.send(AcceptConnection()))
                await stream.send_all(ws.send(TextMessage(core.session_created())))
            elif isinstance(event, TextMessage):
                update = core.receive(event.data)
                await stream.send_all(ws.send(TextMessage(core.session_updated(update.config))))  # type: ignore[attr-defined]
                configured = True
    await trio.sleep_forever()  # half-open: no pong, no close


async def test_a_real_socket_that_goes_silent_is_detected_in_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    autojump_clock.autojump_threshold = 0.1  # real sockets: let the bytes cross first
    async with trio.open_nursery() as nursery:
        serve = partial(trio.serve_tcp, silent_after_setup, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        port = listeners[0].socket.getsockname()[1]
        config = ClientConfig(base_url=f"http://127.0.0.1:{port}/v1")
        model = OpenAISTTModel("gpt-live-transcribe", config)
        options = SessionOptions(keepalive_interval=10, keepalive_timeout=10, reconnect=None)
        started = trio.current_time()
        with pytest.raises(STTWebsocketTimeoutError, match="keepalive ping"):
            async with model.create_session(StreamedAudioInput(), options=options):
                await trio.sleep_forever()  # a silent speaker
        waited = trio.current_time() - started
        assert 20 <= waited < 21  # the first ping at 10 s, given up on at 20 s
        nursery.cancel_scope.cancel()
