"""Sessions that outlive the server's time limit: rotation to a new connection.

The fake server ends each session an hour after ``session.created`` with ``session_expired``,
as OpenAI does, and says when in ``expires_at``. Every turn here is a tone whose pitch names
it, and the recognizer reports the pitch and how long the tone lasted: a turn lost, cut or
sent twice changes the list of turns. Everything runs in memory on the exact mock clock, so
an hour takes a few seconds.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_stt import (
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    Rotated,
    RotationPolicy,
    STTModelSettings,
)
from trio_stt.testing import RealtimeFaults

from .helpers import Script, converse

VAD = STTModelSettings(
    turn_detection={"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500}
)
MANUAL = STTModelSettings(turn_detection="manual")
TEN_MINUTES = RealtimeFaults(expire_after=600)
SOON = RotationPolicy(open_before=120, switch_before=30)  # open at 480 s, switch by 570 s


def conversation(minutes: int) -> Script:
    """A turn of 2 s every minute, quiet in between."""
    return [part for k in range(minutes) for part in ((k, 2.0), (None, 58.0))]


async def test_three_hours_against_a_sixty_minute_cap_is_one_stream_of_turns(
    exact_clock: trio.testing.MockClock,
) -> None:
    faults = RealtimeFaults()  # OpenAI's limit: an hour, announced in expires_at
    assert faults.expire_after == 3600 and faults.announce_expiry
    heard = await converse(VAD, conversation(180), faults)
    assert heard.turns == [f"turn {k} 2.0s" for k in range(180)]  # once each, whole, in order
    # Each connection is left 5 minutes before its hour is up: 3 hours take 3 rotations.
    assert [type(e) for e in heard.events] == [Rotated] * 3  # no reconnect, loss or error
    assert len(heard.sessions) == 4
    assert [e.session_id for e in heard.events] == ["sess_0002", "sess_0003", "sess_0004"]  # type: ignore[attr-defined]
    # The old connection had heard the quiet it dropped: only the prefix padding moves.
    assert all(e.replayed_ms <= 300 for e in heard.events)  # type: ignore[attr-defined]
    stats = heard.stats
    assert stats.rotations == 3 and stats.reconnects == 0
    assert stats.audio_seconds_sent == pytest.approx(3 * 3600)
    assert stats.audio_seconds_lost == 0
    received = sum(s.audio_bytes for s in heard.sessions) / 48_000
    assert received == pytest.approx(3 * 3600 + stats.audio_seconds_replayed)
    # Each old connection was told to drop what it held uncommitted, then closed.
    assert all(s.events_of("input_audio_buffer.clear") for s in heard.sessions[:-1])


async def test_push_to_talk_moves_a_turn_under_way_whole(
    exact_clock: trio.testing.MockClock,
) -> None:
    """Manual mode, turns of 100 s back to back: the rotation comes mid-turn, and the turn
    under way goes to the new connection with everything said of it so far."""
    script: Script = [(k, 100.0) for k in range(9)]
    heard = await converse(MANUAL, script, TEN_MINUTES, commit_after_turns=True, rotation=SOON)
    assert heard.turns == [f"turn {k} 100.0s" for k in range(9)]
    (rotation,) = heard.events
    # Opened at 480 s, with nothing owed: turn 4 had been under way for 80 s.
    assert isinstance(rotation, Rotated)
    assert rotation.replayed_ms == pytest.approx(80_000, abs=1000)
    assert heard.stats.audio_seconds_lost == 0


async def test_speech_that_runs_into_the_limit_is_moved_at_the_last_moment(
    exact_clock: trio.testing.MockClock,
) -> None:
    """Server VAD, a turn that never pauses before the switch deadline: the switch comes at
    ``switch_before``, mid-speech, and the new connection is sent all of the turn so far."""
    script: Script = [(0, 2.0), (None, 458.0), (1, 130.0), (None, 60.0), (2, 2.0), (None, 10.0)]
    heard = await converse(
        VAD, script, TEN_MINUTES, rotation=SOON, reconnect=ReconnectPolicy(replay_seconds=300)
    )
    assert heard.turns == ["turn 0 2.0s", "turn 1 130.0s", "turn 2 2.0s"]
    (rotation,) = heard.events
    assert isinstance(rotation, Rotated)
    # Turn 1 began at 460 s; the switch came at 570 s: 110 s of it, and the padding before.
    assert rotation.replayed_ms == pytest.approx(110_300, abs=1000)


async def test_without_expires_at_the_limit_is_a_lost_connection(
    exact_clock: trio.testing.MockClock,
) -> None:
    """A server that ends the session without having said when: no rotation, but the
    session reconnects, and the turn under way is sent again."""
    faults = RealtimeFaults(expire_after=600, announce_expiry=False)
    heard = await converse(VAD, [(0, 2.0), (None, 590.0), (1, 20.0), (None, 5.0)], faults)
    assert heard.turns == ["turn 0 2.0s", "turn 1 20.0s"]
    lost, back = heard.events
    assert isinstance(lost, Reconnecting) and "session_expired" in lost.cause
    assert isinstance(back, Reconnected) and back.replayed_ms > 8000


async def test_a_refused_next_connection_is_tried_again(
    exact_clock: trio.testing.MockClock,
) -> None:
    faults = RealtimeFaults(expire_after=600)
    heard = await converse(VAD, conversation(9), faults, refuse_after_first_turn=2)
    assert len(heard.sessions) == 2  # the refused handshakes never became sessions
    assert faults.refuse_connections == 0  # ... but were made, and refused
    assert heard.turns == [f"turn {k} 2.0s" for k in range(9)]
    assert [type(e) for e in heard.events] == [Rotated]


async def test_leaving_right_after_a_rotation_leaves_nothing_behind(
    exact_clock: trio.testing.MockClock,
) -> None:
    heard = await converse(VAD, conversation(30), TEN_MINUTES, leave_after=Rotated)
    assert [type(e) for e in heard.events] == [Rotated]
    assert heard.turns == [f"turn {k} 2.0s" for k in range(len(heard.turns))]
    assert 4 <= len(heard.turns) <= 10


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
    script: Script = [(k, 25.0) for k in range(30)]
    heard = await converse(MANUAL, script, faults, commit_after_turns=True, rotation=SOON)
    assert heard.turns == [f"turn {k} 25.0s" for k in range(30)]
    if slow == 20.0:
        (rotation,) = heard.events
        assert isinstance(rotation, Rotated)
        assert rotation.replayed_ms == pytest.approx(20_000, abs=1000)  # turn 22 so far
    else:  # the old connection never finished: the rotation became a reconnect
        lost, back = heard.events
        assert isinstance(lost, Reconnecting) and "session_expired" in lost.cause
        # Turn 21, committed but not transcribed when it was lost, and turn 22 so far.
        assert isinstance(back, Reconnected)
        assert back.replayed_ms == pytest.approx(45_000, abs=1000)
    assert heard.stats.audio_seconds_lost == 0


async def test_rotation_over_real_sockets(autojump_clock: trio.testing.MockClock) -> None:
    """The same hand-over through trio-websocket on loopback: the next connection is held
    open by a task of its own while the first one still carries the audio."""
    autojump_clock.autojump_threshold = 0.1  # real sockets: the bytes cross first
    faults = RealtimeFaults(expire_after=60)
    script: Script = [part for k in range(3) for part in ((k, 2.0), (None, 18.0))]
    policy = RotationPolicy(open_before=20, switch_before=5)  # opens at 40 s
    heard = await converse(VAD, script, faults, rotation=policy, in_memory=False)
    assert heard.turns == [f"turn {k} 2.0s" for k in range(3)]
    (rotation,) = heard.events
    assert isinstance(rotation, Rotated) and rotation.replayed_ms <= 300
    assert len(heard.sessions) == 2
