"""What a realtime session can be told (:class:`SessionOptions`) and what it counts
(:class:`SessionStatistics`): plain data, kept apart from the session's machinery."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._protocol._dialects import Dialect
from ._websocket import WebSocketConnector

__all__ = ["SessionOptions", "SessionStatistics"]


@dataclass(frozen=True)
class SessionOptions:
    """How a realtime session behaves; every field has a sensible default.

    Attributes:
        dialect: ``"ga"`` for OpenAI; ``"beta"`` for compatible servers on the old shape.
        session_created_timeout, session_updated_timeout: seconds for each setup step.
        inactivity_timeout: seconds without a server event while we wait for one.
        connect_timeout: seconds for TCP, TLS and the WebSocket handshake.
        close_timeout: seconds for the close handshake before the socket is dropped.
        send_timeout: seconds one message may take to send before the peer is declared stuck.
        max_message_bytes: received messages over this are a protocol error.
        max_append_ms: when audio queues up, up to this much is sent in one append.
        event_buffer: capacity of the event channel (0 works: each event waits for you).
        connector: replaces the WebSocket factory (a proxy, an in-memory transport).
    """

    dialect: Dialect = "ga"
    session_created_timeout: float = 10.0
    session_updated_timeout: float = 10.0
    inactivity_timeout: float = 1000.0
    connect_timeout: float = 10.0
    close_timeout: float = 5.0
    send_timeout: float = 30.0
    max_message_bytes: int = 4 * 1024 * 1024
    max_append_ms: float = 500.0
    event_buffer: int = 64
    connector: WebSocketConnector | None = field(default=None, repr=False)


@dataclass
class SessionStatistics:
    """Counters for one session (see :meth:`OpenAISTTTranscriptionSession.statistics`)."""

    messages_sent: int = 0
    messages_received: int = 0
    audio_seconds_sent: float = 0.0
    commits_sent: int = 0
    turns_completed: int = 0
    turns_failed: int = 0
    recoverable_errors: int = 0
    events_dropped: int = 0
