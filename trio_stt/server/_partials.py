"""Live partial transcripts: text that grows while a turn is still being spoken.

OpenAI's streaming models send ``…transcription.delta`` events during speech; a UI tested
against a server that sends them all at the turn's end never sees its text grow. So while
server VAD hears speech, the server recognizes the turn so far about once a second and sends
the words that have settled.

Deltas cannot be taken back, and a recognizer's hypothesis changes as it hears more: its last
word is often a fragment of the next. So a partial sends only the words before its last one,
and only while they agree with what was sent before. The completion sends the rest; if the
final hypothesis disagrees with what was sent, it sends no more deltas, and the completed
transcript (which clients take as the turn's text) carries the truth.

Partials are best effort: one per turn at a time, and only when a worker is idle, so they
never delay a completion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ._recognizers import RecognizedWord

__all__ = ["PARTIAL_EVERY_MS", "PartialTurn"]

PARTIAL_EVERY_MS = 1000


@dataclass
class PartialTurn:
    """One turn being spoken: the words sent for it so far."""

    item_id: str
    last_ms: int
    """Session time of the audio the latest partial heard up to."""
    running: bool = False
    sent: list[str] = field(default_factory=list)

    def settled(self, words: Sequence[RecognizedWord]) -> list[RecognizedWord]:
        """The words of a partial hypothesis to send now (and count as sent)."""
        stable = list(words[:-1])
        if [w.word for w in stable[: len(self.sent)]] != self.sent:
            return []
        new = stable[len(self.sent) :]
        self.sent += [w.word for w in new]
        return new

    def rest(self, words: Sequence[RecognizedWord]) -> list[RecognizedWord]:
        """The final words still to send: those after the ones sent, if they agree."""
        if [w.word for w in words[: len(self.sent)]] != self.sent:
            return []
        return list(words[len(self.sent) :])
