"""Turns decided on the client, for models that have no server VAD.

Theory of operation
-------------------
``gpt-live-transcribe`` and ``gpt-realtime-whisper`` refuse ``turn_detection``: the client
must commit each turn, or a whole conversation is one turn. With :class:`ClientVAD` the
session does it. A :class:`TurnGate` sits in the session's one sending task, between the
input and the socket, and sees every byte once, as it is sent; it keeps no copy of the
stream, only the last ``prefix_padding_ms`` while nobody speaks.

* **Nobody speaking**: audio goes into that short ring, not to the server. Silence is never
  sent, so it is never committed (no "Thank you." from a quiet room) and never billed.
* **Speech starts** (the detector scores at least ``threshold`` for ``min_speech_ms``): the
  ring goes out first, so the turn begins ``prefix_padding_ms`` before the speech did and
  the first word keeps its onset; then the audio goes out as it comes.
* **Speech stops** (``silence_duration_ms`` under the threshold, less a little hysteresis,
  as Silero's own iterator does): the session commits. A turn longer than ``max_turn_ms``
  is committed at its next quiet frame, so a monologue still gets transcripts.

The gate answers in the order things happen, as a list per piece of audio: bytes to send,
:class:`SpeechStarted` and :class:`SpeechStopped` events (the server VAD's own types, with
the client's times from the start of the input and an empty ``item_id``, which the server
assigns at commit) and :data:`COMMIT`. It is sans-I/O: it owns no task and no clock, and
what it decides survives a reconnect or a rotation, since the session holds it.
"""

from __future__ import annotations

import enum

from ._protocol import SpeechStarted, SpeechStopped, WireFormat
from ._settings import ClientVAD
from ._speech_detectors import SpeechDetector, make_detector

__all__ = ["TurnGate", "COMMIT", "GateAction"]


class _Commit(enum.Enum):
    COMMIT = "commit"


COMMIT = _Commit.COMMIT
"""The gate's word for: commit the turn sent so far."""

GateAction = bytes | SpeechStarted | SpeechStopped | _Commit

_HYSTERESIS = 0.15  # speech goes on until the score falls this far under the threshold
_MAX_TURN_GRACE_MS = 2000  # past max_turn_ms, how long to wait for a quiet frame to cut at


