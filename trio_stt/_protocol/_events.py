"""Typed realtime events: what the server tells us, and what a client asked the server.

Frozen, slotted dataclasses (h11's style): an event cannot change after it is made, and it
is cheap, because a long session creates many of them. Every server event keeps the
``event_id`` the server gave it; fields the server may omit are optional.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._results import Logprob, Usage

__all__ = [
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
    "Turn",
    "Reconnecting",
    "Reconnected",
    "AudioLost",
    "Rotated",
    "ClientEvent",
    "SessionUpdateRequest",
    "AudioAppend",
    "CommitRequest",
    "ClearRequest",
    "UnknownClientEvent",
    "SessionConfig",
]


@dataclass(frozen=True, slots=True)
class RealtimeEvent:
    """Base of every server event."""

    event_id: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class SessionCreated(RealtimeEvent):
    """The first event of a session: ``session.created`` (GA) or its Beta name."""

    session: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class SessionUpdated(RealtimeEvent):
    """The server accepted a ``session.update``; ``session`` is the effective configuration."""

    session: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class SpeechStarted(RealtimeEvent):
    """Server VAD heard speech begin; ``item_id`` is the id the item will get."""

    item_id: str
    audio_start_ms: int = 0


@dataclass(frozen=True, slots=True)
class SpeechStopped(RealtimeEvent):
    """Server VAD heard speech end; a commit of ``item_id`` follows."""

    item_id: str
    audio_end_ms: int = 0


@dataclass(frozen=True, slots=True)
class AudioCommitted(RealtimeEvent):
    """The buffer became item ``item_id``, following ``previous_item_id`` in commit order."""

    item_id: str
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True)
class AudioCleared(RealtimeEvent):
    """Uncommitted audio was dropped."""


@dataclass(frozen=True, slots=True)
class ConversationItem(RealtimeEvent):
    """``conversation.item.added`` / ``.done`` (GA) or ``.created`` (Beta); no transcript."""

    kind: str
    item_id: str | None = None
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True)
class TranscriptionDelta(RealtimeEvent):
    """More text for ``item_id``: ``delta`` is the new piece, ``text`` everything so far."""

    item_id: str
    delta: str
    text: str
    logprobs: tuple[Logprob, ...] = ()


@dataclass(frozen=True, slots=True)
class TranscriptionCompleted(RealtimeEvent):
    """The final transcript of ``item_id`` (authoritative: it replaces the deltas)."""

    item_id: str
    transcript: str
    usage: Usage | None = None
    logprobs: tuple[Logprob, ...] = ()
    languages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TranscriptionFailed(RealtimeEvent):
    """Transcribing ``item_id`` failed; the session goes on and later turns are unaffected."""

    item_id: str
    code: str | None = None
    message: str = ""
    type: str | None = None


@dataclass(frozen=True, slots=True)
class ServerError(RealtimeEvent):
    """An ``error`` event. ``fatal`` says whether the session can go on.

    ``caused_by`` is the client event it answers (matched through ``error.event_id``):
    ``"commit"``, ``"clear"``, ``"session.update"``, or ``None`` when unknown.
    """

    message: str
    code: str | None = None
    type: str | None = None
    param: str | None = None
    client_event_id: str | None = None
    fatal: bool = False
    caused_by: str | None = None


@dataclass(frozen=True, slots=True)
class UnknownEvent(RealtimeEvent):
    """An event type this version does not model; kept whole, never an error."""

    type: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Turn(RealtimeEvent):
    """A finished turn, released in commit order once it and every turn before it finished.

    It follows the ``TranscriptionCompleted`` (or ``TranscriptionFailed``) of its item, which
    arrive in whatever order the server finishes them. ``text`` is the final transcript
    (empty for a failed turn, whose ``error`` says why).
    """

    item_id: str
    text: str
    usage: Usage | None = None
    failed: bool = False
    error: str | None = None


# --------------------------------------------------------------- the session's own events
# Not from the server: what the session did about the connection, in the same stream.


@dataclass(frozen=True, slots=True)
class Reconnecting(RealtimeEvent):
    """The connection was lost; a new one will be tried after *delay* seconds.

    *attempt* counts from 1 for each outage; *cause* says what happened to the old one.
    """

    attempt: int
    delay: float
    cause: str


@dataclass(frozen=True, slots=True)
class Reconnected(RealtimeEvent):
    """A new connection is configured, and the audio the old one had not finished with
    (*replayed_ms*, with its commits) was sent to it again."""

    attempt: int
    replayed_ms: float


@dataclass(frozen=True, slots=True)
class AudioLost(RealtimeEvent):
    """Audio a new connection needed but that was no longer kept (*ms* of it, and why)."""

    ms: float
    reason: str


@dataclass(frozen=True, slots=True)
class Rotated(RealtimeEvent):
    """The stream moved to a new connection before the old one reached the server's time
    limit (``expires_at``), at a turn boundary: the old connection finished its turns, and
    the new one (server session *session_id*) was sent the *replayed_ms* of audio it had
    held uncommitted."""

    session_id: str | None
    replayed_ms: float


# --------------------------------------------------------------------- client events
# What the server role parses out of a client's messages.


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """A transcription session configuration, normalised from either dialect."""

    model: str | None = None
    language: str | None = None
    languages: tuple[str, ...] = ()
    prompt: str | None = None
    keywords: tuple[str, ...] = ()
    delay: str | None = None
    turn_detection: Mapping[str, Any] | None = None
    noise_reduction: str | None = None
    audio_format: str = "audio/pcm"
    sample_rate: int = 24_000
    include_logprobs: bool = False


@dataclass(frozen=True, slots=True)
class ClientEvent:
    """Base of what a client sends."""

    event_id: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class SessionUpdateRequest(ClientEvent):
    """A session update; ``problem`` is OpenAI's error message when it is malformed."""

    config: SessionConfig
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class AudioAppend(ClientEvent):
    audio: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class CommitRequest(ClientEvent):
    pass


@dataclass(frozen=True, slots=True)
class ClearRequest(ClientEvent):
    pass


@dataclass(frozen=True, slots=True)
class UnknownClientEvent(ClientEvent):
    type: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
