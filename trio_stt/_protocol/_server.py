"""The server side of a realtime transcription session, sans I/O.

The mirror image of :class:`RealtimeConnection`: client messages in, typed client events
out; server events out as JSON text, with the bookkeeping a server owes its clients: the
input buffer (bounded), item ids, the ``previous_item_id`` chain, and OpenAI's error for a
commit of less than 100 ms. Our local server is built on it, so what it emits is the event
sequence of protocol.md §1.3 by construction.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import LocalProtocolError, RemoteProtocolError
from .._results import Logprob
from .._settings import MODEL_CAPABILITIES
from .._untrusted import load_json
from ._dialects import (
    CREATED_TYPE,
    UPDATE_TYPE,
    UPDATED_TYPE,
    Dialect,
    parse_session_update,
    session_object,
)
from ._events import (
    AudioAppend,
    ClearRequest,
    ClientEvent,
    CommitRequest,
    SessionConfig,
    SessionUpdateRequest,
    UnknownClientEvent,
)
from ._pcm import BYTES_PER_MS
from ._state import SERVER_TRANSITIONS, ServerState

__all__ = ["RealtimeServerConnection", "CommitResult", "MalformedClientEvent"]


class MalformedClientEvent(RemoteProtocolError):
    """A client event that parsed as JSON but is not a valid event; its ``event_id``, if it
    had one, goes back in the error so the client can tell which event it was."""

    def __init__(self, message: str, event_id: str | None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.event_id = event_id
        self.code = code


class CommitResult:
    """What a commit produced: the messages to send and, on success, the item's audio."""

    __slots__ = ("audio", "item_id", "messages")

    def __init__(self, messages: list[str], item_id: str | None, audio: bytes) -> None:
        self.messages = messages
        self.item_id = item_id
        self.audio = audio