class TurnGate:
    """Decides what of the input is sent, and where turns end (see the module docstring)."""

    __slots__ = (
        "_bytes_per_ms",
        "_detector",
        "_frame_bytes",
        "_frame_ms",
        "_frames",
        "_quiet_below",
        "_ring",
        "_ring_bytes",
        "_routed",
        "_run_ms",
        "_sample_bytes",
        "_threshold",
        "_turn_began_ms",
        "_vad",
        "_wire",
        "speaking",
    )  # fmt: skip

    def __init__(
        self, vad: ClientVAD, wire: WireFormat, detector: SpeechDetector | None = None
    ) -> None:
        self._vad = vad
        self._wire = wire
        self._detector = detector or make_detector(vad.detector, wire.sample_rate)
        self._frame_ms = self._detector.frame_ms
        self._bytes_per_ms = wire.bytes_per_ms
        self._sample_bytes = wire.sample_bytes
        self._frame_bytes = self._frame_ms * wire.bytes_per_ms
        self._threshold = vad.threshold
        self._quiet_below = max(0.01, vad.threshold - _HYSTERESIS)
        ring_ms = vad.prefix_padding_ms + max(vad.min_speech_ms, self._frame_ms) + self._frame_ms
        self._ring_bytes = ring_ms * wire.bytes_per_ms
        self._ring = bytearray()  # the latest audio while nobody speaks
        self._routed = 0  # bytes of the input sent or put in the ring
        self._frames = 0  # frames the detector has scored
        self._run_ms = 0  # how long the current speech (idle) or quiet (speaking) has lasted
        self._turn_began_ms = 0
        self.speaking = False

    def __repr__(self) -> str:
        state = "speaking" if self.speaking else "idle"
        return f"<TurnGate {type(self._detector).__name__} {state} at {self.now_ms} ms>"

    def load(self) -> None:
        """Load the detector's model, if it has one (blocking: call it in a worker thread)."""
        load = getattr(self._detector, "load", None)
        if load is not None:
            load()

    def close(self) -> None:
        """The session is over: the detector may lend its model to another."""
        close = getattr(self._detector, "close", None)
        if close is not None:
            close()

    @property
    def now_ms(self) -> int:
        """The end of the audio the detector has scored, in ms from the input's start."""
        return self._frames * self._frame_ms

    def feed(self, data: bytes) -> list[GateAction]:
        """What to do with *data*, the next audio of the input, in order."""
        actions: list[GateAction] = []
        start = self._routed  # where data begins in the input
        sent = 0  # how much of data is routed
        for p in self._detector.probabilities(self._wire.linear(data)):
            self._frames += 1
            change = self._step(p)
            if change is None:
                continue
            end = min(len(data), max(sent, self._frames * self._frame_bytes - start))
            self._route(data[sent:end], actions)
            sent = end
            self._act(change, actions)
        self._route(data[sent:], actions)
        if not self.speaking:
            self._trim_ring()
        return actions

    def end_turn(self) -> SpeechStopped | None:
        """The turn ends now (your commit or clear, or the end of input): the event that
        says so if one was in progress; either way the next speech starts a new one."""
        self._ring.clear()
        self._run_ms = 0
        if not self.speaking:
            return None
        self.speaking = False
        return SpeechStopped("", self._routed // self._bytes_per_ms)

    # ------------------------------------------------------------------ the decisions

    def _step(self, p: float) -> str | None:
        """One frame scored *p*: ``"start"``, ``"stop"``, ``"split"`` or no change."""
        vad, frame = self._vad, self._frame_ms
        if not self.speaking:
            self._run_ms = self._run_ms + frame if p >= self._threshold else 0
            return "start" if self._run_ms >= max(vad.min_speech_ms, frame) else None
        quiet = p < self._quiet_below
        self._run_ms = self._run_ms + frame if quiet else 0
        if self._run_ms >= vad.silence_duration_ms:
            return "stop"
        length = self.now_ms - self._turn_began_ms
        if length >= vad.max_turn_ms + _MAX_TURN_GRACE_MS or (quiet and length >= vad.max_turn_ms):
            return "split"
        return None

    def _act(self, change: str, actions: list[GateAction]) -> None:
        now = self.now_ms
        if change == "start":
            ring_began = (self._routed - len(self._ring)) // self._bytes_per_ms
            began = max(ring_began, now - self._run_ms - self._vad.prefix_padding_ms)
            keep = (now - began) * self._bytes_per_ms
            keep = min(len(self._ring), keep - keep % self._sample_bytes)
            self.speaking, self._run_ms, self._turn_began_ms = True, 0, began
            actions.append(SpeechStarted("", began))
            if keep:
                actions.append(bytes(self._ring[len(self._ring) - keep :]))
            self._ring.clear()
        elif change == "stop":
            self.speaking, self._run_ms = False, 0
            actions += (SpeechStopped("", now), COMMIT)
        else:  # split: a long turn ends here and the next begins at once
            self._turn_began_ms = now
            actions += (SpeechStopped("", now), COMMIT, SpeechStarted("", now))

    def _route(self, piece: bytes, actions: list[GateAction]) -> None:
        if not piece:
            return
        self._routed += len(piece)
        if not self.speaking:
            self._ring += piece
        elif actions and isinstance(actions[-1], bytes):
            actions[-1] += piece
        else:
            actions.append(piece)

    def _trim_ring(self) -> None:
        excess = len(self._ring) - self._ring_bytes
        if excess > 0:
            excess += -excess % self._sample_bytes
            del self._ring[:excess]
