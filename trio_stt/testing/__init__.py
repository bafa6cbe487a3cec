"""Helpers for testing code that uses trio-stt, offline, in your own pytest-trio suite.

:func:`open_fake_server` starts the real local server (REST and realtime, on loopback, port 0)
with scripted transcripts; it records every client event it receives and can be told to
misbehave. trio-stt's own tests use exactly these helpers::

    from trio_stt.testing import RealtimeFaults, open_fake_server

    async def test_my_app():
        async with open_fake_server(["hello world"]) as server:
            model = server.model("gpt-live-transcribe")
            ...  # run your code against `model`
            assert server.sessions[0].events_of("input_audio_buffer.commit")

Faults are set on ``server.faults`` (realtime) and ``server.rest_faults`` (REST), before or
during a test: a late or missing ``session.created``, a rejected update, error events, an
abrupt close with a given code, malformed JSON, any text you like, completions out of order,
failed items, a server that stops reading. ``server.connector`` reaches the same server in
memory, without a socket, for tests on an exact mock clock.

For real speech, :func:`bundled_samples` gives the recordings that ship with trio-stt (short
English sentences with their reference text and turns) and :func:`word_error_rate` scores a
transcript; pair them with ``recognizer=PocketSphinxRecognizer()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _config, _model
from .._websocket import WebSocketConnector
from ..server import _app, _serve
from ..server._app import RecordedRequest, RestFault
from ..server._realtime import RealtimeFaults, RecordedSession
from ..server._recognizers import Recognizer as _Recognizer
from ..server._recognizers import ScriptedRecognizer
from ._memory import MemoryWebSocket, memory_connector
from ._speech import Sample, bundled_samples, word_error_rate

__all__ = [
    "FakeServer",
    "RealtimeFaults",
    "RecordedSession",
    "RecordedRequest",
    "RestFault",
    "ScriptedRecognizer",
    "open_fake_server",
    "memory_connector",
    "MemoryWebSocket",
    "speech_like",
    "silence",
    "Sample",
    "bundled_samples",
    "word_error_rate",
]


@dataclass(frozen=True)
class FakeServer:
    """A running fake server: where it is, what it saw, and how it should misbehave."""

    base_url: str
    app: _app.STTServerApp
    api_key: str | None = None

    @property
    def faults(self) -> RealtimeFaults:
        """Realtime faults, applied to sessions from now on."""
        return self.app.realtime.faults

    @property
    def rest_faults(self) -> list[RestFault]:
        """REST faults, consumed one per request."""
        return self.app.rest_faults

    @property
    def sessions(self) -> list[RecordedSession]:
        """Every realtime session so far, with the client events it received."""
        return self.app.realtime.sessions

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every REST transcription request so far."""
        return self.app.requests

    @property
    def active_sessions(self) -> int:
        """Realtime connections open right now (0 once every client has gone)."""
        return self.app.realtime.active

    async def wait_idle(self) -> None:
        """Wait until every realtime connection to this server has closed."""
        await self.app.realtime.wait_idle()

    @property
    def connector(self) -> WebSocketConnector:
        """Reach this server's realtime endpoint in memory, without a socket: pass it as
        ``SessionOptions(connector=server.connector)`` and timeouts are exact under
        ``MockClock(autojump_threshold=0)``."""
        faults = self.app.realtime.faults
        return memory_connector(self.app, answers_pings=lambda: not faults.ignore_pings)

    def client_config(self, **overrides: Any) -> _config.ClientConfig:
        """A :class:`ClientConfig` pointing at this server."""
        values: dict[str, Any] = {"base_url": self.base_url, "api_key": self.api_key}
        values.update(overrides)
        return _config.ClientConfig(**values)

    def model(self, name: str = "gpt-live-transcribe", **overrides: Any) -> _model.OpenAISTTModel:
        """An :class:`OpenAISTTModel` pointing at this server."""
        return _model.OpenAISTTModel(name, self.client_config(**overrides))


@asynccontextmanager
async def open_fake_server(
    transcripts: Sequence[str] = ("hello world",),
    *,
    recognizer: _Recognizer | None = None,
    api_key: str | None = None,
    faults: RealtimeFaults | None = None,
    max_body_bytes: int | None = None,
    lenient: bool = False,
) -> AsyncIterator[FakeServer]:
    """Run a fake OpenAI speech-to-text server for the duration of the block.

    Args:
        transcripts: what the scripted recognizer answers, one per turn or file, in order
            (the last repeats).
        recognizer: any recognizer instead (PocketSphinx for real speech).
        api_key: require this key, as OpenAI would.
        faults: realtime faults to start with.
        lenient: accept what OpenAI refuses (see ``ServerConfig.lenient``).
    """
    config = _app.ServerConfig(
        recognizer=recognizer or ScriptedRecognizer(tuple(transcripts)),
        api_key=api_key,
        record=True,
        lenient=lenient,
    )
    if max_body_bytes is not None:
        config.max_body_bytes = max_body_bytes
    app = _app.STTServerApp(config)
    if faults is not None:
        app.realtime.faults = faults
    async with _serve.open_server(app) as running:
        yield FakeServer(running.base_url, app, api_key)


def speech_like(seconds: float, *, rate: int = 24_000, seed: int = 0) -> npt.NDArray[np.float32]:
    """A voiced test signal (a buzzy tone with an envelope) that energy VAD calls speech."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    tone = 0.3 * np.sign(np.sin(2 * np.pi * 140 * t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (tone + rng.normal(0, 0.01, t.size)).astype(np.float32)


def silence(seconds: float, *, rate: int = 24_000) -> npt.NDArray[np.float32]:
    """Digital silence."""
    return np.zeros(int(seconds * rate), np.float32)