class RealtimeServerConnection:
    """Server role. One per WebSocket.

    Args:
        dialect: the shape this client speaks (Beta when it sent ``OpenAI-Beta``).
        max_buffer_bytes: uncommitted audio above this is refused with an error event.
    """

    def __init__(
        self,
        *,
        dialect: Dialect = "ga",
        session_id: str = "sess_local",
        max_message_bytes: int = 16 * 1024 * 1024,
        max_buffer_bytes: int = 100 * 1024 * 1024,
        expires_at: int | None = None,
    ) -> None:
        self.dialect: Dialect = dialect
        self.session_id = session_id
        self.max_message_bytes = max_message_bytes
        self.max_buffer_bytes = max_buffer_bytes
        self.expires_at = expires_at  # Unix seconds; OpenAI's sessions end an hour in
        self.config = SessionConfig(
            turn_detection={
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
            }
        )
        self.state = ServerState.UNCONFIGURED
        self._buffer = bytearray()
        self._buffer_start_ms = 0  # session time at which the buffer begins
        self.received_ms = 0
        self._items = 0
        self._events = 0
        self.last_item_id: str | None = None

    # ---------------------------------------------------------------- incoming

    def receive(self, message: str | bytes) -> ClientEvent:
        """Parse one client message. Raises :class:`RemoteProtocolError` if malformed."""
        if isinstance(message, (bytes, bytearray)):
            raise RemoteProtocolError("binary frames are not part of the protocol")
        if len(message) > self.max_message_bytes:
            raise RemoteProtocolError("client message exceeds the size limit")
        obj = load_json(message, "client message", finite=True)
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise RemoteProtocolError("client message is not an event object")
        kind = obj["type"]
        event_id = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
        if kind == "input_audio_buffer.append":
            audio = obj.get("audio")
            if not isinstance(audio, str):
                if audio is None:
                    missing = "Missing required parameter: 'audio'."
                    raise MalformedClientEvent(missing, event_id, "missing_required_parameter")
                raise MalformedClientEvent(
                    "Invalid type for 'audio': expected a string.", event_id, "invalid_type"
                )
            try:
                pcm = base64.b64decode(audio, validate=True)
            except (binascii.Error, ValueError):
                raise MalformedClientEvent(
                    "Invalid 'audio': the audio is not valid base64.", event_id
                ) from None
            return AudioAppend(pcm, event_id=event_id)
        if kind == "input_audio_buffer.commit":
            return CommitRequest(event_id=event_id)
        if kind == "input_audio_buffer.clear":
            return ClearRequest(event_id=event_id)
        if kind in UPDATE_TYPE.values():
            config, problem = parse_session_update(obj, self.config)
            return SessionUpdateRequest(config, obj, problem, event_id=event_id)
        return UnknownClientEvent(kind, obj, event_id=event_id)

    @property
    def configured(self) -> bool:
        return self.state is ServerState.CONFIGURED

    def _move_to(self, state: ServerState) -> None:
        if state not in SERVER_TRANSITIONS[self.state]:
            raise LocalProtocolError(f"cannot go from {self.state.value} to {state.value}")
        self.state = state

    def connection_closed(self) -> None:
        """The client went away; nothing more is sent."""
        if self.state is not ServerState.CLOSED:
            self._move_to(ServerState.CLOSED)

    # ---------------------------------------------------------------- buffer

    @property
    def buffered_ms(self) -> float:
        return len(self._buffer) / BYTES_PER_MS

    @property
    def buffer_start_ms(self) -> int:
        return self._buffer_start_ms

    def buffer(self) -> bytes:
        return bytes(self._buffer)

    def append(self, pcm: bytes) -> list[str]:
        """Add audio; returns error messages if the buffer limit is hit."""
        if len(self._buffer) + len(pcm) > self.max_buffer_bytes:
            return [self.error("Input audio buffer is full.", code="input_audio_buffer_full")]
        self._buffer += pcm
        self.received_ms += len(pcm) // BYTES_PER_MS
        return []

    def commit(self, event_id: str | None = None, *, upto_ms: int | None = None) -> CommitResult:
        """Commit the buffer (or its first part, up to session time *upto_ms*, for VAD)."""
        if upto_ms is None:
            cut = len(self._buffer)
        else:
            cut = max(0, min(len(self._buffer), (upto_ms - self._buffer_start_ms) * BYTES_PER_MS))
        cut -= cut % 2
        if cut / BYTES_PER_MS < 100:
            have = cut / BYTES_PER_MS
            message = (
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {have:.2f}ms of audio."
            )
            return CommitResult(
                [self.error(message, code="input_audio_buffer_commit_empty", event_id=event_id)],
                None,
                b"",
            )
        audio = bytes(self._buffer[:cut])
        del self._buffer[:cut]
        self._buffer_start_ms += cut // BYTES_PER_MS
        item_id = self.next_item_id()
        previous, self.last_item_id = self.last_item_id, item_id
        messages = [self.committed(item_id, previous)]
        messages += self.conversation_item(item_id, previous)
        return CommitResult(messages, item_id, audio)

    def clear(self) -> list[str]:
        self._buffer_start_ms += len(self._buffer) // BYTES_PER_MS
        self._buffer.clear()
        return [self._dump({"type": "input_audio_buffer.cleared"})]

    def next_item_id(self) -> str:
        self._items += 1
        return self._item_id(self._items)

    def peek_item_id(self) -> str:
        return self._item_id(self._items + 1)

    def _item_id(self, n: int) -> str:
        """Unique across sessions, as OpenAI's are: a client that reconnects must not meet
        the ids of the turns it lost again, for other turns."""
        return f"item_{self.session_id.removeprefix('sess_')}_{n:04d}"

    # ---------------------------------------------------------------- outgoing

    def _dump(self, event: dict[str, Any]) -> str:
        self._events += 1
        return json.dumps({"event_id": f"event_{self._events:05d}", **event}, separators=(",", ":"))

    def session_created(self) -> str:
        return self._dump(
            {
                "type": CREATED_TYPE[self.dialect],
                "session": session_object(
                    self.config, self.dialect, self.session_id, self.expires_at
                ),
            }
        )

    def session_updated(self, config: SessionConfig) -> str:
        self.config = config
        self._move_to(ServerState.CONFIGURED)
        return self._dump(
            {
                "type": UPDATED_TYPE[self.dialect],
                "session": session_object(config, self.dialect, self.session_id, self.expires_at),
            }
        )

    def speech_started(self, item_id: str, audio_start_ms: int) -> str:
        return self._dump(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": audio_start_ms,
                "item_id": item_id,
            }
        )

    def speech_stopped(self, item_id: str, audio_end_ms: int) -> str:
        return self._dump(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": audio_end_ms,
                "item_id": item_id,
            }
        )

    def committed(self, item_id: str, previous_item_id: str | None) -> str:
        return self._dump(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous_item_id,
                "item_id": item_id,
            }
        )

    def conversation_item(self, item_id: str, previous_item_id: str | None) -> list[str]:
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        names = (
            ["conversation.item.created"]
            if self.dialect == "beta"
            else ["conversation.item.added", "conversation.item.done"]
        )
        return [
            self._dump({"type": name, "previous_item_id": previous_item_id, "item": item})
            for name in names
        ]

    def delta(self, item_id: str, delta: str, logprobs: Sequence[Logprob] | None = None) -> str:
        return self._dump(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "item_id": item_id,
                "content_index": 0,
                "delta": delta,
                "logprobs": _logprobs(logprobs),
            }
        )

    def completed(
        self,
        item_id: str,
        transcript: str,
        audio_ms: float,
        logprobs: Sequence[Logprob] | None = None,
        languages: Sequence[str] = (),
    ) -> str:
        event: dict[str, Any] = {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item_id,
            "content_index": 0,
            "transcript": transcript,
            "usage": billed_usage(self.config.model, audio_ms / 1000, transcript),
            "logprobs": _logprobs(logprobs),
        }
        if languages:
            event["languages"] = [{"code": code} for code in languages]
        return self._dump(event)

    def failed(self, item_id: str, message: str, code: str = "audio_unintelligible") -> str:
        return self._dump(
            {
                "type": "conversation.item.input_audio_transcription.failed",
                "item_id": item_id,
                "content_index": 0,
                "error": {
                    "type": "transcription_error",
                    "code": code,
                    "message": message,
                    "param": None,
                },
            }
        )

    def error(
        self,
        message: str,
        *,
        code: str | None = None,
        type: str = "invalid_request_error",
        param: str | None = None,
        event_id: str | None = None,
    ) -> str:
        return self._dump(
            {
                "type": "error",
                "error": {
                    "type": type,
                    "code": code,
                    "message": message,
                    "param": param,
                    "event_id": event_id,
                },
            }
        )

    def raw(self, event: Mapping[str, Any]) -> str:
        """Any event, for fault injection and events this class does not model."""
        return self._dump(dict(event))


def billed_usage(model: str | None, seconds: float, text: str) -> dict[str, Any]:
    """What OpenAI bills *model* for (REST and realtime alike): whole seconds, rounded up
    (per commit, in a session), or tokens for the token-billed models.

    The token counts are the server's own arithmetic (10 audio tokens a second, one output
    token a word), there to give token-billed models the shape OpenAI gives them.
    """
    caps = MODEL_CAPABILITIES.get(model or "")
    if caps is None or not caps.token_billed:
        return {"type": "duration", "seconds": max(1, math.ceil(seconds))}
    audio_tokens, output_tokens = max(1, math.ceil(seconds * 10)), len(text.split())
    return {
        "type": "tokens",
        "input_tokens": audio_tokens,
        "output_tokens": output_tokens,
        "total_tokens": audio_tokens + output_tokens,
        "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0},
    }


def _logprobs(items: Sequence[Logprob] | None) -> list[dict[str, Any]] | None:
    if items is None:
        return None
    return [{"token": p.token, "logprob": p.logprob, "bytes": list(p.bytes)} for p in items]
