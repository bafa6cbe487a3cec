"""File transcription against the real local server on loopback."""

from __future__ import annotations

import json
import re
import socket
from functools import partial

import numpy as np
import pytest
import trio
import trio.testing
import trio_websocket

from trio_stt import (
    APIConnectionError,
    APITimeoutError,
    AudioFormatError,
    AudioInput,
    AuthenticationError,
    BadRequestError,
    ClientConfig,
    DurationUsage,
    InternalServerError,
    OpenAISTTModel,
    RateLimitError,
    RequestTooLargeError,
    SplitOptions,
    STTModelSettings,
    TokenUsage,
    TranscriptTextDelta,
    TranscriptTextDone,
    UploadTooLargeError,
)
from trio_stt.server import RestFault, RunningServer, ServerConfig, open_server

from .conftest import SECRET


def model_for(server: RunningServer, name: str = "whisper-1", **options: object) -> OpenAISTTModel:
    return OpenAISTTModel(name, ClientConfig(base_url=server.base_url, **options))  # type: ignore[arg-type]


async def test_reference_transcribe_returns_text(
    server: RunningServer, one_second: np.ndarray
) -> None:
    async with model_for(server, "gpt-transcribe") as model:
        settings = STTModelSettings(prompt="a greeting", language="en", temperature=0.2)
        text = await model.transcribe(AudioInput(one_second), settings)
    assert text == "hello there world"
    sent = server.app.requests[-1]
    assert sent.filename == "audio.wav"
    assert sent.fields["model"] == ["gpt-transcribe"]
    assert sent.fields["languages[]"] == ["en"]  # gpt-transcribe takes the list form
    assert sent.fields["prompt"] == ["a greeting"]
    assert sent.fields["temperature"] == ["0.2"]


async def test_every_response_format(server: RunningServer, one_second: np.ndarray) -> None:
    audio = AudioInput(one_second)
    async with model_for(server) as model:
        result = await model.transcribe_file(audio)
        assert result.text == "hello there world"
        assert result.usage == DurationUsage(seconds=1)
        assert result.request_id and re.fullmatch(r"req_[0-9a-f]{32}", result.request_id)

        text = await model.transcribe_file(audio, response_format="text")
        assert text.request_id != result.request_id  # one id per request
        assert text.text == "hello there world" and text.raw.endswith("\n")

        srt = await model.transcribe_file(audio, response_format="srt")
        assert srt.text.startswith("1\n00:00:00,000 --> 00:00:01,000")
        assert [s.text for s in srt.segments] == ["hello there world"]

        vtt = await model.transcribe_file(audio, response_format="vtt")
        assert vtt.text.startswith("WEBVTT")
        assert vtt.segments[0].end == pytest.approx(1.0)

        verbose = await model.transcribe_file(
            audio, response_format="verbose_json", timestamp_granularities=["word", "segment"]
        )
        assert verbose.language == "english" and verbose.duration == pytest.approx(1.0)
        assert [w.word for w in verbose.words] == ["hello", "there", "world"]
        assert verbose.words[-1].end == pytest.approx(1.0, abs=0.01)
        assert server.app.requests[-1].fields["timestamp_granularities[]"] == ["word", "segment"]

    async with model_for(server, "gpt-4o-transcribe-diarize") as model:
        diarized = await model.transcribe_file(
            audio,
            response_format="diarized_json",
            chunking_strategy="auto",
            known_speaker_names=["agent"],
        )
        assert diarized.segments[0].speaker == "agent"
        assert server.app.requests[-1].fields["chunking_strategy"] == ["auto"]

    async with model_for(server, "gpt-4o-transcribe") as model:
        probs = await model.transcribe_file(audio, STTModelSettings(include_logprobs=True))
        assert [p.token for p in probs.logprobs] == ["hello", "there", "world"]
        await model.transcribe_file(
            audio, chunking_strategy={"type": "server_vad", "threshold": 0.4}
        )
        fields = server.app.requests[-1].fields
        assert fields["chunking_strategy[type]"] == ["server_vad"]
        assert fields["chunking_strategy[threshold]"] == ["0.4"]


