"""Sessions that get through a lost connection: reconnect, replay, bounded attempts.

The fake server forgets a connection's audio when it is cut, as OpenAI does, so a turn
comes out whole only if the session sent its audio again.
"""

from __future__ import annotations

import numpy as np
import pytest
import trio
import trio.testing
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from trio_stt import (
    AudioLost,
    ClientVAD,
    RealtimeEvent,
    RealtimeServerError,
    Reconnected,
    ReconnectFailedError,
    Reconnecting,
    ReconnectPolicy,
    SessionCreated,
    SessionOptions,
    SessionUpdated,
    StreamedAudioInput,
    STTModelSettings,
    TranscriptionDelta,
    Turn,
    WebSocketClosedError,
)
from trio_stt.server import PocketSphinxRecognizer, Recognition
from trio_stt.testing import (
    FakeServer,
    RealtimeFaults,
    bundled_samples,
    open_fake_server,
    silence,
    speech_like,
)

from .helpers import Script, converse, feed, session_tasks

FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2)
VAD = STTModelSettings(
    turn_detection={"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500}
)
MANUAL = STTModelSettings(turn_detection="manual")
CLIENT_VAD = STTModelSettings(turn_detection=ClientVAD(detector="silero"))
TONE_CLIENT_VAD = STTModelSettings(turn_detection=ClientVAD(detector="energy"))  # tones


def recording() -> tuple[list[np.ndarray], list[str]]:
    """The bundled clips, each followed by a second of silence, and what each says."""
    parts, said = [], []
    for clip in bundled_samples():
        samples, rate = clip.read()
        assert rate == 24_000
        parts += [samples, np.zeros(24_000, np.int16)]
        said.append(clip.text)
    return parts, said


async def stream(
    server: FakeServer,
    settings: STTModelSettings,
    parts: list[np.ndarray],
    options: SessionOptions,
    *,
    commit_each: bool = False,
) -> tuple[list[str], list[RealtimeEvent]]:
    """Send *parts* flat out (committing after each speech part if asked); the turns and
    the session's own events."""
    audio = StreamedAudioInput()
    events: list[RealtimeEvent] = []
    turns: list[str] = []
    model = server.model("gpt-4o-transcribe")
    async with model.create_session(audio, settings, options=options) as session:

        async def say() -> None:
            for part in parts:
                for start in range(0, len(part), 2400):
                    await audio.add_audio(part[start : start + 2400])
                if commit_each and part.any():
                    await session.commit()
            await audio.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(say)
            async for event in session.events():
                if isinstance(event, (Reconnecting, Reconnected, AudioLost)):
                    events.append(event)
                elif isinstance(event, Turn) and event.text and not event.failed:
                    turns.append(event.text)
    return turns, events


@pytest.mark.speech
@pytest.mark.parametrize(
    ("settings", "commit_each"),
    [(VAD, False), (MANUAL, True), (CLIENT_VAD, False)],
    ids=["server_vad", "manual", "client_vad"],
)
async def test_real_speech_through_three_drops_comes_out_once_and_whole(
    settings: STTModelSettings, commit_each: bool
) -> None:
    parts, _ = recording()
    recognizer = PocketSphinxRecognizer()
    # Appends of exactly 100 ms, so that the drops fall where the comments say.
    options = SessionOptions(reconnect=FAST, min_append_ms=100, max_append_ms=100)
    async with open_fake_server(recognizer=recognizer) as server:
        expected, _ = await stream(server, settings, parts, options, commit_each=commit_each)
    assert len(expected) >= 6
    # Cut three connections in the middle of speech: after 2.5 s of the first (inside the
    # first clip), and some way into the replayed and new audio of the next two.
    faults = RealtimeFaults(drops=[(25, 1011), (40, 1012), (35, 1001)])
    async with open_fake_server(recognizer=recognizer, faults=faults) as server:
        turns, events = await stream(server, settings, parts, options, commit_each=commit_each)
        assert len(server.sessions) == 4
    assert turns == expected  # every turn once, in order, with the same text
    reconnects = [e for e in events if isinstance(e, Reconnecting)]
    replays = [e for e in events if isinstance(e, Reconnected)]
    assert len(reconnects) == 3 and all(e.attempt <= FAST.max_attempts for e in reconnects)
    assert reconnects[0].cause.startswith("websocket closed (code 1011")
    # A connection may be cut while it is still being sent the replay; then the next one
    # gets it all. Either way the last word is a connection that took the replay.
    assert isinstance(events[-1], Reconnected)
    assert replays and all(e.replayed_ms > 0 for e in replays)
    assert not any(isinstance(e, AudioLost) for e in events)
    assert session_tasks() == []


@pytest.mark.parametrize(
    ("settings", "commit_each"),
    [(VAD, False), (MANUAL, True), (TONE_CLIENT_VAD, False)],
    ids=["server_vad", "manual", "client_vad"],
)
async def test_a_connection_cut_mid_transcript_gives_the_turn_once(
    exact_clock: trio.testing.MockClock, settings: STTModelSettings, commit_each: bool
) -> None:
    """The second turn's words have come (deltas), its completion has not, and the line
    goes: the turn is transcribed again on the new connection and comes out once."""
    faults = RealtimeFaults(cut_mid_transcript=[(2, 1011)])
    script: Script = [part for k in range(4) for part in ((k, 1.5), (None, 1.0))]
    heard = await converse(settings, script, faults, commit_after_turns=commit_each,
                           keep=(TranscriptionDelta,), reconnect=FAST)  # fmt: skip
    assert len(heard.sessions) == 2
    assert heard.turns == [f"turn {k} 1.5s" for k in range(4)]
    # The cut connection's words for turn 1 came, under an item that never became a turn.
    said = {e.item_id: e.text for e in heard.events if isinstance(e, TranscriptionDelta)}
    assert list(said.values()).count("turn 1 1.5s") == 2
    assert heard.stats.reconnects == 1


async def test_fatal_errors_are_never_retried() -> None:
    faults = RealtimeFaults(error_after_appends=(1, "invalid_api_key", "Incorrect API key"))
    async with open_fake_server(faults=faults) as server:
        with pytest.raises(RealtimeServerError, match="Incorrect API key"):
            await stream(server, MANUAL, [speech_like(0.5)], SessionOptions(reconnect=FAST))
        assert len(server.sessions) == 1


async def test_attempts_are_bounded_and_the_last_cause_is_kept(
    exact_clock: trio.testing.MockClock,
) -> None:
    policy = ReconnectPolicy()  # 0.5 s doubling to 8 s, 6 attempts
    async with open_fake_server() as server:
        server.faults.drops = [(1, 1011)] * 20  # every connection dies at its first append
        options = SessionOptions(connector=server.connector, reconnect=policy)
        started = trio.current_time()
        with pytest.raises(ReconnectFailedError, match="6 attempt") as info:
            await stream(server, MANUAL, [speech_like(2.0)], options)
        waited = trio.current_time() - started
    assert info.value.attempts == 6
    assert isinstance(info.value.__cause__, WebSocketClosedError)
    assert info.value.__cause__.code == 1011
    full = 0.5 + 1 + 2 + 4 + 8 + 8  # the delays before attempts 1..6, jittered down <= 25 %
    assert full * 0.75 <= waited <= full
    assert len(server.sessions) == 7  # the first connection and 6 more


async def test_refused_connections_are_retried_and_their_attempts_reported(
    exact_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_server(["all of it"]) as server:
        options = SessionOptions(connector=server.connector, reconnect=ReconnectPolicy())
        audio = StreamedAudioInput()
        seen: list[RealtimeEvent] = []
        async with server.model("gpt-4o-transcribe").create_session(
            audio, MANUAL, options=options
        ) as session:
            server.faults.drops = [(1, 1012)]  # a restart: this connection goes ...
            server.faults.refuse_connections = 2  # ... and the next two are refused
            async with trio.open_nursery() as nursery:
                nursery.start_soon(feed, audio, speech_like(1.0))
                async for event in session.events():
                    seen.append(event)
    attempts = [(type(e).__name__, e.attempt) for e in seen if isinstance(e, (Reconnecting, Reconnected))]  # fmt: skip
    assert attempts == [
        ("Reconnecting", 1), ("Reconnecting", 2), ("Reconnecting", 3), ("Reconnected", 3)
    ]  # fmt: skip
    causes = [e.cause for e in seen if isinstance(e, Reconnecting)]
    assert "HTTP 503" in causes[1] and "HTTP 503" in causes[2]
    assert [e.text for e in seen if isinstance(e, Turn)] == ["all of it"]


async def test_keepalive_finds_a_dead_connection_and_the_session_goes_on(
    exact_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_server(["still here"]) as server:
        options = SessionOptions(
            connector=server.connector, keepalive_interval=10, keepalive_timeout=5
        )
        audio = StreamedAudioInput()
        async with server.model("gpt-4o-transcribe").create_session(
            audio, MANUAL, options=options
        ) as session:
            events = session.events()
            server.faults.ignore_pings = True  # the line dies without a word
            started = trio.current_time()
            assert [type(await events.receive()) for _ in range(2)] == [
                SessionCreated, SessionUpdated
            ]  # fmt: skip
            lost = await events.receive()
            assert isinstance(lost, Reconnecting) and "keepalive" in lost.cause
            assert trio.current_time() - started == 15  # the ping at 10 s, unanswered at 15
            server.faults.ignore_pings = False
            back = await events.receive()
            assert isinstance(back, Reconnected) and back.replayed_ms == 0
            await feed(audio, speech_like(0.5))
            turns = [e.text async for e in events if isinstance(e, Turn)]
    assert turns == ["still here"]


async def test_a_replay_buffer_at_its_limit_reports_the_loss_and_stays_bounded(
    exact_clock: trio.testing.MockClock,
) -> None:
    policy = ReconnectPolicy(replay_seconds=2.0)
    async with open_fake_server(["what was kept"]) as server:
        server.faults.drops = [(60, 1011)]  # after 6 s of one long, uncommitted turn
        options = SessionOptions(
            connector=server.connector, reconnect=policy, min_append_ms=100, max_append_ms=100
        )
        turns, events = await stream(server, MANUAL, [speech_like(8.0), silence(0.2)], options)
        session = server.sessions[1]
    lost = [e for e in events if isinstance(e, AudioLost)]
    replayed = [e for e in events if isinstance(e, Reconnected)]
    # Of the 8.2 s sent before the drop was noticed, 2 s were kept and the rest is
    # reported, to the millisecond; the new connection was sent no more than the bound.
    assert replayed[0].replayed_ms == 2000
    assert len(lost) == 1 and lost[0].ms + replayed[0].replayed_ms == 8200
    assert session.audio_bytes == 2 * 48_000
    assert turns == ["what was kept"]


class _Lengths:
    """Says how long the turn it was sent is: the answer depends on the audio alone."""

    blocking = False

    def recognize(self, samples: np.ndarray, sample_rate: int) -> Recognition:
        return Recognition.evenly_timed(f"{len(samples) / sample_rate:.1f} s", 0.1)


async def test_spans_record_the_turns_a_lost_connection_took_with_it(
    exact_clock: trio.testing.MockClock, span_exporter: InMemorySpanExporter
) -> None:
    async with open_fake_server(recognizer=_Lengths()) as server:
        server.faults.completion_delay = 5.0  # the first turn is still being transcribed ...
        server.faults.drops = [(8, 1011)]  # ... when the connection goes, mid second turn
        options = SessionOptions(
            connector=server.connector, reconnect=FAST, min_append_ms=100, max_append_ms=100
        )
        turns, _ = await stream(
            server, MANUAL, [speech_like(0.5), speech_like(0.8)], options, commit_each=True
        )
    assert turns == ["0.5 s", "0.8 s"]  # sent again, transcribed once, whole
    spans = span_exporter.get_finished_spans()
    lost = [s for s in spans if s.attributes and "trio_stt.reconnect_attempt" in s.attributes]
    assert len(lost) == 1 and lost[0].attributes["trio_stt.reconnect_attempt"] == 1
    assert lost[0].status.description.startswith("connection lost (websocket closed (code 1011")
    done = [s for s in spans if s.attributes and s.attributes.get("trio_stt.output")]
    # One span per turn sent again (they finish as completions arrive, in any order).
    assert sorted(s.attributes["trio_stt.output"] for s in done) == ["0.5 s", "0.8 s"]


def test_whether_a_loss_is_worth_another_connection_is_a_property_of_its_type() -> None:
    """Decided once, from the exception, never from its message."""
    from trio_stt import (
        RealtimeProtocolError,
        RealtimeServerError,
        ReconnectFailedError,
        STTWebsocketConnectionError,
        STTWebsocketTimeoutError,
        WebSocketClosedError,
    )
    from trio_stt._errors import recoverable

    refused = STTWebsocketConnectionError("handshake rejected")
    refused.status_code = 401
    restarting = STTWebsocketConnectionError("handshake rejected")
    restarting.status_code = 503
    cases = {
        WebSocketClosedError(1012, "restart"): True,
        WebSocketClosedError(1008, "policy"): False,
        WebSocketClosedError(1000, None): False,
        RealtimeServerError("slow down", code="rate_limit_exceeded"): True,
        RealtimeServerError("bad key", code="invalid_api_key"): False,
        STTWebsocketTimeoutError("session.created", 10, kind="setup"): True,
        STTWebsocketTimeoutError("a pong", 5, kind="keepalive"): True,
        # Same words as a setup timeout, but a server that held our audio and fell silent.
        STTWebsocketTimeoutError("session.created", 10, kind="inactivity"): False,
        RealtimeProtocolError("not JSON"): False,
        ReconnectFailedError(6, 60.0, OSError()): False,
        refused: False,
        restarting: True,
        OSError("reset"): True,
        ValueError("a bug"): False,
    }
    assert [recoverable(exc) for exc in cases] == list(cases.values())
