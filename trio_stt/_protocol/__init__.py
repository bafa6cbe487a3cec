"""The realtime transcription protocol, sans I/O: no trio, no httpx2, no trio_websocket.

h11 and wsproto are the model: objects that turn intents into text and text into typed
events, with the protocol's bookkeeping, and nothing else. The trio session
(``trio_stt._session``) and the local server (``trio_stt.server``) are thin shells around it.
"""

from __future__ import annotations

from ._connection import (
    FATAL_ERROR_CODES,
    MAX_UNCOMMITTED_ITEMS,
    MIN_COMMIT_MS,
    RealtimeConnection,
)
from ._dialects import DIALECTS, Dialect, build_session_update, handshake_headers
from ._events import (
    AudioAppend,
    AudioCleared,
    AudioCommitted,
    AudioLost,
    ClearRequest,
    ClientEvent,
    CommitRequest,
    ConversationItem,
    RealtimeEvent,
    Reconnected,
    Reconnecting,
    Rotated,
    ServerError,
    SessionConfig,
    SessionCreated,
    SessionUpdated,
    SessionUpdateRequest,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
    Turn,
    UnknownClientEvent,
    UnknownEvent,
)
from ._pcm import BYTES_PER_MS, REALTIME_SAMPLE_RATE, frame_rms, voiced_until_ms
from ._server import CommitResult, RealtimeServerConnection
from ._state import CLIENT_TRANSITIONS, ClientState, ServerState, Step
from ._wire import PCM, PCMA, PCMU, WIRE_FORMATS, AudioFormat, WireFormat, wire_format

__all__ = [
    "RealtimeConnection",
    "RealtimeServerConnection",
    "ClientState",
    "ServerState",
    "Step",
    "CLIENT_TRANSITIONS",
    "Turn",
    "Reconnecting",
    "Reconnected",
    "AudioLost",
    "Rotated",
    "CommitResult",
    "Dialect",
    "BYTES_PER_MS",
    "AudioFormat",
    "WireFormat",
    "WIRE_FORMATS",
    "PCM",
    "PCMU",
    "PCMA",
    "wire_format",
    "REALTIME_SAMPLE_RATE",
    "frame_rms",
    "voiced_until_ms",
    "DIALECTS",
    "FATAL_ERROR_CODES",
    "MIN_COMMIT_MS",
    "MAX_UNCOMMITTED_ITEMS",
    "build_session_update",
    "handshake_headers",
    "RealtimeEvent",
    "SessionCreated",
    "SessionUpdated",
    "SpeechStarted",
    "SpeechStopped",
    "AudioCommitted",
    "AudioCleared",
    "ConversationItem",
    "TranscriptionDelta",
    "TranscriptionCompleted",
    "TranscriptionFailed",
    "ServerError",
    "UnknownEvent",
    "ClientEvent",
    "SessionConfig",
    "SessionUpdateRequest",
    "AudioAppend",
    "CommitRequest",
    "ClearRequest",
    "UnknownClientEvent",
]
