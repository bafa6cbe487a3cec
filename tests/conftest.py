from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
import trio
import trio.testing
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from trio_stt.server import RunningServer, ScriptedRecognizer, ServerConfig, open_server

SECRET = "sk-proj-TOPSECRETvalue0123456789abcdef"

# A shell starts background jobs with SIGINT ignored, children inherit that, and a Python
# child that starts with SIGINT ignored never raises KeyboardInterrupt: the Ctrl-C tests would
# wait forever for `trio-stt` to exit. Handled here, the signal is back to its default in
# every child (exec resets handled signals, not ignored ones).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))
trace.set_tracer_provider(_provider)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """pytest-trio's autojump clock, but patient with real sockets.

    Our timeout tests run client and server on loopback sockets. With a zero threshold the
    clock may jump while bytes are still on their way through the kernel (everything is
    briefly "blocked"), firing a timeout that could never fire for real. A tenth of a second
    of real idleness first makes a jump mean "nothing is going to happen".
    """
    return trio.testing.MockClock(autojump_threshold=0.1)


@pytest.fixture
def exact_clock() -> trio.testing.MockClock:
    """For tests with no sockets (the in-memory connector): the clock may jump the moment
    everything is blocked."""
    return trio.testing.MockClock(autojump_threshold=0)


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
    config = ServerConfig(record=True, recognizer=ScriptedRecognizer(["hello there world"]))
    async with open_server(config) as running:
        yield running


@pytest.fixture
async def secured_server() -> AsyncIterator[RunningServer]:
    config = ServerConfig(record=True, recognizer=ScriptedRecognizer(["hello"]), api_key=SECRET)
    async with open_server(config) as running:
        yield running
