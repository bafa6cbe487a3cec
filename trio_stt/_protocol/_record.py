"""What a live session knows that outlives any one of its connections, sans I/O.

A session may run over several connections: one lost and replaced (a reconnect), one left
before the server's time limit (a rotation). Each connection has a
:class:`RealtimeConnection` of its own, which is forgotten with it. What must survive from
one connection to the next is here, where it can be tested without a socket:

* the **record** of every append, commit and clear, kept until the turn it belongs to has
  come back (:class:`~trio_stt._protocol._replay.ReplayLedger`), and each connection's
  view of where its audio came from (:class:`~trio_stt._protocol._replay.LegMap`);
* the **replay plan**: the messages that send a new connection what the old one had not
  finished with, cut into appends no larger than the session would send;
* **end of input**, which a connection lost after it must not forget;
* **expiry**: when to leave a connection the server will end at a known time.

The turn boundary (nothing owed, nobody speaking) is a fact about one connection, so it is
the core's (:attr:`RealtimeConnection.at_turn_boundary`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from .._settings import STTModelSettings
from ._connection import RealtimeConnection
from ._events import AudioCommitted, RealtimeEvent, SpeechStarted, SpeechStopped, Turn
from ._replay import LegMap, Replay, ReplayLedger
from ._wire import PCM, WireFormat

__all__ = ["StreamRecord", "rotation_times", "seconds_left", "vad_margin_ms"]


def vad_margin_ms(settings: STTModelSettings) -> int:
    """How much of the quiet that ended a server-VAD turn to send again on a new connection:
    the prefix padding the next turn's speech starts with, never reaching back into speech."""
    detection = settings.turn_detection
    if not isinstance(detection, Mapping) or detection.get("type") != "server_vad":
        return 0
    prefix = detection.get("prefix_padding_ms", 300)
    silence = detection.get("silence_duration_ms", 500)
    if not isinstance(prefix, int) or not isinstance(silence, int):
        return 0
    return max(0, min(prefix, silence - 100))


def seconds_left(session: Mapping[str, object], wall_now: float) -> float | None:
    """Seconds until the server ends the session it described (``expires_at``, epoch
    seconds, against the wall clock *wall_now*), or ``None`` if it did not say or it passed."""
    expires_at = session.get("expires_at")
    if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
        return None
    remaining = float(expires_at) - wall_now
    return remaining if 0 < remaining < math.inf else None


def rotation_times(
    now: float, expires_in: float, open_before: float, switch_before: float
) -> tuple[float, float]:
    """When to open the next connection, and when to switch to it at the latest, for one
    that ends *expires_in* seconds after *now*.

    A connection shorter than twice *open_before* is left halfway through its life, so that
    a server announcing short sessions cannot make a session rotate in a loop.
    """
    expires = now + expires_in
    lead = min(open_before, expires_in / 2)
    return expires - lead, expires - min(switch_before, lead / 2)


class StreamRecord:
    """The session's stream as its connections were sent it (see the module docstring).

    Args:
        replay_bytes: how much audio to keep for sending again (the bound on memory).
        vad_margin_ms: see :func:`vad_margin_ms`.
        audio_format: what the stream's bytes are.
    """

    __slots__ = ("audio_format", "input_ended", "ledger", "legs")

    def __init__(
        self, replay_bytes: int, vad_margin_ms: int = 0, audio_format: WireFormat = PCM
    ) -> None:
        self.audio_format = audio_format
        self.ledger = ReplayLedger(replay_bytes)
        self.legs = LegMap(vad_margin_ms, audio_format.bytes_per_ms)
        self.input_ended = False

    def __repr__(self) -> str:
        return f"<StreamRecord {self.ledger!r} input_ended={self.input_ended}>"

    # ------------------------------------------------------------ what was sent

    def begin_connection(self) -> None:
        """A new connection: nothing has been sent on it yet."""
        self.legs.begin()

    def appending(self, pcm: bytes, voiced: bool) -> None:
        """*pcm* is about to be sent on the connection in use."""
        self.legs.audio_sent(self.ledger.end, len(pcm))
        self.ledger.add(pcm, voiced)

    def committing(self) -> None:
        self.legs.commit_sent(self.ledger.commit())

    def clearing(self) -> None:
        self.ledger.clear()

    # ------------------------------------------------------------ what came back

    def heard(self, event: RealtimeEvent, core: RealtimeConnection) -> None:
        """Let go of audio no turn needs any more, as the server's events say so."""
        kind = type(event)
        if kind is SpeechStarted:
            if not core.outstanding:  # no turn needs the quiet before this speech
                start = self.legs.vad_started(event.audio_start_ms)  # type: ignore[attr-defined]
                self.ledger.finished_through(start)
        elif kind is SpeechStopped:
            self.legs.vad_stopped(event.item_id, event.audio_end_ms)  # type: ignore[attr-defined]
        elif kind is AudioCommitted:
            self.legs.committed(event.item_id)  # type: ignore[attr-defined]
        elif kind is Turn:
            end = self.legs.finished(event.item_id)  # type: ignore[attr-defined]
            if end is not None:
                self.ledger.finished_through(end)

    def handed_over(self, core: RealtimeConnection) -> None:
        """The old connection finished its own turns and dropped the rest: the next one
        needs only that. Under server VAD, if no speech had started, what it dropped was
        quiet it heard: keep only its last stretch, the prefix padding of a next turn."""
        if core.vad_enabled and not core.speech_active:
            self.ledger.finished_through(self.ledger.end - self.legs.vad_margin)

    # ------------------------------------------------------------ the replay

    def take_replay(self) -> Replay:
        """What the next connection must be sent (see :meth:`ReplayLedger.take_replay`)."""
        return self.ledger.take_replay()

    def replay_messages(
        self, replay: Replay, core: RealtimeConnection, largest: int
    ) -> Iterator[str]:
        """The messages that send *replay* on the connection of *core*, in order: appends
        of at most *largest* bytes, and the commits at their places."""
        audio_format = self.audio_format
        largest -= largest % audio_format.sample_bytes
        for part, start in zip(replay.parts, replay.starts, strict=True):
            if part is None:
                self.legs.commit_sent(start)
                yield core.commit()
                continue
            for begin in range(0, len(part), largest):
                piece = part[begin : begin + largest]
                self.legs.audio_sent(start + begin, len(piece))
                voiced = audio_format.voiced_until_ms(piece)
                yield core.append_audio(piece, voiced_until_ms=voiced)
