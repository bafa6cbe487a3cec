"""Hostile servers: malformed values, echoed secrets and trickled bodies.

Each test drives the public API against a real server on loopback that misbehaves on
purpose; what comes out must be a correct result or one typed exception of ours.
"""

from __future__ import annotations

import numpy as np
import pytest
import trio

import trio_stt
from trio_stt import (
    APITimeoutError,
    AudioInput,
    ClientConfig,
    OpenAISTTModel,
    RemoteProtocolError,
    StreamedAudioInput,
    STTModelSettings,
)
from trio_stt.testing import RealtimeFaults, RestFault, open_fake_server, speech_like

from .helpers import feed
from .hostile import (
    RawRequest,
    answer,
    http_response,
    open_raw_http_server,
    open_rejecting_websocket_server,
)

AUDIO = AudioInput(np.zeros(2400, np.int16))
HUGE = "1" + "0" * 400  # a valid JSON integer no float can hold


def model_for(base_url: str, name: str = "whisper-1", **config: object) -> OpenAISTTModel:
    config.setdefault("max_retries", 0)
    return OpenAISTTModel(name, ClientConfig(base_url=base_url, **config))  # type: ignore[arg-type]


# ------------------------------------------------------------------ malformed values


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"text":"hi","duration":1e999}', "duration"),
        ('{"text":"hi","duration":NaN}', "duration"),
        ('{"text":"hi","duration":' + HUGE + "}", "duration"),
        ('{"text":"hi","usage":{"type":"duration","seconds":NaN}}', "usage.seconds"),
        (
            '{"text":"hi","usage":{"type":"tokens","input_tokens":1e999,'
            '"output_tokens":1,"total_tokens":2}}',
            "usage.input_tokens",
        ),
    ],
)
async def test_non_finite_numbers_in_a_200_are_a_protocol_error_naming_the_field(
    body: str, field: str
) -> None:
    async with open_raw_http_server(answer(body.encode())) as url, model_for(url) as model:
        with pytest.raises(RemoteProtocolError, match=field.replace(".", r"\.")):
            await model.transcribe(AUDIO)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"text":"hi","segments":[{"id":0,"start":null,"end":1.0,"text":"hi"}]}',
         r"segments\[0\]\.start"),
        ('{"text":"hi","words":[{"word":"hi","start":0.0,"end":null}]}', r"words\[0\]\.end"),
        ('{"text":"hi","segments":[{"id":0,"start":0,"end":"1.0","text":"hi"}]}',
         r"segments\[0\]\.end"),
    ],
)  # fmt: skip
async def test_null_times_in_verbose_json_are_a_protocol_error_naming_the_field(
    body: str, field: str
) -> None:
    async with open_raw_http_server(answer(body.encode())) as url, model_for(url) as model:
        with pytest.raises(RemoteProtocolError, match=field):
            await model.transcribe_file(AUDIO, response_format="verbose_json")


def sse(*events: str) -> bytes:
    return "".join(f"data: {event}\n\n" for event in events).encode()


async def test_null_times_in_an_sse_segment_are_a_protocol_error_naming_the_field() -> None:
    body = sse(
        '{"type":"transcript.text.segment","id":"s1","start":null,"end":1.0,"text":"hi",'
        '"speaker":"A"}',
        '{"type":"transcript.text.done","text":"hi"}',
    )
    responder = answer(body, content_type="text/event-stream")
    async with open_raw_http_server(responder) as url:
        async with model_for(url, "gpt-4o-transcribe-diarize") as model:
            with pytest.raises(RemoteProtocolError, match=r"start"):
                async with model.stream_transcription(AUDIO) as stream:
                    async for _ in stream:
                        pass


# ------------------------------------------------------------------ secrets echoed back

SK_KEY = "sk-proj-ECHOEDsecret0123456789abcdef"
GATEWAY_KEY = "gw1.Zx9QpL-2mT7vR4yK8nB3cH6j"  # a proxy token: not shaped like sk-
MANUAL = STTModelSettings(turn_detection="manual")  # speech_like is no speech to Silero
KEYS = pytest.mark.parametrize("key", [SK_KEY, GATEWAY_KEY], ids=["sk", "gateway"])


def chain_text(exc: BaseException) -> str:
    """Everything an exception shows: its text, its repr, its attributes, for the whole
    cause/context chain."""
    parts: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args)]
        parts += (
            [repr(value) for value in vars(current).values()]
            if hasattr(current, "__dict__")
            else []
        )
        parts += getattr(current, "__notes__", [])
        todo += [current.__cause__, current.__context__]
    return "\n".join(parts)


@KEYS
async def test_realtime_handshake_rejection_echoing_the_key_leaks_it_nowhere(key: str) -> None:
    async with open_rejecting_websocket_server(401) as url:
        model = OpenAISTTModel("gpt-live-transcribe", ClientConfig(base_url=url, api_key=key))
        with pytest.raises(trio_stt.STTWebsocketConnectionError) as info:
            async with model.create_session(StreamedAudioInput()):
                pass
    assert "401" in str(info.value)
    assert key not in chain_text(info.value)


