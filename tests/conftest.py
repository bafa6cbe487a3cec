from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from trio_stt.server import RunningServer, ScriptedRecognizer, ServerConfig, open_server

SECRET = "sk-proj-TOPSECRETvalue0123456789abcdef"

_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))
trace.set_tracer_provider(_provider)


@pytest.fixture
def span_exporter() -> Iterator[InMemorySpanExporter]:
    """Collects the spans finished during the test (OpenTelemetry SDK, in memory)."""
    _exporter.clear()
    yield _exporter
    _exporter.clear()


@pytest.fixture
def one_second() -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.standard_normal(24_000) * 0.1).astype(np.float32)


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    config = ServerConfig(recognizer=ScriptedRecognizer(["hello there world"]))
    async with open_server(config) as running:
        yield running


@pytest.fixture
async def secured_server() -> AsyncIterator[RunningServer]:
    config = ServerConfig(recognizer=ScriptedRecognizer(["hello"]), api_key=SECRET)
    async with open_server(config) as running:
        yield running
