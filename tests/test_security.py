"""The API key must never show up in a repr, an exception message or a span."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import trio_stt
from trio_stt import AudioInput, AuthenticationError, ClientConfig, OpenAISTTModel, STTModelSettings
from trio_stt.server import RestFault, RunningServer, ServerConfig

from .conftest import SECRET


def _all_text(span) -> str:  # type: ignore[no-untyped-def]
    parts = [span.name, str(span.status.description), repr(dict(span.attributes or {}))]
    parts += [repr(event.attributes) for event in span.events]
    return " ".join(parts)


def test_key_absent_from_public_reprs() -> None:
    config = ClientConfig(api_key=SECRET)
    model = OpenAISTTModel("gpt-transcribe", config)
    objects: list[object] = [
        config,
        model,
        model._http,
        STTModelSettings(),
        ServerConfig(api_key=SECRET),
        AudioInput(np.zeros(4, np.int16)),
    ]
    for obj in objects:
        assert SECRET not in repr(obj) and SECRET not in str(obj)
    assert "sk-proj" not in repr(config)


def test_credential_headers_and_query_values_are_masked_in_the_config_repr() -> None:
    config = ClientConfig(
        base_url="http://127.0.0.1:9/v1",
        extra_headers={"Authorization": "Bearer gateway-token-123456", "X-Trace-Id": "abc"},
        extra_query={"api-key": "azure-key-987654", "api-version": "2025-04-01"},
    )
    shown = repr(config)
    assert "gateway-token-123456" not in shown and "azure-key-987654" not in shown
    assert "'X-Trace-Id': 'abc'" in shown and "'api-version': '2025-04-01'" in shown
    assert config.redactor.text("echo gateway-token-123456") == "echo [redacted]"


def test_key_absent_from_exceptions_raised_by_config() -> None:
    for kwargs in (
        {"api_key": SECRET, "base_url": "http://remote.example.com/v1"},
        {"api_key": SECRET, "base_url": "gopher://x"},
        {"api_key": SECRET, "max_retries": -1},
    ):
        with pytest.raises(trio_stt.ConfigurationError) as info:
            ClientConfig(**kwargs)  # type: ignore[arg-type]
        assert SECRET not in str(info.value) and SECRET not in repr(info.value.args)


def test_server_messages_quoting_a_key_are_redacted() -> None:
    err = trio_stt.RealtimeServerError(
        f"Incorrect API key provided: {SECRET}", code="invalid_api_key"
    )
    assert SECRET not in str(err) and "[redacted]" in str(err)
    status = AuthenticationError(f"bad key {SECRET}", status_code=401)
    assert SECRET not in str(status) and SECRET not in status.message


async def test_key_absent_from_spans_errors_and_logs(
    secured_server: RunningServer,
    span_exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    audio = AudioInput(np.zeros(2400, np.int16))
    async with OpenAISTTModel(
        "whisper-1", ClientConfig(api_key=SECRET, base_url=secured_server.base_url)
    ) as model:
        assert await model.transcribe(audio, trace_include_sensitive_audio_data=True) == "hello"
        secured_server.app.rest_faults.append(RestFault(400, "invalid_value", f"echo {SECRET}"))
        with pytest.raises(trio_stt.BadRequestError) as info:
            await model.transcribe(audio)
        assert SECRET not in str(info.value)
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 2
    for span in spans:
        assert SECRET not in _all_text(span)
    assert spans[0].attributes["trio_stt.output"] == "hello"
    assert spans[0].attributes["trio_stt.input"] == audio.to_base64()
    assert spans[1].status.description is not None
    assert SECRET not in caplog.text


async def test_sensitive_flags_hide_output_and_error_text(
    server: RunningServer, span_exporter: InMemorySpanExporter
) -> None:
    audio = AudioInput(np.zeros(2400, np.int16))
    async with OpenAISTTModel(
        "whisper-1", ClientConfig(base_url=server.base_url, max_retries=0)
    ) as model:
        await model.transcribe(audio, trace_include_sensitive_data=False)
        server.app.rest_faults.append(RestFault(400, "invalid_value", "private words"))
        with pytest.raises(trio_stt.BadRequestError):
            await model.transcribe(audio, trace_include_sensitive_data=False)
    ok, failed = span_exporter.get_finished_spans()
    assert "trio_stt.output" not in ok.attributes
    assert "trio_stt.input" not in ok.attributes  # audio flag defaults to off
    assert ok.attributes["gen_ai.request.model"] == "whisper-1"
    assert ok.attributes["trio_stt.input_format"] == "pcm"
    assert failed.status.description == "BadRequestError (invalid_value)"
    assert "private words" not in _all_text(failed)
