"""What a realtime session can be told (:class:`SessionOptions`) and what it counts
(:class:`SessionStatistics`): plain data, kept apart from the session's machinery."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._errors import RECOVERABLE_CLOSE_CODES, RECOVERABLE_ERROR_CODES
from ._protocol import BYTES_PER_MS
from ._protocol._dialects import Dialect
from ._streamed_input import AppendPolicy
from ._websocket import WebSocketConnector

__all__ = [
    "SessionOptions",
    "SessionStatistics",
    "ReconnectPolicy",
    "RotationPolicy",
    "RECOVERABLE_CLOSE_CODES",
    "RECOVERABLE_ERROR_CODES",
]


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a session gets through a lost connection (``SessionOptions.reconnect``).

    On a recoverable loss (a close code in :data:`RECOVERABLE_CLOSE_CODES`, a connection
    lost without a close, a missed keepalive pong) the session connects again after a
    jittered delay that doubles from *initial_delay* to *max_delay*, configures the new
    connection as it did the first, and sends it again the audio the old one had not
    finished with (and the commits in it), so that no turn is lost or repeated. Fatal
    errors (a refused key or configuration, a quota) are never retried.

    Attributes:
        max_attempts: connections tried per outage before the session fails.
        max_outage: seconds an outage may last, all attempts together.
        initial_delay, max_delay: the backoff, in seconds (each delay is jittered down
            by up to a quarter, so that many clients do not come back at once).
        replay_seconds: audio kept for sending again: enough for one long turn. Past
            it the oldest is dropped, and a reconnect that needed it reports
            :class:`AudioLost` with how much.
    """

    max_attempts: int = 6
    max_outage: float = 60.0
    initial_delay: float = 0.5
    max_delay: float = 8.0
    replay_seconds: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"ReconnectPolicy.max_attempts must be >= 1; got {self.max_attempts}")
        for name in ("max_outage", "initial_delay", "max_delay", "replay_seconds"):
            value = getattr(self, name)
            if not 0 < value < float("inf"):
                raise ValueError(
                    f"ReconnectPolicy.{name} must be a finite number > 0; got {value!r}"
                )

    def delay(self, attempt: int, jitter: float) -> float:
        """The wait before *attempt* (1-based); *jitter* in [0, 1) takes up to a quarter off."""
        base: float = min(self.max_delay, self.initial_delay * 2.0 ** (attempt - 1))
        return base * (1 - 0.25 * jitter)


@dataclass(frozen=True)
class RotationPolicy:
    """How a session outlives the server's time limit (``SessionOptions.rotation``).

    OpenAI ends a realtime session after 60 minutes (``session_expired``) and says when in
    ``session.created`` (``expires_at``). *open_before* seconds before that, the session
    opens and configures a second connection. It moves the audio over at the next turn
    boundary (nothing owed, nobody speaking) or, failing one, *switch_before* seconds
    before the limit: the old connection is told to drop what it holds uncommitted, finishes
    the turns already committed, and closes; the new one is sent that uncommitted audio.
    Turns come out as one stream, none lost or repeated. A server that sends no
    ``expires_at`` is never rotated away from; if it ends the session anyway, that is a
    lost connection for :class:`ReconnectPolicy`.
    """

    open_before: float = 300.0
    switch_before: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.switch_before < self.open_before < float("inf"):
            raise ValueError(
                "RotationPolicy needs 0 < switch_before < open_before (finite seconds); got "
                f"open_before={self.open_before!r}, switch_before={self.switch_before!r}"
            )


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
        min_append_ms: the append policy. Audio is sent once this much is waiting, so that
            20 ms frames cost one message per 100 ms rather than five (per-message cost is
            most of a session's CPU). ``0`` sends each chunk as it comes; ``200`` or more
            is coarser still.
        append_deadline_ms: audio never waits longer than this for the rest of an append
            (default: ``min_append_ms``). A commit, a clear and the end of input send what
            is waiting at once.
        max_append_ms: when audio queues up, up to this much is sent in one append
            (default: 500, or ``min_append_ms`` if that is larger).
        keepalive_interval: seconds without a message from the server before a WebSocket
            ping, which finds a connection that died without closing (a half-open socket)
            while you are silent and nothing is owed; ``None`` sends none.
        keepalive_timeout: seconds a ping's pong may take before the session fails with
            :class:`STTWebsocketTimeoutError`.
        reconnect: what to do when the connection is lost (:class:`ReconnectPolicy`);
            ``None`` fails the session instead.
        rotation: when to move to a new connection before the server's time limit
            (:class:`RotationPolicy`); ``None`` stays on one connection until it ends.
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
    min_append_ms: float = 100.0
    append_deadline_ms: float | None = None
    max_append_ms: float | None = None
    keepalive_interval: float | None = 20.0
    keepalive_timeout: float = 20.0
    reconnect: ReconnectPolicy | None = field(default_factory=ReconnectPolicy)
    rotation: RotationPolicy | None = field(default_factory=RotationPolicy)
    event_buffer: int = 64
    connector: WebSocketConnector | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("min_append_ms", "append_deadline_ms", "max_append_ms"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < float("inf"):
                raise ValueError(
                    f"SessionOptions.{name} must be a finite number >= 0; got {value!r}"
                )
        for name in ("keepalive_interval", "keepalive_timeout"):
            value = getattr(self, name)
            if value is not None and not 0 < value < float("inf"):
                raise ValueError(
                    f"SessionOptions.{name} must be a finite number > 0; got {value!r}"
                )
        if self.max_append_ms is not None and self.max_append_ms < self.min_append_ms:
            raise ValueError(
                f"SessionOptions.max_append_ms ({self.max_append_ms:g}) is below "
                f"min_append_ms ({self.min_append_ms:g})"
            )

    def append_policy(self, bytes_per_ms: int = BYTES_PER_MS) -> AppendPolicy:
        """The sizes and deadline the sender coalesces audio by, for audio of *bytes_per_ms*
        (48 for 24 kHz PCM16, 8 for G.711)."""
        deadline = (
            self.min_append_ms if self.append_deadline_ms is None else self.append_deadline_ms
        )
        largest = (
            max(500.0, self.min_append_ms) if self.max_append_ms is None else self.max_append_ms
        )
        return AppendPolicy(self.min_append_ms, deadline, largest, bytes_per_ms)


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
    pings_answered: int = 0
    reconnects: int = 0
    rotations: int = 0
    audio_seconds_replayed: float = 0.0
    audio_seconds_lost: float = 0.0