@KEYS
async def test_a_recoverable_error_event_quoting_the_key_hides_it(key: str) -> None:
    faults = RealtimeFaults(error_after_appends=(1, "invalid_value", f"bad value near {key}"))
    async with open_fake_server(["hi"], faults=faults) as server:
        audio = StreamedAudioInput()
        events = []
        async with (
            server.model(api_key=key).create_session(audio, MANUAL) as session,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(feed, audio, speech_like(0.5))
            async for event in session.events():
                events.append(event)
    errors = [e for e in events if isinstance(e, trio_stt.ServerError)]
    assert errors and "bad value near" in errors[0].message
    assert key not in repr(events) and key not in str(events)


@KEYS
async def test_a_fatal_error_event_quoting_the_key_hides_it(key: str) -> None:
    faults = RealtimeFaults(error_after_appends=(1, "invalid_api_key", f"Incorrect key {key}"))
    async with open_fake_server(["hi"], faults=faults) as server:
        audio = StreamedAudioInput()
        with pytest.raises(trio_stt.RealtimeServerError) as info:
            async with (
                server.model(api_key=key).create_session(audio, MANUAL) as session,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(feed, audio, speech_like(0.5))
                async for _ in session.transcribe_turns():
                    pass
    assert info.value.code == "invalid_api_key"
    assert key not in chain_text(info.value)


@KEYS
async def test_a_rest_401_quoting_the_key_hides_it(key: str) -> None:
    async with open_fake_server() as server:
        server.rest_faults.append(
            RestFault(401, "invalid_api_key", f"Incorrect API key provided: {key}")
        )
        async with server.model("whisper-1", api_key=key, max_retries=0) as model:
            with pytest.raises(trio_stt.AuthenticationError) as info:
                await model.transcribe(AUDIO)
    assert "Incorrect API key provided" in str(info.value)
    assert key not in chain_text(info.value)


# ------------------------------------------------------------------ whole-exchange timeouts


def trickle(body: bytes, every: float = 0.25, **kwargs: object) -> object:
    """A responder that sends the headers at once, then the body one byte per *every* s."""

    async def respond(stream: trio.SocketStream, request: RawRequest) -> None:
        whole = http_response(body, **kwargs)  # type: ignore[arg-type]
        head = whole[: len(whole) - len(body)]
        await stream.send_all(head)
        for i in range(len(body)):
            await trio.sleep(every)
            await stream.send_all(body[i : i + 1])

    return respond


async def test_a_trickling_body_is_cut_off_at_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    body = b'{"text":"hello"}' + b" " * 40  # 56 bytes: 14 s at a byte per 0.25 s
    async with open_raw_http_server(trickle(body)) as url:  # type: ignore[arg-type]
        async with model_for(url, timeout=2.0) as model:
            start = trio.current_time()
            with pytest.raises(APITimeoutError, match="2 s"):
                await model.transcribe(AUDIO)
            assert 2.0 <= trio.current_time() - start < 2.5


async def test_retries_are_each_bounded_by_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts: list[float] = []

    async def respond(stream: trio.SocketStream, request: RawRequest) -> None:
        attempts.append(trio.current_time())
        await trickle(b'{"text":"hello"}' + b" " * 40)(stream, request)  # type: ignore[operator]

    async with open_raw_http_server(respond) as url:
        async with model_for(url, timeout=2.0, max_retries=2) as model:
            start = trio.current_time()
            with pytest.raises(APITimeoutError):
                await model.transcribe(AUDIO)
            elapsed = trio.current_time() - start
    assert len(attempts) == 3
    # attempts x timeout + the backoff between them (0.5 s and 1 s, less jitter)
    assert 3 * 2.0 + 0.75 <= elapsed <= 3 * 2.0 + 1.5 + 0.5


def endless_sse(every: float = 0.5) -> tuple[object, trio.Event]:
    """A responder streaming a delta every *every* s until the client hangs up (the event)."""
    hung_up = trio.Event()

    async def respond(stream: trio.SocketStream, request: RawRequest) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        await stream.send_all(head)
        try:
            while True:
                await stream.send_all(sse('{"type":"transcript.text.delta","delta":"la "}'))
                await trio.sleep(every)
        except trio.BrokenResourceError:
            hung_up.set()
            raise

    return respond, hung_up


async def test_breaking_out_of_an_endless_stream_closes_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    responder, hung_up = endless_sse()
    async with open_raw_http_server(responder) as url:  # type: ignore[arg-type]
        async with model_for(url, "gpt-4o-transcribe") as model:
            async with model.stream_transcription(AUDIO) as stream:
                async for _ in stream:
                    if stream.text == "la la la ":
                        break
        with trio.fail_after(5):
            await hung_up.wait()


async def test_an_endless_stream_is_cut_off_at_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    endless, _ = endless_sse()
    requests: list[RawRequest] = []

    async def responder(stream: trio.SocketStream, request: RawRequest) -> None:
        requests.append(request)
        await endless(stream, request)  # type: ignore[operator]

    async with open_raw_http_server(responder) as url:
        async with model_for(url, "gpt-4o-transcribe", timeout=3.0, max_retries=2) as model:
            start = trio.current_time()
            with pytest.raises(APITimeoutError):
                async with model.stream_transcription(AUDIO) as stream:
                    async for _ in stream:
                        pass
            assert 3.0 <= trio.current_time() - start < 3.5
            assert stream.text.startswith("la la la la la la ")
    assert len(requests) == 1, "a stream that has started is never retried"
