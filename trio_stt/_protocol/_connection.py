"""The client side of a realtime transcription session, sans I/O.

Theory of operation
-------------------
``RealtimeConnection`` turns intents into JSON text and JSON text into typed events. It never
touches a socket, a clock or a task: the trio shell feeds it whole WebSocket messages and
sends what it returns. Everything the protocol obliges a client to remember lives here:

* **State**: AWAITING_CREATED -> CREATED -> CONFIGURING -> READY, or FAILED after a fatal
  error. Sending audio before READY is a :class:`LocalProtocolError`.
* **The uncommitted tail**: where it starts (our last commit or clear, or the server's last
  ``speech_stopped``) and where the last voiced audio in it ends. At end of input this decides
  between commit (speech the server has not committed) and clear (silence: committing it
  costs money and invites phantom text such as "Thank you."). With server VAD, a tail whose
  speech is followed by at least ``silence_duration_ms`` of silence is committed by the
  server itself, because it handles our events in order; our clear then doubles as a barrier:
  every VAD commit comes back before ``cleared``. Pending clears count as outstanding.
* **Pending commits**, keyed by the ``event_id`` we put on each commit. ``committed`` events do
  not echo that id, and a too-small commit fails *after* later commits succeed (protocol.md
  §1.11), so a ``committed`` is matched to the oldest pending commit that was large enough to
  succeed, and a failed commit is found by the ``event_id`` in its error.
* **Commit order**: ``committed`` carries ``previous_item_id``; items form a linked list and
  finished turns are released in that order even when completions arrive out of order.
* **Per-item text**: deltas accumulate; ``completed`` replaces them (it is authoritative).
* **Errors**: classified fatal or recoverable by code and by what they answer.

The only exception :meth:`receive` raises is :class:`RemoteProtocolError`; any other is a bug.
"""

from __future__ import annotations

import base64
import enum
import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import LocalProtocolError, RemoteProtocolError
from .._results import Usage, parse_languages, parse_logprobs, parse_usage
from .._settings import STTModelSettings
from ._dialects import (
    CREATED_TYPES,
    UPDATED_TYPES,
    Dialect,
    build_session_update,
    effective_turn_detection,
)
from ._events import (
    AudioCleared,
    AudioCommitted,
    ConversationItem,
    RealtimeEvent,
    ServerError,
    SessionCreated,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
    UnknownEvent,
)

__all__ = ["ClientState", "RealtimeConnection", "Turn", "FATAL_ERROR_CODES", "MIN_COMMIT_MS"]

MIN_COMMIT_MS = 100.0
"""OpenAI refuses to commit less audio than this (``input_audio_buffer_commit_empty``)."""

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

FATAL_ERROR_CODES = frozenset(
    {
        "invalid_api_key",
        "session_expired",
        "beta_api_shape_disabled",
        "insufficient_quota",
        "server_error",
        "internal_error",
        "overloaded",
        "rate_limit_exceeded",
    }
)
"""Error codes after which the session cannot go on (protocol.md §1.11)."""


class ClientState(enum.Enum):
    AWAITING_CREATED = "awaiting session.created"
    CREATED = "created"
    CONFIGURING = "awaiting session.updated"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Turn:
    """One finished item, released in commit order."""

    item_id: str
    text: str
    failed: bool = False
    usage: Usage | None = None
    error: str | None = None


class _Item:
    __slots__ = ("error", "failed", "finished", "item_id", "text", "usage")

    def __init__(self, item_id: str) -> None:
        self.item_id = item_id
        self.text = ""
        self.finished = False
        self.failed = False
        self.usage: Usage | None = None
        self.error: str | None = None

    def turn(self) -> Turn:
        return Turn(self.item_id, self.text, self.failed, self.usage, self.error)


