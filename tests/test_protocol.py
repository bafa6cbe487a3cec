"""The sans-I/O core, with no sockets: plain sync tests and hypothesis."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_stt import ConfigurationError, LocalProtocolError, RemoteProtocolError, STTModelSettings
from trio_stt._protocol import (
    AudioCommitted,
    ClientState,
    RealtimeConnection,
    RealtimeServerConnection,
    ServerError,
    SessionCreated,
    SessionUpdateRequest,
    TranscriptionCompleted,
    TranscriptionDelta,
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
    assert conn.state is ClientState.READY
    return conn


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
    with pytest.raises(ConfigurationError, match="does not support turn detection"):
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
    with pytest.raises(LocalProtocolError, match="cannot update"):
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
    conn.receive(
        '{"type":"conversation.item.input_audio_transcription.completed","item_id":"c","transcript":"three"}'
    )
    conn.receive(
        '{"type":"conversation.item.input_audio_transcription.failed","item_id":"b","error":{"code":"audio_unintelligible","message":"no"}}'
    )
    assert conn.pop_finished_turns() == []
    conn.receive(
        '{"type":"conversation.item.input_audio_transcription.completed","item_id":"a","transcript":"one"}'
    )
    turns = conn.pop_finished_turns()
    assert [(t.text, t.failed) for t in turns] == [("one", False), ("", True), ("three", False)]
    assert conn.outstanding == 0


def test_previous_item_id_places_a_late_committed_event() -> None:
    conn = ready()
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"a","previous_item_id":null}')
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"c","previous_item_id":"b"}')
    conn.receive('{"type":"input_audio_buffer.committed","item_id":"b","previous_item_id":"a"}')
    for item, text in (("c", "3"), ("b", "2"), ("a", "1")):
        conn.receive(
            json.dumps(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item,
                    "transcript": text,
                }
            )
        )
    # 'c' named a predecessor not yet seen, so it went last; 'b' was then linked in after 'a'.
    assert [t.text for t in conn.pop_finished_turns()] == ["1", "2", "3"]


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
    assert conn.state is ClientState.READY


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


def test_end_of_input_decisions_manual() -> None:
    manual = ready(turn_detection="manual")
    assert manual.finish_input() is None  # nothing buffered
    manual.append_audio(PCM_200MS, voiced_until_ms=-1)
    assert json.loads(manual.finish_input() or "")["type"] == "input_audio_buffer.clear"
    manual.append_audio(PCM_200MS, voiced_until_ms=150)
    assert json.loads(manual.finish_input() or "")["type"] == "input_audio_buffer.commit"
    manual.append_audio(b"\0\0" * 480, voiced_until_ms=20)  # 20 ms: too little to commit
    assert json.loads(manual.finish_input() or "")["type"] == "input_audio_buffer.clear"


def test_end_of_input_decisions_vad() -> None:
    vad = ready(turn_detection={"type": "server_vad", "silence_duration_ms": 500})
    # Speech still going when the input ends: nobody else will commit it.
    vad.append_audio(PCM_200MS, voiced_until_ms=200)
    assert json.loads(vad.finish_input() or "")["type"] == "input_audio_buffer.commit"
    # Speech followed by 600 ms of silence: the server's VAD commits it before it sees
    # anything we send next, so we clear, and wait for that clear as a barrier.
    vad.append_audio(PCM_200MS, voiced_until_ms=200)
    vad.append_audio(PCM_200MS * 3, voiced_until_ms=-1)
    assert json.loads(vad.finish_input() or "")["type"] == "input_audio_buffer.clear"
    assert vad.outstanding == 2  # the commit above, and the clear
    vad.receive('{"type":"input_audio_buffer.cleared"}')
    assert vad.outstanding == 1
    # A stop already reported leaves only silence: clear.
    late = ready(turn_detection={"type": "server_vad", "silence_duration_ms": 2000})
    late.append_audio(PCM_200MS * 2, voiced_until_ms=100)
    late.receive('{"type":"input_audio_buffer.speech_stopped","item_id":"v","audio_end_ms":200}')
    assert json.loads(late.finish_input() or "")["type"] == "input_audio_buffer.clear"
    # Semantic VAD: the pause it needs is unknown, so voiced speech is committed.
    semantic = ready(turn_detection={"type": "semantic_vad"})
    semantic.append_audio(PCM_200MS, voiced_until_ms=50)
    semantic.append_audio(PCM_200MS * 10, voiced_until_ms=-1)
    assert json.loads(semantic.finish_input() or "")["type"] == "input_audio_buffer.commit"


def test_unknown_events_and_tolerated_names() -> None:
    conn = RealtimeConnection()
    assert isinstance(conn.receive('{"type":"transcription_session.created"}')[0], SessionCreated)
    assert conn.state is ClientState.CREATED
    unknown = ready().receive('{"type":"rate_limits.updated","rate_limits":[]}')[0]
    assert isinstance(unknown, UnknownEvent) and unknown.type == "rate_limits.updated"


@pytest.mark.parametrize(
    ("message", "match"),
    [
        ("{not json", "malformed JSON"),
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
    assert client.state is ClientState.READY and not client.vad_enabled
    server.append(server.receive(client.append_audio(PCM_200MS)).audio)  # type: ignore[attr-defined]
    result = server.commit(server.receive(client.commit()).event_id)
    events = [e for m in result.messages for e in client.receive(m)]
    assert isinstance(events[0], AudioCommitted) and events[0].item_id == result.item_id
    assert len(result.audio) == len(PCM_200MS)
    client.receive(server.completed(result.item_id or "", "hi", 200))
    assert [t.text for t in client.pop_finished_turns()] == ["hi"]
    tiny = server.commit("commit_x")  # nothing buffered: OpenAI's error
    error = client.receive(tiny.messages[0])[0]
    assert isinstance(error, ServerError) and error.code == "input_audio_buffer_commit_empty"


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
        conn.pop_finished_turns()
        assert conn.outstanding >= 0
    conn.drain_turns()


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
