"""The sans-I/O core, with no sockets: plain sync tests and hypothesis."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_stt import ConfigurationError, LocalProtocolError, RemoteProtocolError, STTModelSettings
from trio_stt._protocol import (
    CLIENT_TRANSITIONS,
    MAX_UNCOMMITTED_ITEMS,
    AudioCommitted,
    ClientState,
    RealtimeConnection,
    RealtimeServerConnection,
    ServerError,
    SessionCreated,
    SessionUpdateRequest,
    TranscriptionCompleted,
    TranscriptionDelta,
    Turn,
    UnknownEvent,
)

PCM_200MS = b"\x10\x00" * 4800


def ready(
    dialect: str = "ga", model: str = "gpt-4o-transcribe", **kw: object
) -> RealtimeConnection:
    conn = RealtimeConnection(dialect=dialect)  # type: ignore[arg-type]
    conn.receive('{"type":"session.created","session":{}}')
    conn.update_session(model, STTModelSettings(**kw))  # type: ignore[arg-type]
    conn.receive('{"type":"session.updated","session":{}}')
    assert conn.state is ClientState.STREAMING
    return conn


def finished(conn: RealtimeConnection, message: str) -> list[Turn]:
    """The turns one message released, in the order it released them."""
    return [e for e in conn.receive(message) if isinstance(e, Turn)]


def update_of(model: str, dialect: str = "ga", **kw: object) -> dict[str, object]:
    conn = RealtimeConnection(dialect=dialect)  # type: ignore[arg-type]
    conn.receive('{"type":"session.created","session":{}}')
    return json.loads(conn.update_session(model, STTModelSettings(**kw)))  # type: ignore[arg-type]


def test_default_update_matches_the_ga_schema() -> None:
    assert update_of("gpt-4o-transcribe", prompt="expect technical terms", language="en") == {
        "type": "session.update",
        "event_id": "update_1",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {
                        "model": "gpt-4o-transcribe",
                        "language": "en",
                        "prompt": "expect technical terms",
                    },
                    "turn_detection": {"type": "semantic_vad"},
                }
            },
        },
    }


def test_vad_less_model_sends_explicit_null_and_languages_list() -> None:
    update = update_of(
        "gpt-live-transcribe",
        languages=["en", "fr"],
        keywords=["AC-42"],
        delay="low",
        prompt="billing call",
    )
    audio_input = update["session"]["audio"]["input"]  # type: ignore[index]
    assert "turn_detection" in audio_input and audio_input["turn_detection"] is None
    assert audio_input["transcription"] == {
        "model": "gpt-live-transcribe",
        "languages": ["en", "fr"],
        "prompt": "billing call",
        "keywords": ["AC-42"],
        "delay": "low",
    }
    single = update_of("gpt-live-transcribe", language="de")
    assert single["session"]["audio"]["input"]["transcription"]["languages"] == ["de"]  # type: ignore[index]


def test_logprobs_noise_reduction_and_manual_turns() -> None:
    update = update_of(
        "gpt-4o-mini-transcribe",
        include_logprobs=True,
        noise_reduction="far_field",
        turn_detection="manual",
    )
    session = update["session"]
    assert session["include"] == ["item.input_audio_transcription.logprobs"]  # type: ignore[index]
    assert session["audio"]["input"]["noise_reduction"] == {"type": "far_field"}  # type: ignore[index]
    assert session["audio"]["input"]["turn_detection"] is None  # type: ignore[index]


def test_beta_dialect_uses_the_retired_shape() -> None:
    update = update_of(
        "gpt-4o-transcribe",
        dialect="beta",
        language="en",
        turn_detection={"type": "server_vad", "threshold": 0.5},
        include_logprobs=True,
    )
    assert update == {
        "type": "transcription_session.update",
        "event_id": "update_1",
        "session": {
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en"},
            "turn_detection": {"type": "server_vad", "threshold": 0.5},
            "include": ["item.input_audio_transcription.logprobs"],
        },
    }


def test_model_quirks_are_checked_before_sending() -> None:
    conn = RealtimeConnection()
    conn.receive('{"type":"session.created"}')
    with pytest.raises(ConfigurationError, match="has no server VAD"):
        conn.update_session(
            "gpt-realtime-whisper", STTModelSettings(turn_detection={"type": "server_vad"})
        )
    with pytest.raises(ConfigurationError, match="does not accept a prompt"):
        conn.update_session("gpt-realtime-whisper", STTModelSettings(prompt="x"))
    with pytest.raises(ConfigurationError, match="does not accept keywords"):
        conn.update_session("gpt-4o-transcribe", STTModelSettings(keywords=["x"]))


def test_client_events_append_commit_clear() -> None:
    conn = ready()
    append = json.loads(conn.append_audio(b"\x01\x00\xff\xff"))
    assert append == {"type": "input_audio_buffer.append", "audio": "AQD//w=="}
    assert json.loads(conn.commit()) == {
        "type": "input_audio_buffer.commit",
        "event_id": "commit_2",
    }
    assert json.loads(conn.clear()) == {"type": "input_audio_buffer.clear", "event_id": "clear_3"}


def test_local_misuse_is_a_local_protocol_error() -> None:
    conn = RealtimeConnection()
    with pytest.raises(LocalProtocolError, match=r"awaiting session\.created"):
        conn.append_audio(b"\0\0")
    with pytest.raises(LocalProtocolError, match=r"cannot send session\.update"):
        conn.update_session("whisper-1", STTModelSettings())
    with pytest.raises(LocalProtocolError, match="even number of bytes"):
        ready().append_audio(b"\0")


def test_completions_are_released_in_commit_order() -> None:
    conn = ready()
    for _ in range(3):
        conn.append_audio(PCM_200MS)
        conn.commit()
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"a","previous_item_id":null}')
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"b","previous_item_id":"a"}')
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"c","previous_item_id":"b"}')
    assert conn.outstanding == 3
    assert (
        finished(
            conn,
            '{"type":"conversation.item.input_audio_transcription.completed","item_id":"c","transcript":"three"}',
        )
        == []
    )
    assert (
        finished(
            conn,
            '{"type":"conversation.item.input_audio_transcription.failed","item_id":"b","error":{"code":"audio_unintelligible","message":"no"}}',
        )
        == []
    )
    turns = finished(
        conn,
        '{"type":"conversation.item.input_audio_transcription.completed","item_id":"a","transcript":"one"}',
    )
    assert [(t.text, t.failed) for t in turns] == [("one", False), ("", True), ("three", False)]
    assert conn.outstanding == 0 and not conn.waiting_for_server


def test_previous_item_id_places_a_late_committed_event() -> None:
    conn = ready()
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"a","previous_item_id":null}')
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"c","previous_item_id":"b"}')
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"b","previous_item_id":"a"}')
    released = []
    for item, text in (("c", "3"), ("b", "2"), ("a", "1")):
        released += finished(
            conn,
            json.dumps(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item,
                    "transcript": text,
                }
            ),
        )
    # 'c' named a predecessor not yet seen, so it went last; 'b' was then linked in after 'a'.
    assert [t.text for t in released] == ["1", "2", "3"]


def test_deltas_accumulate_and_completed_is_authoritative() -> None:
    conn = ready()
    first = conn.receive(
        '{"type":"conversation.item.input_audio_transcription.delta","item_id":"x","delta":" Hel"}'
    )[0]
    second = conn.receive(
        '{"type":"conversation.item.input_audio_transcription.delta","item_id":"x","delta":"lo,"}'
    )[0]
    assert isinstance(first, TranscriptionDelta) and isinstance(second, TranscriptionDelta)
    assert (first.text, second.text, second.delta) == (" Hel", " Hello,", "lo,")
    done = conn.receive(
        '{"type":"conversation.item.input_audio_transcription.completed","item_id":"x","transcript":"Hello, world","usage":{"type":"duration","seconds":2}}'
    )[0]
    assert isinstance(done, TranscriptionCompleted) and done.usage is not None


def test_commit_empty_error_matches_its_commit_by_event_id() -> None:
    conn = ready()
    conn.append_audio(b"\0\0" * 100)  # ~4 ms: too small
    conn.commit()  # commit_2 will fail
    conn.append_audio(PCM_200MS)
    conn.commit()  # commit_3 will succeed
    assert conn.outstanding == 2
    # The successful commit is acknowledged first, the failure comes later (protocol.md §1.11).
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"i3","previous_item_id":null}')
    error = conn.receive(
        json.dumps(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": "input_audio_buffer_commit_empty",
                    "message": "buffer too small",
                    "event_id": "commit_2",
                },
            }
        )
    )[0]
    assert isinstance(error, ServerError)
    assert (error.fatal, error.caused_by, error.client_event_id) == (False, "commit", "commit_2")
    assert conn.outstanding == 1  # only i3's transcript is awaited
    assert conn.state is ClientState.STREAMING


@pytest.mark.parametrize("code", ["invalid_api_key", "session_expired", "beta_api_shape_disabled"])
def test_fatal_codes(code: str) -> None:
    conn = ready()
    error = conn.receive(
        json.dumps({"type": "error", "error": {"type": "x", "code": code, "message": "m"}})
    )[0]
    assert isinstance(error, ServerError) and error.fatal
    assert conn.state is ClientState.FAILED


def test_rejected_initial_update_is_fatal_later_ones_are_not() -> None:
    conn = RealtimeConnection()
    conn.receive('{"type":"session.created"}')
    conn.update_session("gpt-4o-transcribe", STTModelSettings())
    error = conn.receive(
        '{"type":"error","error":{"type":"invalid_request_error","code":"invalid_value","message":"no","event_id":"update_1"}}'
    )[0]
    assert isinstance(error, ServerError) and error.fatal and error.caused_by == "session.update"
    later = ready()
    later.update_session("gpt-4o-transcribe", STTModelSettings(prompt="x"))
    error = later.receive(
        '{"type":"error","error":{"type":"invalid_request_error","code":"invalid_value","message":"no","event_id":"update_2"}}'
    )[0]
    assert isinstance(error, ServerError) and not error.fatal


def kinds(messages: list[str]) -> list[str]:
    return [json.loads(m)["type"] for m in messages]


def test_end_of_input_decisions_manual() -> None:
    nothing = ready(turn_detection="manual")
    assert nothing.end_input() == []
    assert nothing.state is ClientState.DONE  # nothing owed: done at once
    silent = ready(turn_detection="manual")
    silent.append_audio(PCM_200MS, voiced_until_ms=-1)
    assert kinds(silent.end_input()) == ["input_audio_buffer.clear"]
    assert silent.state is ClientState.DRAINING and silent.waiting_for_server
    silent.receive('{"type":"input_audio_buffer.cleared"}')
    assert silent.state is ClientState.DONE
    spoken = ready(turn_detection="manual")
    spoken.append_audio(PCM_200MS, voiced_until_ms=150)
    assert kinds(spoken.end_input()) == ["input_audio_buffer.commit"]
    short = ready(turn_detection="manual")
    short.append_audio(b"\0\0" * 480, voiced_until_ms=20)  # 20 ms: too little to commit
    assert kinds(short.end_input()) == ["input_audio_buffer.clear"]


SPEECH_STARTED = '{"type":"input_audio_buffer.speech_started","item_id":"v1","audio_start_ms":0}'
SPEECH_STOPPED = '{"type":"input_audio_buffer.speech_stopped","item_id":"v1","audio_end_ms":300}'
UPDATED = '{"type":"session.updated","session":{"type":"transcription"}}'


@pytest.mark.parametrize("vad", ["server_vad", "semantic_vad"])
def test_end_of_input_under_vad_asks_the_server_before_deciding(vad: str) -> None:
    conn = ready(turn_detection={"type": vad})
    conn.append_audio(PCM_200MS, voiced_until_ms=200)
    # However voiced the tail looks from here, nothing is decided until the server answers.
    barrier = conn.end_input()
    assert [json.loads(m) for m in barrier] == [
        {"type": "session.update", "event_id": "barrier_2", "session": {"type": "transcription"}}
    ]
    assert conn.state is ClientState.ENDING and conn.waiting_for_server
    assert conn.take_outgoing() == []
    conn.receive(SPEECH_STARTED)  # its VAD is inside speech, and will never hear it end
    conn.receive(UPDATED)
    assert kinds(conn.take_outgoing()) == ["input_audio_buffer.commit"]
    assert conn.state is ClientState.DRAINING


def test_end_of_input_under_vad_commits_nothing_the_server_commits_itself() -> None:
    conn = ready(turn_detection={"type": "server_vad"})
    conn.append_audio(PCM_200MS * 3, voiced_until_ms=150)
    conn.receive(SPEECH_STARTED)
    conn.end_input()
    conn.receive(SPEECH_STOPPED)  # all before the barrier's answer: the server commits it
    conn.receive(UPDATED)
    assert conn.take_outgoing() == []
    assert conn.state is ClientState.DRAINING and conn.waiting_for_server  # owed: v1
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"v1","previous_item_id":null}')
    done = finished(
        conn,
        '{"type":"conversation.item.input_audio_transcription.completed","item_id":"v1","transcript":"hi"}',
    )
    assert [t.text for t in done] == ["hi"]
    assert conn.state is ClientState.DONE


def test_end_of_input_under_vad_with_a_silent_tail_sends_nothing_more() -> None:
    conn = ready(turn_detection={"type": "semantic_vad"})
    conn.append_audio(PCM_200MS * 5, voiced_until_ms=190)  # voiced to us, not to its VAD
    conn.end_input()
    conn.receive(UPDATED)
    assert conn.take_outgoing() == [] and conn.state is ClientState.DONE


def test_a_refused_barrier_is_still_an_answer_in_order() -> None:
    conn = ready(turn_detection={"type": "server_vad"})
    conn.append_audio(PCM_200MS)
    conn.receive(SPEECH_STARTED)
    conn.end_input()
    error = conn.receive(
        '{"type":"error","error":{"type":"invalid_request_error","code":"invalid_value","message":"no","event_id":"barrier_2"}}'
    )[0]
    assert isinstance(error, ServerError) and not error.fatal
    assert kinds(conn.take_outgoing()) == ["input_audio_buffer.commit"]


def test_an_unanswered_barrier_is_given_up_on_what_the_vad_said() -> None:
    """A server that ignores the empty update: the shell gives up after its deadline, and
    the core decides from the last VAD event it heard."""
    speaking = ready(turn_detection={"type": "server_vad"})
    speaking.append_audio(PCM_200MS, voiced_until_ms=200)
    speaking.receive(SPEECH_STARTED)
    speaking.end_input()
    speaking.barrier_unanswered()
    assert kinds(speaking.take_outgoing()) == ["input_audio_buffer.commit"]
    assert speaking.state is ClientState.DRAINING and speaking.outstanding == 1  # the commit

    quiet = ready(turn_detection={"type": "server_vad"})
    quiet.append_audio(PCM_200MS, voiced_until_ms=200)
    quiet.end_input()
    quiet.barrier_unanswered()
    assert quiet.take_outgoing() == [] and quiet.state is ClientState.DONE
    quiet.receive(UPDATED)  # the answer, late: news of nothing
    assert quiet.state is ClientState.DONE

    answered = ready(turn_detection={"type": "server_vad"})
    answered.end_input()
    answered.receive(UPDATED)
    answered.barrier_unanswered()  # too late to matter: nothing changes
    assert answered.state is ClientState.DONE and answered.take_outgoing() == []


def test_a_turn_boundary_is_nothing_owed_and_nobody_speaking() -> None:
    conn = ready(turn_detection={"type": "server_vad"})
    assert conn.at_turn_boundary
    conn.append_audio(PCM_200MS)
    conn.receive(SPEECH_STARTED)
    assert not conn.at_turn_boundary  # inside speech
    conn.receive(SPEECH_STOPPED)
    assert not conn.at_turn_boundary  # owed: the server's commit of v1
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"v1","previous_item_id":null}')
    conn.receive(
        '{"type":"conversation.item.input_audio_transcription.completed","item_id":"v1","transcript":"hi"}'
    )
    assert conn.at_turn_boundary
    conn.end_input()
    assert not conn.at_turn_boundary  # no longer streaming


def test_a_vad_commit_is_not_taken_for_the_answer_to_ours() -> None:
    conn = ready(turn_detection={"type": "server_vad"})
    conn.append_audio(PCM_200MS * 2)
    conn.receive(SPEECH_STARTED)
    conn.receive(SPEECH_STOPPED)
    conn.append_audio(PCM_200MS)
    conn.commit()
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"v1","previous_item_id":null}')
    assert conn.outstanding == 2  # our commit is still unanswered, and v1's transcript owed
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"m2","previous_item_id":"v1"}')
    assert conn.outstanding == 2  # two transcripts


def test_hand_over_fences_the_connection_with_a_clear() -> None:
    """Everything the server commits before the ``cleared`` is this connection's to finish;
    after it, the connection owes nothing and its uncommitted audio can never be a turn."""
    conn = ready(turn_detection={"type": "server_vad"})
    conn.append_audio(PCM_200MS * 3)
    conn.receive(SPEECH_STARTED)
    assert kinds([conn.hand_over()]) == ["input_audio_buffer.clear"]
    assert conn.state is ClientState.DRAINING
    with pytest.raises(LocalProtocolError, match="draining"):
        conn.append_audio(PCM_200MS)
    conn.receive(SPEECH_STOPPED)  # the server had already heard the turn end: its commit
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"v1","previous_item_id":null}')
    conn.receive('{"type":"input_audio_buffer.cleared"}')
    assert conn.state is ClientState.DRAINING and conn.outstanding == 1  # v1's transcript
    done = finished(
        conn,
        '{"type":"conversation.item.input_audio_transcription.completed","item_id":"v1","transcript":"hi"}',
    )
    assert [t.text for t in done] == ["hi"] and conn.state is ClientState.DONE


def test_hand_over_with_nothing_owed_is_done_at_the_cleared() -> None:
    conn = ready(turn_detection="manual")
    conn.append_audio(PCM_200MS)
    conn.hand_over()
    assert conn.waiting_for_server
    conn.receive('{"type":"input_audio_buffer.cleared"}')
    assert conn.state is ClientState.DONE


def test_completions_for_items_never_committed_are_never_turns() -> None:
    conn = ready(turn_detection="manual")
    conn.append_audio(PCM_200MS)
    conn.commit()
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"a","previous_item_id":null}')
    stray = '{"type":"conversation.item.input_audio_transcription.completed","item_id":"ghost","transcript":"boo"}'
    assert finished(conn, stray) == []
    conn.end_input()
    done = finished(
        conn,
        '{"type":"conversation.item.input_audio_transcription.completed","item_id":"a","transcript":"real"}',
    )
    assert [t.text for t in done] == ["real"] and conn.state is ClientState.DONE
    # A duplicate committed for a turn already out does not bring it back.
    assert finished(conn, '{"type":"input_audio_buffer.committed","item_id":"a"}') == []


def test_a_server_inventing_items_without_end_is_an_error() -> None:
    conn = ready()
    delta = '{{"type":"conversation.item.input_audio_transcription.delta","item_id":"x{}"}}'
    for i in range(MAX_UNCOMMITTED_ITEMS):
        conn.receive(delta.format(i))
    with pytest.raises(RemoteProtocolError, match="never committed"):
        conn.receive(delta.format("one too many"))


@pytest.mark.parametrize(
    "message",
    [
        '{"type":"input_audio_buffer.speech_stopped","item_id":"v","audio_end_ms":1e999}',
        '{"type":"input_audio_buffer.speech_started","item_id":"v","audio_start_ms":NaN}',
        '{"type":"conversation.item.input_audio_transcription.completed","item_id":"v","transcript":"","usage":{"type":"duration","seconds":-Infinity}}',
    ],
)
def test_non_finite_numbers_are_a_remote_protocol_error(message: str) -> None:
    with pytest.raises(RemoteProtocolError, match="non-finite"):
        ready().receive(message)


def test_huge_integers_are_a_protocol_error_naming_the_field() -> None:
    with pytest.raises(RemoteProtocolError, match="'audio_end_ms' should be an integer from 0"):
        ready().receive(
            '{"type":"input_audio_buffer.speech_stopped","item_id":"v","audio_end_ms":'
            + "9" * 400
            + "}"
        )


def test_unknown_events_and_tolerated_names() -> None:
    conn = RealtimeConnection()
    assert isinstance(conn.receive('{"type":"transcription_session.created"}')[0], SessionCreated)
    assert conn.state is ClientState.CREATED
    unknown = ready().receive('{"type":"rate_limits.updated","rate_limits":[]}')[0]
    assert isinstance(unknown, UnknownEvent) and unknown.type == "rate_limits.updated"


@pytest.mark.parametrize(
    ("message", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1,2]", "not an event object"),
        ('{"type": 3}', "not an event"),
        (b"\x00\x01", "binary frame"),
        ('{"type":"x","pad":"' + "a" * 5000 + '"}', "exceeds"),
    ],
)
def test_remote_garbage_is_a_remote_protocol_error(message: str | bytes, match: str) -> None:
    conn = RealtimeConnection(max_message_bytes=4096)
    with pytest.raises(RemoteProtocolError, match=match):
        conn.receive(message)


def test_client_and_server_roles_round_trip() -> None:
    client, server = RealtimeConnection(), RealtimeServerConnection()
    client.receive(server.session_created())
    update = server.receive(
        client.update_session(
            "gpt-4o-transcribe", STTModelSettings(language="en", turn_detection="manual")
        )
    )
    assert isinstance(update, SessionUpdateRequest) and update.problem is None
    assert update.config.model == "gpt-4o-transcribe" and update.config.turn_detection is None
    client.receive(server.session_updated(update.config))
    assert client.state is ClientState.STREAMING and not client.vad_enabled
    server.append(server.receive(client.append_audio(PCM_200MS)).audio)  # type: ignore[attr-defined]
    result = server.commit(server.receive(client.commit()).event_id)
    events = [e for m in result.messages for e in client.receive(m)]
    assert isinstance(events[0], AudioCommitted) and events[0].item_id == result.item_id
    assert len(result.audio) == len(PCM_200MS)
    assert [
        t.text for t in finished(client, server.completed(result.item_id or "", "hi", 200))
    ] == ["hi"]
    tiny = server.commit("commit_x")  # nothing buffered: OpenAI's error
    error = client.receive(tiny.messages[0])[0]
    assert isinstance(error, ServerError) and error.code == "input_audio_buffer_commit_empty"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999"])
def test_server_role_refuses_non_finite_numbers_anywhere(number: str) -> None:
    update = (
        '{"type":"session.update","session":{"type":"transcription","audio":{"input":'
        '{"turn_detection":{"type":"server_vad","silence_duration_ms":' + number + "}}}}}"
    )
    with pytest.raises(RemoteProtocolError, match="non-finite"):
        RealtimeServerConnection().receive(update)


def test_server_role_reports_malformed_updates() -> None:
    server = RealtimeServerConnection()
    missing = server.receive('{"type":"session.update","session":{"audio":{}}}')
    assert isinstance(missing, SessionUpdateRequest)
    assert missing.problem == "Missing required parameter: 'session.type'."
    legacy = server.receive(
        '{"type":"session.update","session":{"type":"transcription","input_audio_format":"pcm16"}}'
    )
    assert legacy.problem == "Unknown parameter: 'session.input_audio_format'."  # type: ignore[union-attr]
    beta = server.receive(
        '{"type":"transcription_session.update","session":{"input_audio_transcription":{"model":"whisper-1"},"turn_detection":null}}'
    )
    assert beta.config.model == "whisper-1" and beta.problem is None  # type: ignore[union-attr]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
event_types = st.sampled_from(
    [
        "session.created",
        "session.updated",
        "transcription_session.created",
        "error",
        "input_audio_buffer.committed",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.cleared",
        "conversation.item.added",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.failed",
        "something.new",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_only_raises_remote_protocol_error(text: str) -> None:
    conn = ready()
    try:
        conn.receive(text)
    except RemoteProtocolError:
        pass


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(event_types, st.dictionaries(st.text(max_size=12), json_values, max_size=6)),
        max_size=12,
    )
)
def test_arbitrary_event_objects_never_crash_the_core(
    messages: list[tuple[str, dict[str, object]]],
) -> None:
    conn = ready()
    for kind, fields in messages:
        try:
            conn.receive(json.dumps({**fields, "type": kind}))
        except RemoteProtocolError:
            pass
        assert conn.outstanding >= 0


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(st.text(max_size=12), json_values, max_size=6),
    st.sampled_from(
        [
            "session.update",
            "transcription_session.update",
            "input_audio_buffer.append",
            "input_audio_buffer.commit",
            "weird",
        ]
    ),
)
def test_server_role_never_crashes_on_arbitrary_client_events(
    fields: dict[str, object], kind: str
) -> None:
    server = RealtimeServerConnection()
    try:
        server.receive(json.dumps({**fields, "type": kind}))
    except RemoteProtocolError:
        pass


def test_the_core_imports_no_io_library() -> None:
    import ast
    import pathlib

    import trio_stt._protocol as core

    forbidden = {"trio", "httpx2", "httpx", "trio_websocket", "socket", "asyncio", "hypercorn"}
    # The core and the plain modules it builds on.
    root = pathlib.Path(core.__file__).parent
    files = [
        *root.glob("*.py"),
        *(root.parent / name for name in ("_errors.py", "_results.py", "_settings.py")),
    ]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom) and node.level == 0
                    else []
                )
            )
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


class _Watched(RealtimeConnection):
    """Every assignment to ``state`` must be an edge of the transition table."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "state" and hasattr(self, "state"):
            edges = CLIENT_TRANSITIONS[self.state].values()
            assert value is self.state or value in edges, (self.state, value)
        super().__setattr__(name, value)


