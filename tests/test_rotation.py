"""Sessions that outlive the server's time limit: rotation to a new connection.

The fake server ends each session an hour after ``session.created`` with ``session_expired``,
as OpenAI does, and says when in ``expires_at``. Every turn here is a tone whose pitch names
it, and the recognizer reports the pitch and how long the tone lasted: a turn lost, cut or
sent twice changes the list of turns.
"""

from __future__ import annotations

import numpy as np
import pytest
import trio
import trio.testing

from trio_stt import (
    AudioLost,
    OpenAISTTTranscriptionSession,
    RealtimeEvent,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    Rotated,
    RotationPolicy,
    ServerError,
    SessionOptions,
    StreamedAudioInput,
    STTModelSettings,
    Turn,
)
from trio_stt.testing import FakeServer, RealtimeFaults, ScriptedRecognizer, open_fake_server

from .helpers import assert_nothing_left, hear, tone

RATE = 24_000
VAD = STTModelSettings(
    turn_detection={"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500}
)
MANUAL = STTModelSettings(turn_detection="manual")


async def live(
    server: FakeServer,
    settings: STTModelSettings,
    script: list[tuple[int | None, float]],
    options: SessionOptions,
    *,
    commit_after_turns: bool = False,
    refuse_after_first_turn: int = 0,
    leave_after_rotation: bool = False,
) -> tuple[list[str], list[RealtimeEvent], OpenAISTTTranscriptionSession]:
    """Speak *script* in real time, a second at a time: ``(k, seconds)`` is turn *k*'s tone,
    ``(None, seconds)`` quiet, committing after each turn if asked. Returns the turns, the
    session's own events, and the session."""
    audio = StreamedAudioInput()
    turns: list[str] = []
    events: list[RealtimeEvent] = []
    model = server.model("gpt-4o-transcribe")
    async with model.create_session(audio, settings, options=options) as session:

        async def speak() -> None:
            for k, seconds in script:
                sound = tone(k, seconds) if k is not None else np.zeros(int(seconds * RATE))
                for start in range(0, len(sound), RATE):
                    await audio.add_audio(sound[start : start + RATE].astype(np.float32))
                    await trio.sleep(min(1.0, (len(sound) - start) / RATE))
                if commit_after_turns and k is not None:
                    await session.commit()
            await audio.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(speak)
            async for event in session.events():
                if isinstance(event, Turn):
                    assert not event.failed, event
                    if event.text:
                        turns.append(event.text)
                    if len(turns) == 1 and refuse_after_first_turn:
                        server.faults.refuse_connections = refuse_after_first_turn
                elif isinstance(
                    event, (Rotated, Reconnecting, Reconnected, AudioLost, ServerError)
                ):
                    events.append(event)
                if leave_after_rotation and isinstance(event, Rotated):
                    nursery.cancel_scope.cancel()
                    break
    return turns, events, session


def conversation(minutes: int) -> list[tuple[int | None, float]]:
    """A turn of 2 s every minute, quiet in between."""
    return [part for k in range(minutes) for part in ((k, 2.0), (None, 58.0))]


async def test_three_hours_against_a_sixty_minute_cap_is_one_stream_of_turns(
    exact_clock: trio.testing.MockClock,
) -> None:
    faults = RealtimeFaults()  # OpenAI's limit: an hour, announced in expires_at
    assert faults.expire_after == 3600 and faults.announce_expiry
    async with open_fake_server(recognizer=ScriptedRecognizer(fn=hear), faults=faults) as server:
        options = SessionOptions(connector=server.connector)
        turns, events, session = await live(server, VAD, conversation(180), options)
        await assert_nothing_left(server)
        sessions = server.sessions
    assert turns == [f"turn {k} 2.0s" for k in range(180)]  # once each, whole, in order
    rotations = [e for e in events if isinstance(e, Rotated)]
    # Each connection is left 5 minutes before its hour is up: 3 hours take 3 rotations.
    assert len(rotations) == 3 and len(sessions) == 4
    assert events == rotations  # no reconnect, no loss, no error: the cap was never hit
    assert [r.session_id for r in rotations] == ["sess_0002", "sess_0003", "sess_0004"]
    # The old connection had heard the quiet it dropped: only the prefix padding moves.
    assert all(r.replayed_ms <= 300 for r in rotations)
    stats = session.statistics()
    assert stats.rotations == 3 and stats.reconnects == 0
    assert stats.audio_seconds_sent == pytest.approx(3 * 3600)
    assert stats.audio_seconds_lost == 0
    received = sum(s.audio_bytes for s in sessions) / 48_000
    assert received == pytest.approx(3 * 3600 + stats.audio_seconds_replayed)
    # Each old connection was told to drop what it held uncommitted, then closed.
    assert all(s.events_of("input_audio_buffer.clear") for s in sessions[:-1])


async def test_push_to_talk_moves_a_turn_under_way_whole(
    exact_clock: trio.testing.MockClock,
) -> None:
    """Manual mode, turns of 100 s back to back: the rotation comes mid-turn, and the turn
    under way goes to the new connection with everything said of it so far."""
    faults = RealtimeFaults(expire_after=600)
    async with open_fake_server(recognizer=ScriptedRecognizer(fn=hear), faults=faults) as server:
        options = SessionOptions(
            connector=server.connector, rotation=RotationPolicy(open_before=120, switch_before=30)
        )
        script: list[tuple[int | None, float]] = [(k, 100.0) for k in range(9)]
        turns, events, session = await live(server, MANUAL, script, options,
                                            commit_after_turns=True)  # fmt: skip
        await assert_nothing_left(server)
    assert turns == [f"turn {k} 100.0s" for k in range(9)]
    rotations = [e for e in events if isinstance(e, Rotated)]
    assert events == rotations and len(rotations) == 1
    # Opened at 480 s, with nothing owed: turn 4 had been under way for 80 s.
    assert rotations[0].replayed_ms == pytest.approx(80_000, abs=1000)
    assert session.statistics().audio_seconds_lost == 0


async def test_speech_that_runs_into_the_limit_is_moved_at_the_last_moment(
    exact_clock: trio.testing.MockClock,
) -> None:
    """Server VAD, a turn that never pauses before the switch deadline: the switch comes at
    ``switch_before``, mid-speech, and the new connection is sent all of the turn so far."""
    faults = RealtimeFaults(expire_after=600)
    async with open_fake_server(recognizer=ScriptedRecognizer(fn=hear), faults=faults) as server:
        options = SessionOptions(
            connector=server.connector,
            rotation=RotationPolicy(open_before=120, switch_before=30),
            reconnect=ReconnectPolicy(replay_seconds=300),
        )
        script = [(0, 2.0), (None, 458.0), (1, 130.0), (None, 60.0), (2, 2.0), (None, 10.0)]
        turns, events, _ = await live(server, VAD, script, options)
        await assert_nothing_left(server)
    assert turns == ["turn 0 2.0s", "turn 1 130.0s", "turn 2 2.0s"]
    (rotation,) = events
    assert isinstance(rotation, Rotated)
    # Turn 1 began at 460 s; the switch came at 570 s: 110 s of it, and the padding before.
    assert rotation.replayed_ms == pytest.approx(110_300, abs=1000)


async def test_without_expires_at_the_limit_is_a_lost_connection(
    exact_clock: trio.testing.MockClock,
) -> None:
    """A server that ends the session without having said when: no rotation, but the
    session reconnects, and the turn under way is sent again."""
    faults = RealtimeFaults(expire_after=600, announce_expiry=False)
    async with open_fake_server(recognizer=ScriptedRecognizer(fn=hear), faults=faults) as server:
        options = SessionOptions(connector=server.connector)
        script = [(0, 2.0), (None, 590.0), (1, 20.0), (None, 5.0)]
        turns, events, _ = await live(server, VAD, script, options)
        await assert_nothing_left(server)
    assert turns == ["turn 0 2.0s", "turn 1 20.0s"]
    lost, back = events
    assert isinstance(lost, Reconnecting) and "session_expired" in lost.cause
    assert isinstance(back, Reconnected) and back.replayed_ms > 8000


async def test_a_refused_next_connection_is_tried_again(
    exact_clock: trio.testing.MockClock,
) -> None:
    faults = RealtimeFaults(expire_after=600)
    async with open_fake_server(recognizer=ScriptedRecognizer(fn=hear), faults=faults) as server:
        options = SessionOptions(connector=server.connector)
        turns, events, _ = await live(
            server, VAD, conversation(9), options, refuse_after_first_turn=2
        )
        await assert_nothing_left(server)
        assert len(server.sessions) == 2  # the refused handshakes never became sessions
        assert server.faults.refuse_connections == 0  # ... but were made, and refused
    assert turns == [f"turn {k} 2.0s" for k in range(9)]
    assert [type(e) for e in events] == [Rotated]


async def test_leaving_right_after_a_rotation_leaves_nothing_behind(
    exact_clock: trio.testing.MockClock,
) -> None:
    faults = RealtimeFaults(expire_after=600)
    async with open_fake_server(recognizer=ScriptedRecognizer(fn=hear), faults=faults) as server:
        options = SessionOptions(connector=server.connector)
        turns, events, _ = await live(
            server, VAD, conversation(30), options, leave_after_rotation=True
        )
        await assert_nothing_left(server)
    assert [type(e) for e in events] == [Rotated]
    assert turns == [f"turn {k} 2.0s" for k in range(len(turns))] and 4 <= len(turns) <= 10


@pytest.mark.parametrize("slow", [20.0, 55.0], ids=["drained", "expired_while_draining"])
async def test_a_forced_switch_while_transcripts_are_owed(
    exact_clock: trio.testing.MockClock, slow: float
) -> None:
    """Push-to-talk turns of 25 s whose transcripts take *slow* seconds: the server always
    owes one, so no boundary comes and the switch is forced at 570 s. The old connection
    finishes the turn it owes before the new one's turns come out. If the limit strikes
    while it does (55 s), the connection is lost, and the next one is sent that turn again
    with the one under way."""
    faults = RealtimeFaults(expire_after=600, completion_delay=slow)
    async with open_fake_server(recognizer=ScriptedRecognizer(fn=hear), faults=faults) as server:
        options = SessionOptions(
            connector=server.connector, rotation=RotationPolicy(open_before=120, switch_before=30)
        )
        script: list[tuple[int | None, float]] = [(k, 25.0) for k in range(30)]
        turns, events, session = await live(server, MANUAL, script, options,
                                            commit_after_turns=True)  # fmt: skip
        await assert_nothing_left(server)
    assert turns == [f"turn {k} 25.0s" for k in range(30)]
    if slow == 20.0:
        (rotation,) = events
        assert isinstance(rotation, Rotated)
        assert rotation.replayed_ms == pytest.approx(20_000, abs=1000)  # turn 22 so far
    else:  # the old connection never finished: the rotation became a reconnect
        lost, back = events
        assert isinstance(lost, Reconnecting) and "session_expired" in lost.cause
        # Turn 21, committed but not transcribed when it was lost, and turn 22 so far.
        assert isinstance(back, Reconnected)
        assert back.replayed_ms == pytest.approx(45_000, abs=1000)
    assert session.statistics().audio_seconds_lost == 0