def _text(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


class RealtimeConnection:
    """Client role of the realtime transcription protocol.

    Args:
        dialect: ``"ga"`` (OpenAI today) or ``"beta"`` (older compatible servers).
        max_message_bytes: received messages larger than this are a protocol error.
    """

    def __init__(
        self,
        *,
        dialect: Dialect = "ga",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.dialect: Dialect = dialect
        self.max_message_bytes = max_message_bytes
        self.state = ClientState.AWAITING_CREATED
        self.vad_enabled = False
        self.vad_silence_ms: float | None = None  # None: unknown (semantic VAD)
        self.speech_active = False
        self.appended_ms = 0.0
        self._tail_start_ms = 0.0
        self._last_voiced_ms = -1.0
        self._pending_clears = 0
        self.session: Mapping[str, Any] = {}
        self.fatal_error: ServerError | None = None
        self._counter = 0
        self._sent: dict[str, str] = {}  # our event_id -> what it was
        self._update_id: str | None = None
        self._pending_commits: dict[str, float] = {}  # event_id -> ms of audio committed
        self._vad_expected: set[str] = set()  # item ids announced by speech_started
        self._items: dict[str, _Item] = {}
        self._order: deque[str] = deque()  # committed, unreleased item ids in commit order
        self._last_committed: str | None = None
        self._handlers = {
            "input_audio_buffer.speech_started": self._on_speech_started,
            "input_audio_buffer.speech_stopped": self._on_speech_stopped,
            "input_audio_buffer.committed": self._on_committed,
            "input_audio_buffer.cleared": self._on_cleared,
            "conversation.item.input_audio_transcription.delta": self._on_delta,
            "conversation.item.input_audio_transcription.completed": self._on_completed,
            "conversation.item.input_audio_transcription.failed": self._on_failed,
            "conversation.item.added": self._on_item,
            "conversation.item.done": self._on_item,
            "conversation.item.created": self._on_item,
            "error": self._on_error,
        }

    def __repr__(self) -> str:
        return (
            f"<RealtimeConnection {self.dialect} {self.state.name} "
            f"outstanding={self.outstanding} uncommitted_ms={self.uncommitted_ms:.0f}>"
        )

    # ---------------------------------------------------------------- outgoing

    def _next_id(self, prefix: str, kind: str) -> str:
        self._counter += 1
        event_id = f"{prefix}_{self._counter}"
        self._sent[event_id] = kind
        return event_id

    def update_session(self, model: str, settings: STTModelSettings) -> str:
        """The session update for *model*; allowed once ``session.created`` has arrived."""
        if self.state not in (ClientState.CREATED, ClientState.READY):
            raise LocalProtocolError(f"cannot update the session in state {self.state.value}")
        settings.check_for(model, realtime=True)
        event_id = self._next_id("update", "session.update")
        message = build_session_update(model, settings, self.dialect, event_id)
        if self.state is ClientState.CREATED:
            self.state = ClientState.CONFIGURING
            self._update_id = event_id
        self._set_vad(effective_turn_detection(model, settings))
        return json.dumps(message, separators=(",", ":"))

    def _set_vad(self, turn_detection: Mapping[str, Any] | None) -> None:
        self.vad_enabled = turn_detection is not None
        self.vad_silence_ms = None
        if turn_detection is not None and turn_detection.get("type") == "server_vad":
            silence = turn_detection.get("silence_duration_ms", 500)
            self.vad_silence_ms = float(silence) if isinstance(silence, (int, float)) else 500.0

    @property
    def uncommitted_ms(self) -> float:
        """Audio appended since the last commit, clear or server-side stop."""
        return max(0.0, self.appended_ms - self._tail_start_ms)

    def _require_ready(self, what: str) -> None:
        if self.state is not ClientState.READY:
            raise LocalProtocolError(f"cannot {what} in state {self.state.value}")

    def append_audio(self, pcm: bytes, *, voiced_until_ms: float | None = None) -> str:
        """``input_audio_buffer.append`` for little-endian PCM16 mono 24 kHz *pcm*.

        Built by string concatenation: base64 is JSON-safe, and a ``json.dumps`` of a large
        payload per chunk is measurable at hundreds of streams. *voiced_until_ms* is where,
        from the start of *pcm*, its last voiced audio ends (negative: none); ``None`` means
        unknown, taken as voiced throughout.
        """
        self._require_ready("append audio")
        if len(pcm) % 2:
            raise LocalProtocolError(f"PCM16 audio must be an even number of bytes; got {len(pcm)}")
        start = self.appended_ms
        self.appended_ms += len(pcm) / 48.0  # 24,000 samples/s x 2 bytes = 48 bytes per ms
        if voiced_until_ms is None:
            self._last_voiced_ms = self.appended_ms
        elif voiced_until_ms >= 0:
            self._last_voiced_ms = start + voiced_until_ms
        return (
            '{"type":"input_audio_buffer.append","audio":"'
            + base64.b64encode(pcm).decode("ascii")
            + '"}'
        )

    def commit(self) -> str:
        """``input_audio_buffer.commit``: the buffer becomes an item and is transcribed."""
        self._require_ready("commit")
        event_id = self._next_id("commit", "commit")
        self._pending_commits[event_id] = self.uncommitted_ms
        self._tail_start_ms = self.appended_ms
        self.speech_active = False
        return f'{{"type":"input_audio_buffer.commit","event_id":"{event_id}"}}'

    def clear(self) -> str:
        """``input_audio_buffer.clear``: drop uncommitted audio."""
        self._require_ready("clear")
        event_id = self._next_id("clear", "clear")
        self._tail_start_ms = self.appended_ms
        self._pending_clears += 1
        self.speech_active = False
        return f'{{"type":"input_audio_buffer.clear","event_id":"{event_id}"}}'

    def finish_input(self) -> str | None:
        """What to send when the audio ends: a commit, a clear, or nothing.

        Commit when the tail holds voiced audio the server has not committed and will not
        commit by itself; otherwise clear (a barrier after which no VAD commit can follow).
        """
        if self.state is not ClientState.READY:
            return None
        voiced_tail = self._last_voiced_ms > self._tail_start_ms
        server_will_commit = (
            self.vad_enabled
            and self.vad_silence_ms is not None
            and self.appended_ms - self._last_voiced_ms >= self.vad_silence_ms
        )
        if voiced_tail and not server_will_commit and self.uncommitted_ms >= MIN_COMMIT_MS:
            return self.commit()
        if self.uncommitted_ms > 0 or self._vad_expected or self.vad_enabled:
            return self.clear()
        return None

    # ---------------------------------------------------------------- bookkeeping

    @property
    def outstanding(self) -> int:
        """Commits not yet answered plus committed items not yet completed or failed."""
        unfinished = sum(1 for item_id in self._order if not self._items[item_id].finished)
        return (
            len(self._pending_commits) + self._pending_clears + len(self._vad_expected) + unfinished
        )

    def pop_finished_turns(self) -> list[Turn]:
        """Finished turns that are next in commit order (possibly none)."""
        out = []
        while self._order and self._items[self._order[0]].finished:
            out.append(self._items.pop(self._order.popleft()).turn())
        return out

    def drain_turns(self) -> list[Turn]:
        """At the very end: every finished turn, ordered ones first, then ones never committed."""
        out = self.pop_finished_turns()
        for item in list(self._items.values()):
            if item.finished and item.item_id not in self._order:
                out.append(self._items.pop(item.item_id).turn())
        return out

    def _forget_oldest(self, kind: str) -> None:
        for event_id, sent_kind in self._sent.items():
            if sent_kind == kind:
                del self._sent[event_id]
                return

    def _item(self, item_id: str) -> _Item:
        item = self._items.get(item_id)
        if item is None:
            item = self._items[item_id] = _Item(item_id)
        return item

    # ---------------------------------------------------------------- incoming

    def receive(self, message: str | bytes) -> list[RealtimeEvent]:
        """Parse one server message into events, updating the bookkeeping.

        Raises:
            RemoteProtocolError: oversized, binary, not JSON, or not an event object.
        """
        if isinstance(message, (bytes, bytearray)):
            raise RemoteProtocolError("server sent a binary frame; the protocol is JSON text only")
        if len(message) > self.max_message_bytes:
            raise RemoteProtocolError(
                f"server message of {len(message):,} characters exceeds the "
                f"{self.max_message_bytes:,} limit"
            )
        try:
            obj = json.loads(message)
        except (ValueError, RecursionError) as exc:
            raise RemoteProtocolError(
                f"server sent malformed JSON ({type(exc).__name__}): {message[:80]!r}"
            ) from None
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise RemoteProtocolError(f"server message is not an event object: {message[:80]!r}")
        kind: str = obj["type"]
        event_id = _text(obj, "event_id")
        if kind in CREATED_TYPES:
            return [self._on_created(obj, event_id)]
        if kind in UPDATED_TYPES:
            return [self._on_updated(obj, event_id)]
        handler = self._handlers.get(kind)
        if handler is None:
            return [UnknownEvent(kind, obj, event_id=event_id)]
        return [handler(obj, event_id)]

    def _on_created(self, obj: Mapping[str, Any], event_id: str | None) -> RealtimeEvent:
        session = obj.get("session")
        self.session = session if isinstance(session, Mapping) else {}
        if self.state is ClientState.AWAITING_CREATED:
            self.state = ClientState.CREATED
        return SessionCreated(self.session, event_id=event_id)

    def _on_updated(self, obj: Mapping[str, Any], event_id: str | None) -> RealtimeEvent:
        session = obj.get("session")
        self.session = session if isinstance(session, Mapping) else {}
        if self.state is ClientState.CONFIGURING:
            self.state = ClientState.READY
        self._forget_oldest("session.update")
        audio = self.session.get("audio")
        holder = audio.get("input") if isinstance(audio, Mapping) else self.session
        if isinstance(holder, Mapping) and "turn_detection" in holder:
            # The server's word on VAD (and its silence duration) beats what we asked for.
            echoed = holder["turn_detection"]
            self._set_vad(echoed if isinstance(echoed, Mapping) else None)
        return SessionUpdated(self.session, event_id=event_id)

    def _on_speech_started(self, obj: Mapping[str, Any], event_id: str | None) -> RealtimeEvent:
        item_id = _text(obj, "item_id") or ""
        self.speech_active = True
        if item_id:
            self._vad_expected.add(item_id)
        return SpeechStarted(item_id, _int(obj, "audio_start_ms"), event_id=event_id)

    def _on_speech_stopped(self, obj: Mapping[str, Any], event_id: str | None) -> RealtimeEvent:
        end_ms = _int(obj, "audio_end_ms")
        self.speech_active = False
        # The server commits up to end_ms itself; the tail starts there.
        self._tail_start_ms = max(self._tail_start_ms, float(end_ms))
        return SpeechStopped(_text(obj, "item_id") or "", end_ms, event_id=event_id)

    def _on_committed(self, obj: Mapping[str, Any], event_id: str | None) -> RealtimeEvent:
        item_id = _text(obj, "item_id") or f"item_unnamed_{self._counter}"
        previous = _text(obj, "previous_item_id")
        if self._pending_commits:
            # The oldest commit that was big enough to succeed; tiny ones fail later.
            match = next(
                (eid for eid, ms in self._pending_commits.items() if ms >= MIN_COMMIT_MS),
                next(iter(self._pending_commits)),
            )
            del self._pending_commits[match]
            self._sent.pop(match, None)  # answered: keep the id table bounded
            self._vad_expected.clear()  # a manual commit takes all buffered speech with it
        self._vad_expected.discard(item_id)
        self._item(item_id)
        if item_id not in self._order:
            if previous is not None and previous in self._order:
                self._order.insert(self._order.index(previous) + 1, item_id)
            else:
                self._order.append(item_id)
        self._last_committed = item_id
        return AudioCommitted(item_id, previous, event_id=event_id)

    def _on_cleared(self, obj: Mapping[str, Any], event_id: str | None) -> RealtimeEvent:
        self._vad_expected.clear()
        self._pending_clears = max(0, self._pending_clears - 1)
        self._forget_oldest("clear")
        return AudioCleared(event_id=event_id)

    def _on_item(self, obj: Mapping[str, Any], event_id: str | None) -> RealtimeEvent:
        item = obj.get("item")
        item_id = _text(item, "id") if isinstance(item, Mapping) else _text(obj, "item_id")
        return ConversationItem(
            obj["type"], item_id, _text(obj, "previous_item_id"), event_id=event_id
        )

    def _on_delta(self, obj: Mapping[str, Any], event_id: str | None) -> RealtimeEvent:
        item_id = _text(obj, "item_id") or ""
        delta = _text(obj, "delta") or ""
        item = self._item(item_id)
        if not item.finished:
            item.text += delta
        return TranscriptionDelta(
            item_id, delta, item.text, parse_logprobs(obj.get("logprobs")), event_id=event_id
        )

    def _on_completed(self, obj: Mapping[str, Any], event_id: str | None) -> RealtimeEvent:
        item_id = _text(obj, "item_id") or ""
        transcript = _text(obj, "transcript") or ""
        item = self._item(item_id)
        item.text, item.finished, item.usage = transcript, True, parse_usage(obj.get("usage"))
        return TranscriptionCompleted(
            item_id,
            transcript,
            item.usage,
            parse_logprobs(obj.get("logprobs")),
            parse_languages(obj.get("languages")),
            event_id=event_id,
        )

    def _on_failed(self, obj: Mapping[str, Any], event_id: str | None) -> RealtimeEvent:
        item_id = _text(obj, "item_id") or ""
        error = obj.get("error")
        error = error if isinstance(error, Mapping) else {}
        message = _text(error, "message") or "transcription failed"
        item = self._item(item_id)
        item.finished, item.failed, item.error = True, True, message
        return TranscriptionFailed(
            item_id, _text(error, "code"), message, _text(error, "type"), event_id=event_id
        )

    def _on_error(self, obj: Mapping[str, Any], event_id: str | None) -> RealtimeEvent:
        error = obj.get("error")
        if isinstance(error, str):  # some compatible servers send a bare string
            error = {"message": error, "code": _text(obj, "code")}
        if not isinstance(error, Mapping):
            error = {}
        code = _text(error, "code")
        client_event_id = _text(error, "event_id")
        caused_by = self._sent.get(client_event_id) if client_event_id else None
        rejected_setup = self.state is ClientState.CONFIGURING and (
            client_event_id is None or client_event_id == self._update_id
        )
        fatal = code in FATAL_ERROR_CODES or rejected_setup
        if caused_by == "commit" and client_event_id is not None:
            self._pending_commits.pop(client_event_id, None)
        elif caused_by == "clear":
            self._pending_clears = max(0, self._pending_clears - 1)
        event = ServerError(
            _text(error, "message") or "unknown server error",
            code,
            _text(error, "type"),
            _text(error, "param"),
            client_event_id,
            fatal,
            "session.update" if rejected_setup else caused_by,
            event_id=event_id,
        )
        if fatal:
            self.state = ClientState.FAILED
            self.fatal_error = event
        return event
