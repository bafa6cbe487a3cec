"""Every error path, with a server that echoes the credentials it was sent.

For each path, each shape of key (``sk-`` and a gateway token) and each place the key can be
configured (``api_key`` or a credential header), everything the user can see is searched for
the key: the exception's text, repr and attributes along its whole cause/context chain, the
printed traceback, the events, every log record at DEBUG and every exported span.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
import trio
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import trio_stt
from trio_stt import (
    AudioInput,
    ClientConfig,
    OpenAISTTModel,
    ReconnectPolicy,
    SessionOptions,
    StreamedAudioInput,
    STTModelSettings,
)
from trio_stt.testing import RealtimeFaults, RestFault, open_fake_server, speech_like

from .helpers import feed
from .hostile import (
    RawRequest,
    Responder,
    answer,
    open_raw_http_server,
    open_rejecting_websocket_server,
)
from .test_hostile import GATEWAY_KEY, SK_KEY, chain_text, sse, trickle

CLIENT_SECRET = "ek_68afECHOEDsecret0123456789abcdef"  # a minted secret, used as the key

AUDIO = AudioInput(np.zeros(2400, np.int16))

Scenario = Callable[[str, dict[str, Any]], Awaitable[tuple[BaseException | None, list[Any]]]]


def echo_everything() -> Callable[[trio.SocketStream, RawRequest], Awaitable[None]]:
    """A raw HTTP responder whose non-JSON 200 body quotes every header it received."""

    async def respond(stream: trio.SocketStream, request: RawRequest) -> None:
        credentials = [request.authorization, request.headers.get("api-key", "")]
        quoted = repr([*credentials, request.headers]).encode()
        await answer(b"<html>proxy says: " + quoted)(stream, request)

    return respond


async def _raised(call: Callable[[], Awaitable[object]]) -> BaseException:
    await trio.lowlevel.checkpoint()
    try:
        await call()
    except trio_stt.STTError as exc:
        return exc
    raise AssertionError("no error was raised")


async def _session(model: OpenAISTTModel) -> tuple[BaseException | None, list[Any]]:
    """Stream speech through a session, collecting its events and the error it ends with."""
    await trio.lowlevel.checkpoint()
    audio, events = StreamedAudioInput(), []
    try:
        # Reconnecting, quickly: what it reports is swept too.
        fast = ReconnectPolicy(initial_delay=0.01, max_delay=0.02)
        session_cm = model.create_session(
            audio, STTModelSettings(turn_detection="manual"), options=SessionOptions(reconnect=fast)
        )
        async with session_cm as session, trio.open_nursery() as nursery:
            nursery.start_soon(feed, audio, speech_like(0.5))
            async for event in session.events():
                events.append(event)
    except trio_stt.STTError as exc:
        return exc, events
    return None, events


# ----------------------------------------------------------------- REST


def _faulted(fault: RestFault, times: int) -> Scenario:
    """Transcribe against the fake server, which fails *times* times with *fault*."""

    async def scenario(key: str, auth: dict[str, Any]) -> tuple[BaseException | None, list[Any]]:
        async with open_fake_server() as server:
            server.rest_faults.extend([fault] * times)
            async with server.model("whisper-1", max_retries=times - 1, **auth) as model:
                return await _raised(lambda: model.transcribe(AUDIO)), []

    return scenario


def _raw(respond: Responder, **config: Any) -> Scenario:
    """Transcribe against a raw server answering with *respond*."""

    async def scenario(key: str, auth: dict[str, Any]) -> tuple[BaseException | None, list[Any]]:
        async with open_raw_http_server(respond) as url:
            settings = ClientConfig(base_url=url, max_retries=0, **config, **auth)
            async with OpenAISTTModel("whisper-1", settings) as model:
                return await _raised(lambda: model.transcribe(AUDIO)), []

    return scenario


def rest_scenarios(key: str) -> dict[str, Scenario]:
    return {
        "rest 401": _faulted(RestFault(401, "invalid_api_key", f"Incorrect key: {key}"), 1),
        "rest 500 retried": _faulted(RestFault(500, "server_error", f"crashed on {key}"), 2),
        "rest malformed body": _raw(echo_everything()),
        "rest malformed field": _raw(answer(f'{{"text":"hi","language":["{key}"]}}'.encode())),
        "rest timeout": _raw(trickle(f'{{"text":"{key}"}}'.encode()), timeout=1.0),  # type: ignore[arg-type]
    }


async def client_secret_malformed(
    key: str, auth: dict[str, Any]
) -> tuple[BaseException | None, list[Any]]:
    """A mint refused with a message that quotes the credential it was sent."""
    body = f'{{"error":{{"message":"no secrets for {key}","code":"invalid_value"}}}}'.encode()
    async with open_raw_http_server(answer(body, status="400 Bad Request")) as url:
        async with OpenAISTTModel(
            "gpt-live-transcribe", ClientConfig(base_url=url, **auth)
        ) as model:
            return await _raised(model.create_client_secret), []


async def sse_error_event(key: str, auth: dict[str, Any]) -> tuple[BaseException | None, list[Any]]:
    body = sse(f'{{"error":{{"message":"quota for {key} exceeded","code":"insufficient_quota"}}}}')
    async with open_raw_http_server(answer(body, content_type="text/event-stream")) as url:
        async with OpenAISTTModel("gpt-4o-transcribe", ClientConfig(base_url=url, **auth)) as model:

            async def read() -> None:
                async with model.stream_transcription(AUDIO) as stream:
                    async for _ in stream:
                        pass

            return await _raised(read), []


# ----------------------------------------------------------------- realtime


async def handshake_rejected(
    key: str, auth: dict[str, Any]
) -> tuple[BaseException | None, list[Any]]:
    async with open_rejecting_websocket_server(401) as url:
        model = OpenAISTTModel("gpt-live-transcribe", ClientConfig(base_url=url, **auth))
        return await _session(model)


def _realtime(faults: RealtimeFaults) -> Scenario:
    async def scenario(key: str, auth: dict[str, Any]) -> tuple[BaseException | None, list[Any]]:
        async with open_fake_server(["hi"], faults=faults) as server:
            return await _session(server.model(**auth))

    return scenario


def realtime_scenarios(key: str) -> dict[str, Scenario]:
    return {
        "fatal error event": _realtime(
            RealtimeFaults(error_after_appends=(1, "invalid_api_key", f"Incorrect key {key}"))
        ),
        "recoverable error event": _realtime(
            RealtimeFaults(error_after_appends=(1, "invalid_value", f"odd value {key}"))
        ),
        "close reason": _realtime(RealtimeFaults(close_after_appends=(1, 1011, f"bye {key}"))),
        "malformed message": _realtime(RealtimeFaults(raw_after_appends=(1, f"oops {key}"))),
        "malformed field": _realtime(
            RealtimeFaults(
                raw_after_appends=(1, f'{{"type":"error","error":{{"message":["{key}"]}}}}')
            )
        ),
    }


OTHER: dict[str, Scenario] = {
    "sse error event": sse_error_event,
    "handshake rejected": handshake_rejected,
    "client secret malformed": client_secret_malformed,
}
PATHS = [*rest_scenarios(""), *OTHER, *realtime_scenarios("")]
QUIET = {"rest timeout", "rest malformed field", "malformed field"}  # errors that quote nothing
# A client secret as the bearer credential: the local server refuses it before the fault
# would echo it (a secret opens one realtime session, nothing else). Swept all the same.
REFUSED_SECRET = {*rest_scenarios(""), *realtime_scenarios("")} - {"rest malformed body"}


def _span_text(exporter: InMemorySpanExporter) -> str:
    parts = []
    for span in exporter.get_finished_spans():
        parts += [span.name, str(span.status.description), repr(dict(span.attributes or {}))]
        parts += [repr(event.attributes) for event in span.events]
    return "\n".join(parts)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "key", [SK_KEY, GATEWAY_KEY, CLIENT_SECRET], ids=["sk", "gateway", "client secret"]
)
@pytest.mark.parametrize("where", ["api_key", "header"])
async def test_the_key_appears_nowhere(
    path: str,
    key: str,
    where: str,
    autojump_clock: trio.testing.MockClock,
    span_exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    auth: dict[str, Any] = (
        {"api_key": key} if where == "api_key" else {"extra_headers": {"api-key": key}}
    )
    scenario = {**rest_scenarios(key), **OTHER, **realtime_scenarios(key)}[path]
    error, events = await scenario(key, auth)
    if path != "recoverable error event":
        assert error is not None, "every path but a recoverable error ends in an error"
    seen = [repr(events), str(events), _span_text(span_exporter), caplog.text]
    seen += [repr(record.args) for record in caplog.records]
    if error is not None:
        seen += [chain_text(error), "".join(traceback.format_exception(error))]
    everything = "\n".join(seen)
    assert key not in everything
    refused = key == CLIENT_SECRET and where == "api_key" and path in REFUSED_SECRET
    if path not in QUIET and not refused:
        assert "[redacted]" in everything, "the server echoed the key, so something was masked"
