"""The client side of a realtime transcription session, sans I/O.

Theory of operation
-------------------
``RealtimeConnection`` turns intents into JSON text and JSON text into typed events. It never
touches a socket, a clock or a task: the trio shell feeds it whole WebSocket messages and
sends what it returns. Every fact the protocol obliges a client to remember lives here, and
the shell asks for them (:attr:`state`, :attr:`waiting_for_server`):

* **The phase** (``_state.py``): connecting, configuring, streaming, input ended, draining,
  done, closed or failed, moved only through the transition table.
* **The uncommitted tail**: where it starts (our last commit or clear, or the server's last
  ``speech_stopped``) and where the last voiced audio in it ends. In manual mode this decides,
  at end of input, between a final commit (speech) and a clear (silence: committing it costs
  money and invites phantom text such as "Thank you."). Under server VAD the server decides
  instead (see ``ENDING`` in ``_state.py``): after the barrier is answered we commit only if
  its VAD is still inside speech, which it will never end by itself.
* **What the server owes us**: updates not yet answered (``session.updated`` echoes no id, so
  they are answered in order), commits keyed by the ``event_id`` we put on each, clears, and
  VAD turns announced by ``speech_stopped`` but not yet committed. ``committed`` events do not
  echo our id, and a too-small commit fails *after* later commits succeed (protocol.md
  §1.11), so a ``committed`` of ours is matched to the oldest pending commit large enough to
  succeed, one of the server's own is recognised by the item its ``speech_stopped`` named,
  and a failed commit is found by the ``event_id`` in its error.
* **Commit order**: ``committed`` carries ``previous_item_id``; items form a linked list and
  finished turns come out of :meth:`receive` as :class:`Turn` events in that order, even when
  completions arrive out of order. Text for items the server never committed is never
  released as a turn (and is bounded: a server that keeps inventing items is an error).
* **Per-item text**: deltas accumulate; ``completed`` replaces them (it is authoritative).
* **Errors**: classified fatal or recoverable by code and by what they answer.

The only exception :meth:`receive` raises is :class:`RealtimeProtocolError` (a
:class:`RemoteProtocolError`), or
:class:`LocalProtocolError` when called after the connection failed or closed); any other
is a bug. Intents raise :class:`LocalProtocolError` when the phase does not allow them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from .._errors import LocalProtocolError, RealtimeProtocolError
from .._results import Usage, languages_from, logprobs_from, usage_from
from .._settings import STTModelSettings
from .._untrusted import Fields, load_json
from ._dialects import (
    CREATED_TYPES,
    UPDATED_TYPES,
    Dialect,
    build_barrier,
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
    Turn,
    UnknownEvent,
)
from ._state import CLIENT_TRANSITIONS, ClientState, Step
from ._wire import PCM, WireFormat

__all__ = ["RealtimeConnection", "FATAL_ERROR_CODES", "MIN_COMMIT_MS", "MAX_UNCOMMITTED_ITEMS"]

MIN_COMMIT_MS = 100.0
"""OpenAI refuses to commit less audio than this (``input_audio_buffer_commit_empty``)."""

MAX_UNCOMMITTED_ITEMS = 256
"""Items with text but no ``committed`` event we keep at once (gpt-live-transcribe sends
deltas before the commit is acknowledged); past this the server is misbehaving."""

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
        return Turn(self.item_id, self.text, self.usage, self.failed, self.error)


class RealtimeConnection:
    """Client role of the realtime transcription protocol.

    Args:
        dialect: ``"ga"`` (OpenAI today) or ``"beta"`` (older compatible servers).
        max_message_bytes: received messages larger than this are a protocol error.
        redact: applied to what servers say in error events (``message``, ``code``, ...),
            to mask secrets they echo; the shell passes its configuration's redactor.
        audio_format: what the appended bytes are (24 kHz PCM16 unless G.711 is sent as
            it came); the session update names it, and durations are counted in it.
    """

    def __init__(
        self,
        *,
        dialect: Dialect = "ga",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        redact: Callable[[str], str] | None = None,
        audio_format: WireFormat = PCM,
    ) -> None:
        self.dialect: Dialect = dialect
        self.audio_format = audio_format
        self._redact = redact
        self.max_message_bytes = max_message_bytes
        self.state = ClientState.AWAITING_CREATED
        self.session: Mapping[str, Any] = {}
        self.fatal_error: ServerError | None = None
        self.vad_enabled = False
        self.speech_active = False  # the server's VAD is inside speech it has not committed
        self.appended_ms = 0.0
        self._tail_start_ms = 0.0
        self._last_voiced_ms = -1.0
        self._counter = 0
        self._sent: dict[str, str] = {}  # our unanswered event_id -> what it was
        self._pending_updates: list[str] = []
        self._barrier: str | None = None
        self._pending_commits: dict[str, float] = {}  # event_id -> ms of audio committed
        self._pending_clears = 0
        self._vad_stopped: set[str] = set()  # items the server's VAD ended and will commit
        self._items: dict[str, _Item] = {}
        # Lists and dicts, not deques: an empty deque costs 760 bytes, and thousands of
        # idle sessions each hold these.
        self._order: list[str] = []  # committed, unreleased item ids in commit order
        self._released: dict[str, None] = {}  # the latest turns out, never out twice
        self._outbox: list[str] = []

    def __repr__(self) -> str:
        return (
            f"<RealtimeConnection {self.dialect} {self.state.name} "
            f"waiting_for_server={self.waiting_for_server} "
            f"uncommitted_ms={self.uncommitted_ms:.0f}>"
        )

    # ---------------------------------------------------------------- the phase

    def _step(self, step: Step) -> None:
        try:
            self.state = CLIENT_TRANSITIONS[self.state][step]
        except KeyError:
            raise LocalProtocolError(f"cannot {step.value} in state {self.state.value}") from None

    @property
    def waiting_for_server(self) -> bool:
        """Whether the server owes us something: an answer, a commit or a transcript.

        Only while this is true does silence from the server mean something is wrong (the
        shell's inactivity timeout); a quiet speaker is not a quiet server.
        """
        if self.state in (ClientState.AWAITING_CREATED, ClientState.CONFIGURING):
            return True
        return self.outstanding > 0

    @property
    def outstanding(self) -> int:
        """How many answers and transcripts the server owes us (for messages and logs)."""
        return (
            len(self._pending_updates)
            + len(self._pending_commits)
            + self._pending_clears
            + len(self._vad_stopped)
            + len(self._order)
        )

    @property
    def at_turn_boundary(self) -> bool:
        """Streaming, nothing owed and nobody speaking: moving to another connection now
        splits no turn and waits for none."""
        return (
            self.state is ClientState.STREAMING
            and not self.waiting_for_server
            and not self.speech_active
        )

    def _check_drained(self) -> None:
        if self.state is ClientState.DRAINING and not self.waiting_for_server:
            self._step(Step.DRAINED)
            self._items.clear()  # text for items never committed is never a turn

    def connection_closed(self) -> None:
        """The socket is gone; nothing more will be sent or received."""
        if self.state not in (ClientState.CLOSED, ClientState.FAILED):
            self._step(Step.CONNECTION_CLOSED)

    # ---------------------------------------------------------------- outgoing

    def _next_id(self, prefix: str, kind: str) -> str:
        self._counter += 1
        event_id = f"{prefix}_{self._counter}"
        self._sent[event_id] = kind
        return event_id

    def update_session(
        self, model: str, settings: STTModelSettings, *, wire_model: str | None = None
    ) -> str:
        """The session update for *model* (named *wire_model* on the wire, when given);
        allowed once ``session.created`` has arrived."""
        settings.check_for(model, realtime=True)
        self._step(Step.UPDATE)
        event_id = self._next_id("update", "session.update")
        self._pending_updates.append(event_id)
        self.vad_enabled = effective_turn_detection(model, settings) is not None
        return json.dumps(
            build_session_update(
                model, settings, self.dialect, event_id, self.audio_format, wire_model=wire_model
            ),
            separators=(",", ":"),
        )

    @property
    def uncommitted_ms(self) -> float:
        """Audio appended since the last commit, clear or server-side stop."""
        return max(0.0, self.appended_ms - self._tail_start_ms)

    def append_audio(self, pcm: bytes, *, voiced_until_ms: float | None = None) -> str:
        """``input_audio_buffer.append`` for *pcm* in :attr:`audio_format` (little-endian
        PCM16 mono 24 kHz, or G.711 bytes as they came).

        Built by string concatenation: base64 is JSON-safe, and a ``json.dumps`` of a large
        payload per chunk is measurable at hundreds of streams. *voiced_until_ms* is where,
        from the start of *pcm*, its last voiced audio ends (negative: none); ``None`` means
        unknown, taken as voiced throughout.
        """
        if self.state is not ClientState.STREAMING:
            self._step(Step.SEND_AUDIO)  # raises: only streaming sessions take audio
        audio_format = self.audio_format
        if len(pcm) % audio_format.sample_bytes:
            raise LocalProtocolError(f"PCM16 audio must be an even number of bytes; got {len(pcm)}")
        start = self.appended_ms
        self.appended_ms += len(pcm) / audio_format.bytes_per_ms
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
        self._step(Step.SEND_AUDIO)
        return self._commit_message()

    def clear(self) -> str:
        """``input_audio_buffer.clear``: drop uncommitted audio."""
        self._step(Step.SEND_AUDIO)
        return self._clear_message()

    def _commit_message(self) -> str:
        event_id = self._next_id("commit", "commit")
        self._pending_commits[event_id] = self.uncommitted_ms
        self._tail_start_ms = self.appended_ms
        self.speech_active = False  # a commit takes the speech in the buffer with it
        return f'{{"type":"input_audio_buffer.commit","event_id":"{event_id}"}}'

    def _clear_message(self) -> str:
        event_id = self._next_id("clear", "clear")
        self._tail_start_ms = self.appended_ms
        self._pending_clears += 1
        self.speech_active = False
        return f'{{"type":"input_audio_buffer.clear","event_id":"{event_id}"}}'

    def end_input(self) -> list[str]:
        """The audio has ended: what to send now (possibly nothing).

        Manual mode decides here: commit a tail holding at least 100 ms with speech in it,
        clear a silent one. Under server VAD this sends the barrier instead, and the decision
        waits for its answer (:meth:`take_outgoing` then holds the final commit, if any).
        """
        if self.vad_enabled:
            self._step(Step.END_INPUT_VAD)
            self._barrier = self._next_id("barrier", "session.update")
            self._pending_updates.append(self._barrier)
            return [build_barrier(self.dialect, self._barrier)]
        self._step(Step.END_INPUT)
        out = []
        if self._last_voiced_ms > self._tail_start_ms and self.uncommitted_ms >= MIN_COMMIT_MS:
            out.append(self._commit_message())
        elif self.uncommitted_ms > 0:
            out.append(self._clear_message())
        self._check_drained()
        return out

    def hand_over(self) -> str:
        """The stream moves to another connection: a clear, and nothing more is sent.

        The clear is a fence. Under server VAD the server may commit audio it has not yet
        answered for; every commit it makes comes before the ``cleared``, so once that is
        answered and the turns committed before it are done, this connection owes nothing
        and nothing it held uncommitted can turn up later as a turn. That audio is the new
        connection's to send.
        """
        self._step(Step.HAND_OVER)
        speaking = self.speech_active
        message = self._clear_message()
        self.speech_active = speaking  # what the server's VAD is in, as far as we know
        return message

    def take_outgoing(self) -> list[str]:
        """Messages the protocol itself decided to send since the last call (the final
        commit after the barrier's answer); the shell sends them in order."""
        out, self._outbox = self._outbox, []
        return out

    def barrier_unanswered(self) -> None:
        """The server did not answer the end-of-input barrier in time (compatible servers
        may ignore an empty update). Decide from what it said so far: its last
        ``speech_started`` or ``speech_stopped`` is the best knowledge there is of its VAD,
        and waiting longer would hold the session for a server that may never answer."""
        if self.state is not ClientState.ENDING or self._barrier is None:
            return
        if self._barrier in self._pending_updates:
            self._pending_updates.remove(self._barrier)
        self._sent.pop(self._barrier, None)
        self._vad_settled()
        self._check_drained()

    def _vad_settled(self) -> None:
        """The barrier is answered: the server's VAD has heard every append."""
        self._barrier = None
        if self.speech_active and self.uncommitted_ms >= MIN_COMMIT_MS:
            self._outbox.append(self._commit_message())
        self._step(Step.VAD_SETTLED)

    # ---------------------------------------------------------------- incoming

    def receive(self, message: str | bytes) -> list[RealtimeEvent]:
        """Parse one server message into events, updating the bookkeeping.

        Returns the event the message carried, followed by any :class:`Turn` it finished,
        in commit order.

        Raises:
            RealtimeProtocolError: oversized, binary, not JSON (``NaN`` and ``1e999`` included),
                not an event object, or a server inventing items without end.
            LocalProtocolError: the connection already failed or closed.
        """
        if self.state in (ClientState.FAILED, ClientState.CLOSED):
            raise LocalProtocolError(f"cannot receive in state {self.state.value}")
        if isinstance(message, (bytes, bytearray)):
            raise RealtimeProtocolError(
                "server sent a binary frame; the protocol is JSON text only"
            )
        if len(message) > self.max_message_bytes:
            raise RealtimeProtocolError(
                f"server message of {len(message):,} characters exceeds the "
                f"{self.max_message_bytes:,} limit"
            )
        obj = load_json(message, "server message", RealtimeProtocolError)
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise RealtimeProtocolError(f"server message is not an event object: {message[:80]!r}")
        kind: str = obj["type"]
        handler = _HANDLERS.get(kind)
        if handler is None:
            event_id = obj.get("event_id")
            return [UnknownEvent(kind, obj, event_id=event_id if type(event_id) is str else None)]
        fields = Fields(obj, f"server event {kind!r}", "", RealtimeProtocolError)
        events = [handler(self, fields, fields.optional_text("event_id"))]
        if self._order and self._items[self._order[0]].finished:
            while self._order and self._items[self._order[0]].finished:
                item_id = self._order.pop(0)
                self._released[item_id] = None
                if len(self._released) > MAX_UNCOMMITTED_ITEMS:
                    del self._released[next(iter(self._released))]
                events.append(self._items.pop(item_id).turn())
        self._check_drained()
        return events

    def _take_session(self, f: Fields) -> Mapping[str, Any]:
        session = f.optional_object("session")
        self.session = session.obj if session is not None else {}
        return self.session

    def _on_created(self, f: Fields, event_id: str | None) -> RealtimeEvent:
        session = self._take_session(f)
        if self.state is ClientState.AWAITING_CREATED:
            self._step(Step.CREATED)
        return SessionCreated(session, event_id=event_id)

    def _on_updated(self, f: Fields, event_id: str | None) -> RealtimeEvent:
        session = self._take_session(f)
        answered = self._pending_updates.pop(0) if self._pending_updates else None
        if answered is not None:
            self._sent.pop(answered, None)
        audio = session.get("audio")
        holder = audio.get("input") if isinstance(audio, Mapping) else session
        if isinstance(holder, Mapping) and "turn_detection" in holder:
            # The server's word on VAD beats what we asked for.
            self.vad_enabled = isinstance(holder["turn_detection"], Mapping)
        if self.state is ClientState.CONFIGURING:
            self._step(Step.UPDATED)
        elif answered is not None and answered == self._barrier:
            self._vad_settled()
        return SessionUpdated(session, event_id=event_id)

    def _on_speech_started(self, f: Fields, event_id: str | None) -> RealtimeEvent:
        self.speech_active = True
        return SpeechStarted(f.text("item_id"), f.optional_count("audio_start_ms") or 0,
                             event_id=event_id)  # fmt: skip

    def _on_speech_stopped(self, f: Fields, event_id: str | None) -> RealtimeEvent:
        item_id = f.text("item_id")
        end_ms = f.optional_count("audio_end_ms") or 0
        self.speech_active = False
        if item_id and self.state is not ClientState.DONE:
            self._vad_stopped.add(item_id)  # the server commits it next, by itself
        # The server commits up to end_ms itself; the tail starts there.
        self._tail_start_ms = max(self._tail_start_ms, float(end_ms))
        return SpeechStopped(item_id, end_ms, event_id=event_id)

    def _on_committed(self, f: Fields, event_id: str | None) -> RealtimeEvent:
        item_id = f.text("item_id")
        previous = f.optional_text("previous_item_id")
        if item_id in self._vad_stopped:
            self._vad_stopped.discard(item_id)  # the server's own commit, not an answer to ours
        elif self._pending_commits:
            # The oldest commit that was big enough to succeed; tiny ones fail later.
            match = next(
                (eid for eid, ms in self._pending_commits.items() if ms >= MIN_COMMIT_MS),
                next(iter(self._pending_commits)),
            )
            del self._pending_commits[match]
            self._sent.pop(match, None)
            self._vad_stopped.clear()  # our commit took any speech the VAD was ending
        done = self.state is ClientState.DONE  # late news: reported, owed nothing
        if not done and item_id not in self._order and item_id not in self._released:
            self._item(item_id)
            if previous is not None and previous in self._order:
                self._order.insert(self._order.index(previous) + 1, item_id)
            else:
                self._order.append(item_id)
        return AudioCommitted(item_id, previous, event_id=event_id)

    def _on_cleared(self, f: Fields, event_id: str | None) -> RealtimeEvent:
        if self._pending_clears:
            self._pending_clears -= 1
            oldest = next((eid for eid, kind in self._sent.items() if kind == "clear"), None)
            if oldest is not None:
                del self._sent[oldest]
        return AudioCleared(event_id=event_id)

    def _on_item(self, f: Fields, event_id: str | None) -> RealtimeEvent:
        item = f.optional_object("item")
        item_id = item.optional_text("id") if item is not None else f.optional_text("item_id")
        return ConversationItem(
            f.obj["type"], item_id, f.optional_text("previous_item_id"), event_id=event_id
        )

    def _item(self, item_id: str) -> _Item:
        item = self._items.get(item_id)
        if item is None:
            if item_id in self._released:  # late news of a turn already out: keep it out
                return _Item(item_id)
            if len(self._items) - len(self._order) >= MAX_UNCOMMITTED_ITEMS:
                raise RealtimeProtocolError(
                    f"server sent transcription events for more than {MAX_UNCOMMITTED_ITEMS} "
                    "items it never committed"
                )
            item = self._items[item_id] = _Item(item_id)
        return item

    def _on_delta(self, f: Fields, event_id: str | None) -> RealtimeEvent:
        item_id = f.text("item_id")
        delta = f.optional_text("delta") or ""
        item = self._item(item_id)
        if not item.finished:
            item.text += delta
        return TranscriptionDelta(item_id, delta, item.text, logprobs_from(f), event_id=event_id)

    def _on_completed(self, f: Fields, event_id: str | None) -> RealtimeEvent:
        item_id = f.text("item_id")
        transcript = f.text("transcript")
        usage = usage_from(f)
        item = self._item(item_id)
        item.text, item.finished, item.usage = transcript, True, usage
        return TranscriptionCompleted(
            item_id,
            transcript,
            usage,
            logprobs_from(f),
            languages_from(f),
            event_id=event_id,
        )

    def _on_failed(self, f: Fields, event_id: str | None) -> RealtimeEvent:
        item_id = f.text("item_id")
        error = f.optional_object("error") or Fields({}, f.context, "error", f.error)
        message = self._said(error, "message") or "transcription failed"
        item = self._item(item_id)
        item.text, item.finished, item.failed, item.error = "", True, True, message
        return TranscriptionFailed(
            item_id, self._said(error, "code"), message, self._said(error, "type"),
            event_id=event_id,
        )  # fmt: skip

    def _said(self, error: Fields, key: str) -> str | None:
        """What a server said in an error, with the configured secrets masked: servers
        quote what they were sent, API keys included."""
        text = error.optional_text(key)
        return self._redact(text) if text is not None and self._redact is not None else text

    def _on_error(self, f: Fields, event_id: str | None) -> RealtimeEvent:
        bare = f.obj.get("error")
        if isinstance(bare, str):  # some compatible servers send a bare string
            error = Fields({"message": bare, "code": f.optional_text("code")}, f.context)
        else:
            error = f.optional_object("error") or Fields({}, f.context, "error", f.error)
        code = self._said(error, "code")
        client_event_id = error.optional_text("event_id")
        caused_by = self._sent.pop(client_event_id, None) if client_event_id else None
        rejected_setup = self.state is ClientState.CONFIGURING and (
            client_event_id is None or caused_by == "session.update"
        )
        fatal = code in FATAL_ERROR_CODES or rejected_setup
        if caused_by == "commit":
            self._pending_commits.pop(client_event_id or "", None)
        elif caused_by == "clear":
            self._pending_clears = max(0, self._pending_clears - 1)
        elif caused_by == "session.update" and client_event_id is not None:
            if client_event_id in self._pending_updates:
                self._pending_updates.remove(client_event_id)
            if client_event_id == self._barrier and not fatal:
                self._vad_settled()  # refused, but answered in order all the same
        event = ServerError(
            self._said(error, "message") or "unknown server error",
            code,
            self._said(error, "type"),
            self._said(error, "param"),
            client_event_id,
            fatal,
            "session.update" if rejected_setup else caused_by,
            event_id=event_id,
        )
        if fatal:
            self._step(Step.FATAL)
            self.fatal_error = event
        return event


# One table for every connection (bound methods per connection would be long-lived garbage).
_HANDLERS: dict[str, Callable[[RealtimeConnection, Fields, str | None], RealtimeEvent]] = {
    "input_audio_buffer.speech_started": RealtimeConnection._on_speech_started,
    "input_audio_buffer.speech_stopped": RealtimeConnection._on_speech_stopped,
    "input_audio_buffer.committed": RealtimeConnection._on_committed,
    "input_audio_buffer.cleared": RealtimeConnection._on_cleared,
    "conversation.item.input_audio_transcription.delta": RealtimeConnection._on_delta,
    "conversation.item.input_audio_transcription.completed": RealtimeConnection._on_completed,
    "conversation.item.input_audio_transcription.failed": RealtimeConnection._on_failed,
    "conversation.item.added": RealtimeConnection._on_item,
    "conversation.item.done": RealtimeConnection._on_item,
    "conversation.item.created": RealtimeConnection._on_item,
    "error": RealtimeConnection._on_error,
    **dict.fromkeys(CREATED_TYPES, RealtimeConnection._on_created),
    **dict.fromkeys(UPDATED_TYPES, RealtimeConnection._on_updated),
}