async def test_sse_stream_yields_typed_deltas_then_done(
    server: RunningServer, one_second: np.ndarray
) -> None:
    async with (
        model_for(server, "gpt-4o-transcribe") as model,
        model.stream_transcription(
            AudioInput(one_second), STTModelSettings(include_logprobs=True)
        ) as stream,
    ):
        events = [event async for event in stream]
    deltas = [e for e in events if isinstance(e, TranscriptTextDelta)]
    assert "".join(d.delta for d in deltas) == "hello there world"
    assert deltas[0].logprobs[0].token == "hello"
    assert isinstance(events[-1], TranscriptTextDone)
    # gpt-4o-transcribe bills tokens, as on OpenAI: 10 audio tokens a second, 1 a word
    assert events[-1].usage == TokenUsage(
        input_tokens=10, output_tokens=3, total_tokens=13, audio_tokens=10, text_tokens=0
    )
    assert stream.text == "hello there world"
    assert server.app.requests[-1].fields["stream"] == ["true"]


async def test_bad_key_is_a_401_even_with_a_text_plain_body(
    secured_server: RunningServer, one_second: np.ndarray
) -> None:
    async with model_for(secured_server, api_key="sk-wrong-key-0000000000") as model:
        with pytest.raises(AuthenticationError) as info:
            await model.transcribe(AudioInput(one_second))
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert "sk-wrong" not in str(info.value)  # the echoed key prefix is redacted
    async with model_for(secured_server, api_key=SECRET) as model:
        assert await model.transcribe(AudioInput(one_second)) == "hello"


async def test_oversized_upload_is_refused_before_sending(server: RunningServer) -> None:
    big = np.zeros(13_200_000, np.int16)  # 26.4 MB of WAV
    async with model_for(server) as model:
        with pytest.raises(UploadTooLargeError, match="over the 26,214,400-byte request limit"):
            await model.transcribe_file(AudioInput(big), split=SplitOptions(enabled=False))
    assert server.app.requests == []
    assert not server.app.request_started.is_set()  # nothing reached the server


async def test_server_side_413_maps_to_request_too_large(one_second: np.ndarray) -> None:
    async with (
        open_server(ServerConfig(record=True, max_body_bytes=1000)) as srv,
        model_for(srv) as model,
    ):
        with pytest.raises(RequestTooLargeError, match="Maximum content size limit"):
            await model.transcribe(AudioInput(one_second))


async def test_429_with_retry_after_is_retried(
    server: RunningServer, one_second: np.ndarray, autojump_clock: trio.abc.Clock
) -> None:
    server.app.rest_faults.append(
        RestFault(
            429,
            "rate_limit_exceeded",
            "Rate limit reached",
            "requests",
            headers={"retry-after": "7"},
        )
    )
    async with model_for(server) as model:
        start = trio.current_time()
        assert await model.transcribe(AudioInput(one_second)) == "hello there world"
        assert trio.current_time() - start >= 7  # it waited as told


async def test_500_is_retried_then_succeeds(
    server: RunningServer, one_second: np.ndarray, autojump_clock: trio.abc.Clock
) -> None:
    server.app.rest_faults += [RestFault(500), RestFault(503, message="overloaded")]
    async with model_for(server, max_retries=2) as model:
        assert await model.transcribe(AudioInput(one_second)) == "hello there world"
    assert server.app.rest_faults == []


async def test_retries_run_out(
    server: RunningServer, one_second: np.ndarray, autojump_clock: trio.abc.Clock
) -> None:
    server.app.rest_faults += [RestFault(500), RestFault(502)]
    async with model_for(server, max_retries=1) as model:
        with pytest.raises(InternalServerError) as info:
            await model.transcribe(AudioInput(one_second))
    assert info.value.status_code == 502


async def test_insufficient_quota_is_not_retried(
    server: RunningServer, one_second: np.ndarray
) -> None:
    server.app.rest_faults += [
        RestFault(
            429, "insufficient_quota", "You exceeded your current quota", "insufficient_quota"
        ),
        RestFault(500),
    ]
    async with model_for(server, max_retries=3) as model:
        with pytest.raises(RateLimitError) as info:
            await model.transcribe(AudioInput(one_second))
    assert info.value.code == "insufficient_quota"
    assert len(server.app.rest_faults) == 1  # the second fault was never consumed


async def test_bad_request_is_not_retried(server: RunningServer) -> None:
    async with model_for(server) as model:
        with pytest.raises(BadRequestError, match="Audio file might be corrupted") as info:
            await model.transcribe_file(b"RIFF....not really", filename="x.wav")
    assert info.value.param == "file"


