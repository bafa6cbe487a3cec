"""The stream record: what a session knows across its connections, tested without a socket.

A model conversation (appends, commits, clears, turns coming back) runs through a real
client core and a :class:`StreamRecord`; at any point the connection may be lost, and the
replay the record plans for the next one must carry exactly the turns not yet back and the
tail under way, each commit at its place.
"""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from trio_stt import STTModelSettings
from trio_stt._protocol import BYTES_PER_MS, ClientState, RealtimeConnection, Turn
from trio_stt._protocol._record import (
    StreamRecord,
    rotation_times,
    seconds_left,
    vad_margin_ms,
)


def ready() -> RealtimeConnection:
    core = RealtimeConnection()
    core.receive('{"type":"session.created","session":{}}')
    core.update_session("gpt-4o-transcribe", STTModelSettings(turn_detection="manual"))
    core.receive('{"type":"session.updated","session":{}}')
    assert core.state is ClientState.STREAMING
    return core


def hear(record: StreamRecord, core: RealtimeConnection, event: dict[str, object]) -> list[Turn]:
    turns = []
    for got in core.receive(json.dumps(event)):
        record.heard(got, core)
        if isinstance(got, Turn):
            turns.append(got)
    return turns


def split_replay(messages: list[str]) -> list[bytes | None]:
    """The replay as audio stretches joined between commits, and the commits (None)."""
    out: list[bytes | None] = []
    for text in messages:
        message = json.loads(text)
        if message["type"] == "input_audio_buffer.commit":
            out.append(None)
            continue
        audio = base64.b64decode(message["audio"])
        if out and out[-1] is not None:
            out[-1] += audio
        else:
            out.append(audio)
    return out


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(100, 400)),  # ms
        st.tuples(st.sampled_from(["commit", "clear", "answer", "lose"]), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(OPS, st.integers(1, 20).map(lambda ms: ms * BYTES_PER_MS * 10))
def test_a_lost_connection_is_replayed_exactly_what_it_had_not_finished(
    ops: list[tuple[str, int]], largest: int
) -> None:
    record = StreamRecord(replay_bytes=10_000_000)
    core = ready()
    turns: list[bytes] = []  # committed, not back, in order
    tail = b""
    unanswered = 0  # commits the server of this connection has not answered
    items = 0
    for n, (op, ms) in enumerate(ops):
        if op == "add":
            audio = bytes([n % 251, 0]) * (ms * BYTES_PER_MS // 2)
            record.appending(audio, voiced=True)
            core.append_audio(audio)
            tail += audio
        elif op == "commit" and tail:
            record.committing()
            core.commit()
            turns.append(tail)
            tail, unanswered = b"", unanswered + 1
        elif op == "clear":
            record.clearing()
            core.clear()
            tail = b""
        elif op == "answer" and unanswered:
            items += 1
            item = f"item_{items}"
            hear(record, core, {"type": "input_audio_buffer.committed", "item_id": item})
            done = hear(
                record,
                core,
                {"type": "conversation.item.input_audio_transcription.completed",
                 "item_id": item, "transcript": str(items)},
            )  # fmt: skip
            assert [t.item_id for t in done] == [item]
            turns.pop(0)
            unanswered -= 1
        elif op == "lose":
            core.connection_closed()
            core = ready()
            record.begin_connection()
            replay = record.take_replay()
            sent = split_replay(list(record.replay_messages(replay, core, largest)))
            expected: list[bytes | None] = []
            for turn in turns:
                expected += [turn, None]
            if tail:
                expected.append(tail)
            assert sent == expected
            assert replay.lost_bytes == 0
            unanswered = len(turns)
        assert record.ledger.kept_bytes == sum(map(len, turns)) + len(tail)


def test_a_hand_over_under_server_vad_keeps_only_the_prefix_padding_of_quiet() -> None:
    vad = STTModelSettings(turn_detection={"type": "server_vad", "prefix_padding_ms": 300})
    record = StreamRecord(10_000_000, vad_margin_ms(vad))
    core = RealtimeConnection()
    core.receive('{"type":"session.created","session":{}}')
    core.update_session("gpt-4o-transcribe", vad)
    core.receive('{"type":"session.updated","session":{}}')
    record.appending(b"\0\0" * 24_000 * 5, voiced=False)  # five seconds nobody spoke in
    record.handed_over(core)
    assert record.take_replay().audio_bytes == 300 * BYTES_PER_MS


def test_vad_margin_is_the_padding_but_never_reaches_into_speech() -> None:
    def margin(**detection: object) -> int:
        return vad_margin_ms(STTModelSettings(turn_detection={"type": "server_vad", **detection}))

    assert margin() == 300
    assert margin(prefix_padding_ms=300, silence_duration_ms=250) == 150
    assert vad_margin_ms(STTModelSettings(turn_detection={"type": "semantic_vad"})) == 0
    assert vad_margin_ms(STTModelSettings(turn_detection="manual")) == 0


def test_expiry_and_rotation_times() -> None:
    assert seconds_left({"expires_at": 1_000 + 3_600}, 1_000.0) == 3_600
    assert seconds_left({"expires_at": 900}, 1_000.0) is None  # passed
    assert seconds_left({"expires_at": True}, 1_000.0) is None
    assert seconds_left({}, 1_000.0) is None
    # An hour: open five minutes before the end, switch thirty seconds before at the latest.
    assert rotation_times(10.0, 3_600.0, 300.0, 30.0) == (3_310.0, 3_580.0)
    # A short session rotates halfway through its life, never in a loop.
    assert rotation_times(0.0, 100.0, 300.0, 30.0) == (50.0, 75.0)