ITEMS = [f"item_{i}" for i in range(1, 7)]
OPS = st.one_of(
    st.sampled_from(
        [
            ("created",), ("updated",), ("update",), ("append", True), ("append", False),
            ("commit",), ("clear",), ("end",), ("take",), ("committed_next",), ("cleared",),
            ("started",), ("completed_no_id",), ("fatal",), ("garbage",), ("closed",),
        ]
    ),
    st.tuples(
        st.sampled_from(
            ["committed_dup", "completed", "failed", "delta", "stopped", "error_on", "update_error"]
        ),
        st.integers(1, 12),
    ),
)  # fmt: skip


def _server_message(op: tuple[object, ...], committed: list[str], last: str | None) -> str:
    kind, arg = op[0], (op[1] if len(op) > 1 else 1)
    pool = committed + ITEMS  # mostly real items, sometimes ones never committed
    item = pool[int(arg) % len(pool)]  # type: ignore[call-overload]
    prefix = "conversation.item.input_audio_transcription"
    messages = {
        "created": {"type": "session.created", "session": {}},
        "updated": {"type": "session.updated", "session": {}},
        "committed_dup": {
            "type": "input_audio_buffer.committed",
            "item_id": committed[int(arg) % len(committed)] if committed else item,  # type: ignore[call-overload]
            "previous_item_id": None,
        },
        "cleared": {"type": "input_audio_buffer.cleared"},
        "started": {"type": "input_audio_buffer.speech_started", "item_id": item},
        "stopped": {"type": "input_audio_buffer.speech_stopped", "item_id": item, "audio_end_ms": 5},
        "completed": {"type": f"{prefix}.completed", "item_id": item, "transcript": item},
        "completed_no_id": {"type": f"{prefix}.completed", "transcript": "stray"},
        "failed": {"type": f"{prefix}.failed", "item_id": item, "error": {"message": "x"}},
        "delta": {"type": f"{prefix}.delta", "item_id": item, "delta": "d"},
        "fatal": {"type": "error", "error": {"code": "session_expired", "message": "m"}},
        "error_on": {"type": "error", "error": {"code": "x", "message": "m", "event_id": f"commit_{arg}"}},
        "update_error": {"type": "error", "error": {"code": "x", "message": "m", "event_id": f"barrier_{arg}"}},
    }  # fmt: skip
    if kind == "garbage":
        return "{garbage"
    if kind == "committed_next":
        return json.dumps(
            {"type": "input_audio_buffer.committed", "item_id": f"c{len(committed)}",
             "previous_item_id": last}
        )  # fmt: skip
    return json.dumps(messages[str(kind)])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["manual", "server_vad"]), st.booleans(), st.lists(OPS, max_size=60))
