"""The realtime session against the real local server on loopback."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import trio
import trio.testing

from trio_stt import (
    AudioFormatError,
    ConfigurationError,
    RealtimeServerError,
    RemoteProtocolError,
    ServerError,
    SessionOptions,
    SessionUpdated,
    StreamedAudioInput,
    STTModelSettings,
    STTWebsocketTimeoutError,
    TranscriptionCompleted,
    TranscriptionFailed,
    Turn,
    WebSocketClosedError,
)
from trio_stt.testing import FakeServer, RealtimeFaults, open_fake_server, silence, speech_like

from .helpers import assert_nothing_left, feed, push_to_talk, session_tasks

SPEECH = speech_like(0.6)
MANUAL = STTModelSettings(turn_detection="manual")
VAD = STTModelSettings(
    turn_detection={
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
    }
)


async def run_session(
    server: FakeServer,
    model: str,
    settings: STTModelSettings,
    *parts: np.ndarray,
    options: SessionOptions | None = None,
) -> list[str]:
    audio = StreamedAudioInput()
    turns: list[str] = []
    async with server.model(model).create_session(audio, settings, options=options) as session:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed, audio, *parts)
            async for text in session.transcribe_turns():
                turns.append(text)
    return turns


# ---------------------------------------------------------------- what goes on the wire


async def test_default_settings_on_the_wire() -> None:
    async with open_fake_server(["hi"]) as server:
        await run_session(server, "gpt-4o-transcribe", STTModelSettings(language="en"), SPEECH)
        recorded = server.sessions[0]
    assert recorded.path == "/v1/realtime" and recorded.query == "intent=transcription"
    assert "openai-beta" not in recorded.headers and "model=" not in recorded.query
    update = recorded.client_events[0]
    assert update == {
        "type": "session.update",
        "event_id": "update_1",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                    "turn_detection": {"type": "semantic_vad"},
                }
            },
        },
    }
    appends = recorded.events_of("input_audio_buffer.append")
    assert appends and all(set(a) == {"type", "audio"} for a in appends)
    assert recorded.audio_bytes == len(SPEECH) * 2  # every sample arrived, as PCM16


async def test_vad_less_model_languages_and_logprobs_on_the_wire() -> None:
    async with open_fake_server(["hi"]) as server:
        settings = STTModelSettings(languages=["en", "fr"], turn_detection="manual")
        await run_session(server, "gpt-live-transcribe", settings, SPEECH)
        await run_session(
            server,
            "gpt-4o-transcribe",
            STTModelSettings(include_logprobs=True, turn_detection="manual"),
            SPEECH,
        )
    live = server.sessions[0].client_events[0]["session"]["audio"]["input"]
    assert live["turn_detection"] is None and "turn_detection" in live
    assert live["transcription"] == {"model": "gpt-live-transcribe", "languages": ["en", "fr"]}
    commits = server.sessions[0].events_of("input_audio_buffer.commit")
    assert commits == [{"type": "input_audio_buffer.commit", "event_id": commits[0]["event_id"]}]
    assert server.sessions[1].client_events[0]["session"]["include"] == [
        "item.input_audio_transcription.logprobs"
    ]


async def test_beta_dialect_on_the_wire() -> None:
    async with open_fake_server(["beta turn"]) as server:
        turns = await run_session(
            server, "gpt-4o-transcribe", MANUAL, SPEECH, options=SessionOptions(dialect="beta")
        )
        recorded = server.sessions[0]
    assert turns == ["beta turn"]
    assert recorded.headers["openai-beta"] == "realtime=v1"
    assert recorded.client_events[0] == {
        "type": "transcription_session.update",
        "event_id": "update_1",
        "session": {
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "gpt-4o-transcribe"},
            "turn_detection": None,
        },
    }


async def test_audio_is_converted_float_stereo_and_48k() -> None:
    async with open_fake_server(["ok"]) as server:
        audio = StreamedAudioInput(frame_rate=48_000, channels=2)
        async with server.model().create_session(audio, MANUAL) as session:
            stereo = np.stack([speech_like(0.5, rate=48_000)] * 2, axis=1)
            await audio.add_audio(stereo)
            with pytest.raises(AudioFormatError, match="float64"):
                await audio.add_audio(stereo.astype(np.float64))
            await audio.aclose()
            assert [t async for t in session.transcribe_turns()] == ["ok"]
        assert abs(server.sessions[0].audio_bytes - 24_000) <= 48  # 0.5 s at 24 kHz mono


# ---------------------------------------------------------------- timeouts


async def test_inactivity_timeout_names_what_was_awaited(autojump_clock: trio.abc.Clock) -> None:
    async with open_fake_server(faults=RealtimeFaults(never_complete=True)) as server:
        options = SessionOptions(inactivity_timeout=42)
        start = trio.current_time()
        with pytest.raises(
            STTWebsocketTimeoutError,
            match=r"final transcripts after end of input \(1 outstanding\)",
        ):
            await run_session(server, "gpt-live-transcribe", MANUAL, SPEECH, options=options)
        assert trio.current_time() - start == pytest.approx(42, abs=1)
        await assert_nothing_left(server)


async def test_no_inactivity_timeout_while_nothing_is_awaited(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_fake_server(["late"]) as server:
        audio = StreamedAudioInput()
        options = SessionOptions(inactivity_timeout=5)
        async with server.model().create_session(audio, MANUAL, options=options) as session:
            turns = session.transcribe_turns()
            await trio.sleep(60)  # a quiet user: nothing outstanding, so no timeout
            await feed(audio, SPEECH)
            assert [t async for t in turns] == ["late"]


# ---------------------------------------------------------------- end of input


async def test_manual_end_of_input_delivers_the_last_turn_and_ends_promptly(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_fake_server(["first", "last"]) as server:
        audio = StreamedAudioInput()
        async with server.model().create_session(audio, MANUAL) as session:
            turns = session.transcribe_turns()
            await audio.add_audio(SPEECH)
            await session.commit()
            await audio.add_audio(SPEECH)
            start = trio.current_time()
            await audio.aclose()
            assert [t async for t in turns] == ["first", "last"]
            # No timeout was waited out: the session ended within the round trip.
            assert trio.current_time() - start < 0.5
        commits = server.sessions[0].events_of("input_audio_buffer.commit")
        assert len(commits) == 2


async def test_manual_trailing_silence_is_cleared_not_committed() -> None:
    async with open_fake_server(["words"]) as server:
        audio = StreamedAudioInput()
        async with server.model().create_session(audio, MANUAL) as session:
            turns = session.transcribe_turns()
            await audio.add_audio(SPEECH)
            await session.commit()
            await feed(audio, silence(1.0))
            assert [t async for t in turns] == ["words"]
        kinds = [
            e["type"]
            for e in server.sessions[0].client_events
            if e["type"] != "input_audio_buffer.append"
        ]
        assert kinds == ["session.update", "input_audio_buffer.commit", "input_audio_buffer.clear"]


async def test_vad_mode_turns_and_unterminated_last_turn(autojump_clock: trio.abc.Clock) -> None:
    async with open_fake_server(["one", "two", "three"]) as server:
        # Two turns separated by pauses the server VAD hears, then speech cut off by the end
        # of input: the client commits that tail itself.
        turns = await run_session(
            server, "gpt-4o-transcribe", VAD, SPEECH, silence(0.8), SPEECH, silence(0.8), SPEECH
        )
        events = server.sessions[0].client_events
    assert turns == ["one", "two", "three"]
    assert len([e for e in events if e["type"] == "input_audio_buffer.commit"]) == 1


async def test_vad_mode_trailing_silence_is_cleared() -> None:
    async with open_fake_server(["only"]) as server:
        turns = await run_session(server, "gpt-4o-transcribe", VAD, SPEECH, silence(1.5))
        kinds = [
            e["type"]
            for e in server.sessions[0].client_events
            if e["type"] != "input_audio_buffer.append"
        ]
        assert turns == ["only"]
    # The server committed the turn itself; at the end the client only asked, with an empty
    # update answered in order, whether its VAD was still inside speech. It was not.
    assert kinds == ["session.update", "session.update"]
    assert server.sessions[0].client_events[-1]["session"] == {"type": "transcription"}


# ---------------------------------------------------------------- ordering and per-item failures


async def test_out_of_order_completions_come_out_in_commit_order() -> None:
    async with open_fake_server(
        ["A", "B", "C"], faults=RealtimeFaults(hold_completions=3)
    ) as server:
        audio = StreamedAudioInput()
        arrival: list[str] = []
        turns: list[str] = []
        async with server.model().create_session(audio, MANUAL) as session:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(push_to_talk, session, audio, SPEECH, SPEECH, SPEECH)
                async for event in session.events():
                    if isinstance(event, TranscriptionCompleted):
                        arrival.append(event.transcript)
                    elif isinstance(event, Turn):
                        turns.append(event.text)
        # Each turn waited for the ones before it, and came right after the last of them.
        assert turns == ["A", "B", "C"]
        assert arrival == ["C", "B", "A"]  # the server really sent them reversed


async def test_failed_item_does_not_block_later_turns(span_exporter) -> None:  # type: ignore[no-untyped-def]
    async with open_fake_server(
        ["lost", "kept"], faults=RealtimeFaults(fail_items=frozenset({1}))
    ) as server:
        audio = StreamedAudioInput()
        seen: list[object] = []
        async with server.model().create_session(audio, MANUAL) as session:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(push_to_talk, session, audio, SPEECH, SPEECH)
                async for event in session.events():
                    seen.append(event)
        finished = [e for e in seen if isinstance(e, Turn)]
        assert [(t.text, t.failed) for t in finished] == [("", True), ("kept", False)]
        assert finished[0].error == "The audio could not be transcribed."
        failed = [e for e in seen if isinstance(e, TranscriptionFailed)]
        assert len(failed) == 1 and failed[0].code == "audio_unintelligible"
        assert isinstance(seen[1], SessionUpdated)
    spans = span_exporter.get_finished_spans()
    assert [s.status.is_ok for s in spans] == [False, True]
    assert spans[1].attributes["trio_stt.output"] == "kept"


async def test_recoverable_commit_error_is_an_event_and_the_session_goes_on() -> None:
    async with open_fake_server(["fine"]) as server:
        audio = StreamedAudioInput()
        seen: list[object] = []
        async with server.model().create_session(audio, MANUAL) as session:
            events = session.events()
            await session.commit()  # nothing buffered: the server refuses, recoverably
            await feed(audio, SPEECH)
            async for event in events:
                seen.append(event)
        errors = [e for e in seen if isinstance(e, ServerError)]
        assert len(errors) == 1
        assert (errors[0].code, errors[0].caused_by, errors[0].fatal) == (
            "input_audio_buffer_commit_empty",
            "commit",
            False,
        )
        assert any(isinstance(e, TranscriptionCompleted) and e.transcript == "fine" for e in seen)
        assert session.statistics().recoverable_errors == 1


# ---------------------------------------------------------------- failures


async def test_bad_api_key_is_fatal_with_its_code() -> None:
    async with open_fake_server(api_key="sk-right-000000000000") as server:
        model = server.model(api_key="sk-wrong-000000000000")
        with pytest.raises(RealtimeServerError) as info:
            async with model.create_session(StreamedAudioInput()):
                pass
        assert info.value.code == "invalid_api_key"
        await assert_nothing_left(server)


async def test_rejected_initial_update_is_fatal() -> None:
    async with open_fake_server() as server:
        server.faults.reject_update = ("invalid_value", "Model not supported in this session.")
        model = server.model("whisper-1")
        with pytest.raises(RealtimeServerError, match="not supported") as info:
            async with model.create_session(StreamedAudioInput()):
                pass
        assert info.value.event_id == "update_1"
        await assert_nothing_left(server)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("insufficient_quota", "You exceeded your current quota."),
        ("beta_api_shape_disabled", "The Realtime Beta API is no longer supported."),
    ],
)
async def test_fatal_errors_mid_stream(code: str, message: str) -> None:
    faults = RealtimeFaults(error_after_appends=(2, code, message))
    async with open_fake_server(faults=faults) as server:
        with pytest.raises(RealtimeServerError, match=message) as info:
            await run_session(
                server,
                "gpt-live-transcribe",
                MANUAL,
                SPEECH,
                SPEECH,
                options=SessionOptions(max_append_ms=100),
            )
        assert info.value.code == code
        await assert_nothing_left(server)


async def test_abrupt_close_carries_code_and_reason() -> None:
    faults = RealtimeFaults(close_after_appends=(1, 1011, "upstream went away"))
    async with open_fake_server(faults=faults) as server:
        with pytest.raises(WebSocketClosedError) as info:
            await run_session(server, "gpt-live-transcribe", MANUAL, SPEECH,
                              options=SessionOptions(reconnect=None))  # fmt: skip
        assert (info.value.code, info.value.reason) == (1011, "upstream went away")
        await assert_nothing_left(server)


async def test_malformed_json_is_a_protocol_error() -> None:
    async with open_fake_server(faults=RealtimeFaults(malformed_after_appends=1)) as server:
        with pytest.raises(RemoteProtocolError, match="not valid JSON"):
            await run_session(server, "gpt-live-transcribe", MANUAL, SPEECH)
        await assert_nothing_left(server)


@pytest.mark.parametrize("size", [6000, 200_000])
async def test_oversized_message_is_a_protocol_error(size: int) -> None:
    async with open_fake_server(faults=RealtimeFaults(oversized_after_appends=(1, size))) as server:
        with pytest.raises(RemoteProtocolError, match="limit"):
            await run_session(
                server,
                "gpt-live-transcribe",
                MANUAL,
                SPEECH,
                options=SessionOptions(max_message_bytes=5000),
            )
        await assert_nothing_left(server)


async def test_user_exception_comes_out_unchanged() -> None:
    class Mine(Exception):
        pass

    error = Mine("from the block")
    async with open_fake_server() as server:
        with pytest.raises(Mine) as info:
            async with server.model().create_session(StreamedAudioInput()):
                raise error
        assert info.value is error
        await assert_nothing_left(server)


async def test_settings_the_model_rejects_fail_before_connecting() -> None:
    async with open_fake_server() as server:
        with pytest.raises(ConfigurationError, match="has no server VAD"):
            server.model("gpt-live-transcribe").create_session(StreamedAudioInput(), VAD)
        assert server.sessions == []


async def test_session_after_the_block_is_closed() -> None:
    async with open_fake_server(["x"]) as server:
        audio = StreamedAudioInput()
        async with server.model().create_session(audio, MANUAL) as session:
            await feed(audio, SPEECH)
            _ = [t async for t in session.transcribe_turns()]
        with pytest.raises(trio.ClosedResourceError):
            await session.commit()
        with pytest.raises(trio.ClosedResourceError):
            await audio.add_audio(SPEECH)


# ---------------------------------------------------------------- cancellation


async def test_cancel_while_connecting() -> None:
    # A TCP listener that accepts and never answers the WebSocket handshake.
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    from trio_stt import ClientConfig, OpenAISTTModel

    model = OpenAISTTModel(
        "gpt-live-transcribe", ClientConfig(base_url=f"http://127.0.0.1:{port}/v1")
    )
    with trio.move_on_after(0.5) as scope:
        async with model.create_session(StreamedAudioInput()):
            pytest.fail("the handshake cannot have completed")
    assert scope.cancelled_caught
    assert session_tasks() == []
    listener.close()


async def test_connect_timeout_on_a_silent_server(autojump_clock: trio.abc.Clock) -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    from trio_stt import ClientConfig, OpenAISTTModel

    model = OpenAISTTModel(
        "gpt-live-transcribe",
        ClientConfig(base_url=f"http://127.0.0.1:{listener.getsockname()[1]}/v1"),
    )
    with pytest.raises(STTWebsocketTimeoutError, match="websocket connection"):
        async with model.create_session(
            StreamedAudioInput(), options=SessionOptions(connect_timeout=3)
        ):
            pass
    listener.close()


async def test_connection_refused_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    from trio_stt import ClientConfig, OpenAISTTModel, STTWebsocketConnectionError

    model = OpenAISTTModel(
        "gpt-live-transcribe", ClientConfig(base_url=f"http://127.0.0.1:{port}/v1")
    )
    with pytest.raises(STTWebsocketConnectionError, match=f"cannot connect to 127.0.0.1:{port}"):
        async with model.create_session(StreamedAudioInput()):
            pass


async def test_cancel_while_configuring() -> None:
    async with open_fake_server(faults=RealtimeFaults(drop_session_updated=True)) as server:
        with trio.move_on_after(0.5) as scope:
            async with server.model().create_session(StreamedAudioInput()):
                pass
        assert scope.cancelled_caught
        await assert_nothing_left(server)


async def test_cancel_while_streaming() -> None:
    async with open_fake_server() as server:
        audio = StreamedAudioInput()
        with trio.CancelScope() as scope:
            async with server.model().create_session(audio, MANUAL) as session:
                await audio.add_audio(SPEECH)
                await trio.testing.wait_all_tasks_blocked()
                assert session.statistics().audio_seconds_sent > 0
                scope.cancel()
                await trio.sleep_forever()
        assert scope.cancelled_caught
        await assert_nothing_left(server)


async def test_cancel_while_flushing() -> None:
    async with open_fake_server(faults=RealtimeFaults(never_complete=True)) as server:
        with trio.move_on_after(1) as scope:
            await run_session(server, "gpt-live-transcribe", MANUAL, SPEECH)
        assert scope.cancelled_caught
        assert server.sessions[0].events_of("input_audio_buffer.commit")  # it was flushing
        await assert_nothing_left(server)


async def test_cancel_with_a_send_stuck_on_a_server_that_stopped_reading() -> None:
    async with open_fake_server(faults=RealtimeFaults(stall_reads_after_update=True)) as server:
        audio = StreamedAudioInput(max_buffered_chunks=1)
        big = speech_like(5.0)
        with trio.move_on_after(2) as scope:
            async with server.model().create_session(audio, MANUAL):
                while True:  # far more than the socket buffers hold
                    await audio.add_audio(big)
        assert scope.cancelled_caught
        assert session_tasks() == []


async def test_a_send_the_server_never_reads_fails_after_send_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_server(faults=RealtimeFaults(stall_reads_after_update=True)) as server:
        audio = StreamedAudioInput(max_buffered_chunks=1)
        big = speech_like(5.0)
        options = SessionOptions(send_timeout=7)
        started = trio.current_time()
        with (
            trio.fail_after(60),
            pytest.raises(WebSocketClosedError, match="a send took longer than 7 s") as caught,
        ):
            async with server.model().create_session(audio, MANUAL, options=options):
                while True:  # until the socket's buffers are full and a send waits
                    await audio.add_audio(big)
        assert 7 <= trio.current_time() - started < 8
        assert "the server stopped reading" in str(caught.value)
        assert session_tasks() == []


async def test_a_close_while_audio_pours_in_is_noticed_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The server closes and stops reading while we send flat out on a real socket.

    trio-websocket writes its answer to the close before it reports the close, and that
    write waited behind ours, which the server no longer read: the session noticed only
    when its keepalive ping came round (20 s). Now the write in flight is cut short.
    """
    autojump_clock.autojump_threshold = 0.1  # real sockets: the bytes cross first
    faults = RealtimeFaults(close_after_appends=(25, 1011, "going down"))
    options = SessionOptions(reconnect=None, min_append_ms=100, max_append_ms=100)
    async with open_fake_server(faults=faults) as server:
        started = trio.current_time()
        with pytest.raises(WebSocketClosedError) as info:
            await run_session(server, "gpt-live-transcribe", MANUAL,
                              speech_like(60.0), options=options)  # fmt: skip
        assert (info.value.code, info.value.reason) == (1011, "going down")
        assert trio.current_time() - started < 1.0
        await assert_nothing_left(server)
