"""Pure request/response mapping: multipart encoding, parsing, the retry policy."""

from __future__ import annotations

import email.utils
import time

import httpx2
import pytest
import trio

from trio_stt import (
    APIConnectionError,
    APIStatusError,
    ClientConfig,
    ConfigurationError,
    OpenAISTTModel,
    RemoteProtocolError,
    STTModelSettings,
    TokenUsage,
)
from trio_stt._http import retry_delay
from trio_stt._rest import SSEDecoder, build_transcription_request, parse_transcription
from trio_stt.server._multipart import parse_multipart

WAV = b"RIFF" + b"\0" * 40


def test_multipart_fields_follow_openai_encoding() -> None:
    request = build_transcription_request(
        "gpt-transcribe",
        WAV,
        STTModelSettings(
            languages=["en", "fr"], keywords=["AC-42", "premium plan"], temperature=0.0
        ),
        filename='we"ird.wav',
    )
    form = parse_multipart(request.body, request.content_type)
    assert form.fields["languages[]"] == ["en", "fr"]
    assert form.fields["keywords[]"] == ["AC-42", "premium plan"]
    assert form.fields["temperature"] == ["0.0"]
    assert form.files["file"].filename == "we_ird.wav"
    assert form.files["file"].content_type == "audio/wav"
    assert form.files["file"].data == WAV


@pytest.mark.parametrize(
    ("model", "kwargs", "settings", "message"),
    [
        ("gpt-4o-transcribe", {"response_format": "srt"}, STTModelSettings(), "does not produce"),
        ("gpt-4o-transcribe", {}, STTModelSettings(keywords=["x"]), "does not accept keywords"),
        ("gpt-live-transcribe", {}, STTModelSettings(), "realtime-only"),
        ("whisper-1", {"stream": True}, STTModelSettings(), "does not support streaming"),
        ("whisper-1", {"timestamp_granularities": ["word"]}, STTModelSettings(), "verbose_json"),
        ("whisper-1", {}, STTModelSettings(languages=["en", "de"]), "one language hint"),
    ],
)
def test_settings_a_model_would_reject_fail_locally(model, kwargs, settings, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError, match=message):
        build_transcription_request(model, WAV, settings, **kwargs)


def test_settings_validation() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        STTModelSettings(language="en", languages=["en"])
    with pytest.raises(ConfigurationError, match="contains '<'"):
        STTModelSettings(keywords=["<b>"])
    with pytest.raises(ConfigurationError, match="temperature"):
        STTModelSettings(temperature=1.5)


def test_parse_token_usage_and_languages() -> None:
    body = (
        '{"text":"Bonjour","languages":[{"code":"fr"}],"usage":{"type":"tokens","input_tokens":37,'
        '"output_tokens":12,"total_tokens":49,"input_token_details":{"audio_tokens":37,"text_tokens":0}}}'
    )
    result = parse_transcription(body, "json")
    assert result.languages == ("fr",)
    assert result.usage == TokenUsage(37, 12, 49, audio_tokens=37, text_tokens=0)
    with pytest.raises(RemoteProtocolError, match="not valid JSON"):
        parse_transcription("<html>", "json")


def test_sse_decoder_handles_multiline_comments_and_missing_final_blank() -> None:
    decoder = SSEDecoder()
    out = [decoder.feed_line(line) for line in [": ping", "event: x", "data: a", "data: b", ""]]
    assert out[-1] == ("x", "a\nb")
    decoder.feed_line("data: tail")
    assert decoder.flush() == (None, "tail")


def test_retry_delay_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("random.random", lambda: 0.0)
    assert [retry_delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert retry_delay(0, {"retry-after-ms": "250"}) == 0.25
    assert retry_delay(0, {"retry-after": "3.5"}) == 3.5
    assert retry_delay(0, {"retry-after": "121"}) is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (retry_delay(0, {"retry-after": future}) or 0) <= 30


async def test_x_should_retry_false_wins(autojump_clock: trio.abc.Clock) -> None:
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(
            503, headers={"x-should-retry": "false"}, json={"error": {"message": "no"}}
        )

    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    model = OpenAISTTModel(
        "whisper-1", ClientConfig(api_key="sk-x", max_retries=5), http_client=client
    )
    with pytest.raises(APIStatusError):
        await model.transcribe_file(WAV)
    assert calls == 1
    await client.aclose()


async def test_x_should_retry_true_retries_a_400(autojump_clock: trio.abc.Clock) -> None:
    replies = [
        httpx2.Response(400, headers={"x-should-retry": "true"}, text="{}"),
        httpx2.Response(200, json={"text": "ok"}),
    ]
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: replies.pop(0)))
    model = OpenAISTTModel("whisper-1", ClientConfig(api_key="sk-x"), http_client=client)
    assert (await model.transcribe_file(WAV)).text == "ok"
    await client.aclose()