async def test_connection_refused(autojump_clock: trio.abc.Clock, one_second: np.ndarray) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with OpenAISTTModel(
        "whisper-1", ClientConfig(base_url=f"http://127.0.0.1:{port}/v1")
    ) as model:
        refused = rf"cannot connect to 127\.0\.0\.1:{port}: .*\(is a server running there\?\)$"
        with pytest.raises(APIConnectionError, match=refused):
            await model.transcribe(AudioInput(one_second))


async def test_server_that_never_answers_times_out(
    server: RunningServer, one_second: np.ndarray, autojump_clock: trio.abc.Clock
) -> None:
    server.app.rest_faults += [RestFault(hang=True)]
    async with model_for(server, timeout=30.0, max_retries=0) as model:
        start = trio.current_time()
        with pytest.raises(APITimeoutError):
            await model.transcribe(AudioInput(one_second))
        assert 30 <= trio.current_time() - start < 31


async def test_cancellation_mid_request_closes_the_connection(
    server: RunningServer, one_second: np.ndarray
) -> None:
    server.app.rest_faults += [RestFault(hang=True)]
    async with model_for(server) as model:
        with trio.move_on_after(10) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(model.transcribe, AudioInput(one_second))
                await server.app.request_started.wait()
                nursery.cancel_scope.cancel()
        assert not scope.cancelled_caught
        with trio.fail_after(5):
            await server.app.client_disconnected.wait()  # the server saw the socket close
        # The pool is still usable afterwards.
        assert await model.transcribe(AudioInput(one_second)) == "hello there world"


async def test_borrowed_http_client_is_left_open(
    server: RunningServer, one_second: np.ndarray
) -> None:
    import httpx2

    async with httpx2.AsyncClient() as client:
        async with OpenAISTTModel(
            "whisper-1", ClientConfig(base_url=server.base_url), http_client=client
        ) as model:
            await model.transcribe(AudioInput(one_second))
        assert not client.is_closed
        response = await client.get(server.base_url + "/health")
        assert json.loads(response.text) == {"status": "ok"}


async def test_input_errors_before_any_request(server: RunningServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    async with model_for(server) as model:
        with pytest.raises(AudioFormatError, match="is empty"):
            await model.transcribe_file(empty)
        with pytest.raises(AudioFormatError, match="no supported audio extension"):
            await model.transcribe_file(b"data", filename="audio.bin")
        with pytest.raises(AudioFormatError, match="cannot read audio file"):
            await model.transcribe_file(tmp_path / "nope.wav")
    assert server.app.requests == []


async def test_the_access_log_writes_each_request_once_when_it_is_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """hypercorn logged a request twice (status ``-``, then 200) when the client closed the
    moment the response arrived; a WebSocket only at its handshake."""
    from trio_stt.server import STTServerApp, serve

    caplog.set_level("INFO", logger="trio_stt.server.access")
    async with trio.open_nursery() as nursery:
        base_url = await nursery.start(partial(serve, STTServerApp(), port=0, access_log=True))
        port = int(base_url.rsplit(":", 1)[1].split("/")[0])
        for _ in range(20):  # each client closes as soon as it has the whole response
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"GET /v1/health?api-key=sk-0123456789 HTTP/1.1\r\n"
                                  b"host: x\r\nconnection: keep-alive\r\n\r\n")  # fmt: skip
            answer = b""
            while not answer.endswith(b'{"status":"ok"}\r\n0\r\n\r\n'):  # chunked
                answer += await stream.receive_some() or b"(closed)"
            await stream.aclose()
        async with trio_websocket.open_websocket_url(
            f"ws://127.0.0.1:{port}/v1/realtime?intent=transcription"
        ) as ws:
            await ws.get_message()  # session.created
            logged_during = len(caplog.records)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    lines = [record.getMessage() for record in caplog.records]
    health = [line for line in lines if '"GET /v1/health" ' in line]
    assert len(health) == 20 and all(" 200 15B " in line for line in health), lines
    assert all(re.search(r" \d+\.\dms$", line) for line in health), health
    assert "sk-0123456789" not in "".join(lines)
    assert logged_during == 20  # the session is logged when it ends, not at its handshake
    assert re.fullmatch(r'127\.0\.0\.1:\d+ "GET /v1/realtime" 101 \d+\.\dms', lines[-1]), lines