def test_random_interleavings_keep_the_core_in_its_table_and_turns_in_order(
    mode: str, streaming: bool, ops: list[tuple[object, ...]]
) -> None:
    conn = _Watched()
    settings_ = STTModelSettings(
        turn_detection="manual" if mode == "manual" else {"type": "server_vad"}
    )
    if streaming:  # half the runs start where the interesting phases are
        conn.receive('{"type":"session.created"}')
        conn.update_session("gpt-4o-transcribe", settings_)
        conn.receive('{"type":"session.updated","session":{}}')
    committed: list[str] = []  # first committed event of each item: the commit order
    released: list[str] = []
    for op in ops:
        voiced = 100.0 if op[-1] is True else -1.0
        intents = {
            "update": lambda: [conn.update_session("gpt-4o-transcribe", settings_)],
            "append": lambda: [conn.append_audio(PCM_200MS, voiced_until_ms=voiced)],  # noqa: B023
            "commit": lambda: [conn.commit()],
            "clear": lambda: [conn.clear()],
            "end": conn.end_input,
            "take": conn.take_outgoing,
            "closed": lambda: [conn.connection_closed()],
        }
        try:
            if op[0] in intents:
                intents[str(op[0])]()
                continue
            message = _server_message(op, committed, committed[-1] if committed else None)
            late = conn.state is ClientState.DONE  # after the end: reported, not a turn
            events = conn.receive(message)
        except (LocalProtocolError, RemoteProtocolError):
            continue
        for event in events:
            if isinstance(event, AudioCommitted) and event.item_id not in committed and not late:
                committed.append(event.item_id)
            if isinstance(event, Turn):
                assert event.item_id not in released, "a turn came out twice"
                released.append(event.item_id)
        # Only committed items become turns, in commit order, each after those before it.
        assert released == committed[: len(released)]
        if conn.state is ClientState.DONE:
            # Done means nothing owed and nothing lost: every committed turn is out.
            assert not conn.waiting_for_server
            assert released == committed