async def test_transport_errors_map_to_ours(autojump_clock: trio.abc.Clock) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadError("connection reset", request=request)

    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    model = OpenAISTTModel(
        "whisper-1", ClientConfig(api_key="sk-x", max_retries=2), http_client=client
    )
    with pytest.raises(APIConnectionError, match="ReadError") as info:
        await model.transcribe_file(WAV)
    assert isinstance(info.value.__cause__, httpx2.ReadError)
    await client.aclose()


async def test_error_event_inside_a_stream_raises() -> None:
    body = (
        b'data: {"type":"transcript.text.delta","delta":"Hi"}\n\n'
        b'data: {"error":{"message":"boom","code":"server_error"}}\n\n'
    )
    client = httpx2.AsyncClient(
        transport=httpx2.MockTransport(
            lambda r: httpx2.Response(
                200, content=body, headers={"content-type": "text/event-stream"}
            )
        )
    )
    model = OpenAISTTModel("gpt-4o-transcribe", ClientConfig(api_key="sk-x"), http_client=client)
    got: list[object] = []

    async def consume() -> None:
        async with model.stream_transcription(WAV) as stream:
            async for event in stream:
                got.append(event)

    with pytest.raises(APIStatusError, match="boom"):
        await consume()
    assert len(got) == 1  # the delta before the error was delivered, then the error raised
    await client.aclose()


def model_answering(body: bytes, content_type: str) -> tuple[OpenAISTTModel, httpx2.AsyncClient]:
    reply = httpx2.Response(200, content=body, headers={"content-type": content_type})
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: reply))
    model = OpenAISTTModel("gpt-4o-transcribe", ClientConfig(api_key="sk-x"), http_client=client)
    return model, client


async def test_a_plain_json_answer_to_a_stream_request_is_one_final_event() -> None:
    """faster-whisper-server (and OpenAI, for whisper-1) answer stream=true with plain JSON."""
    body = b'{"text": "all of it at once", "usage": {"type": "duration", "seconds": 3}}'
    model, client = model_answering(body, "application/json")
    async with model.stream_transcription(WAV) as stream:
        events = [event async for event in stream]
    await client.aclose()
    assert [type(e).__name__ for e in events] == ["TranscriptTextDone"]
    assert stream.text == "all of it at once"
    assert stream.done is not None and stream.done.usage is not None


async def test_a_plain_answer_that_is_not_a_transcription_is_an_error() -> None:
    model, client = model_answering(b"<html>gateway</html>", "text/html")
    with pytest.raises(RemoteProtocolError, match="plain body where a stream was asked for"):
        async with model.stream_transcription(WAV) as stream:
            async for _ in stream:
                pass
    await client.aclose()


async def test_a_stream_that_ends_without_its_done_event_is_an_error() -> None:
    body = b'data: {"type":"transcript.text.delta","delta":"cut sh"}\n\n'
    model, client = model_answering(body, "text/event-stream")
    got: list[object] = []
    with pytest.raises(RemoteProtocolError, match=r"without its transcript.text.done.*6 char"):
        async with model.stream_transcription(WAV) as stream:
            async for event in stream:
                got.append(event)
    await client.aclose()
    assert len(got) == 1  # what came was delivered first


async def test_an_html_error_page_becomes_one_line_with_its_title() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>" + b"x" * 5000 + b"</body>"
    reply = httpx2.Response(502, content=page, headers={"content-type": "text/html"})
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: reply))
    model = OpenAISTTModel(
        "whisper-1", ClientConfig(api_key="sk-x", max_retries=0), http_client=client
    )
    with pytest.raises(APIStatusError) as caught:
        await model.transcribe_file(WAV)
    await client.aclose()
    message = str(caught.value)
    assert "the server answered with an HTML page ('502 Bad Gateway')" in message
    assert "<" not in message and "\n" not in message and len(message) < 300
