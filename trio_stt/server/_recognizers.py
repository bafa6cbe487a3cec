"""Recognizers: what turns audio into text behind the local server.

A recognizer is a plain synchronous object. The server decides where it runs
(``_workers.py``): recognizers that do real work (``blocking = True``) run in worker
processes when they say how to rebuild themselves there (a ``recipe``), else in a thread;
cheap ones (the scripted recognizer) run inline, which keeps tests deterministic under
trio's mock clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["Recognition", "Recognizer", "ScriptedRecognizer", "RecognizedWord"]


@dataclass(frozen=True)
class RecognizedWord:
    """One word with its timing in seconds from the start of the audio, and its log-probability."""

    word: str
    start: float
    end: float
    logprob: float = 0.0


@dataclass(frozen=True)
class Recognition:
    """What a recognizer heard in one piece of audio."""

    text: str
    words: tuple[RecognizedWord, ...] = ()
    language: str = "en"
    duration: float = 0.0

    @classmethod
    def evenly_timed(cls, text: str, duration: float) -> Recognition:
        """Spread the words of *text* evenly over *duration* (for scripted transcripts)."""
        words = text.split()
        step = duration / max(len(words), 1)
        return cls(
            text=text,
            words=tuple(
                RecognizedWord(w, round(i * step, 3), round((i + 1) * step, 3))
                for i, w in enumerate(words)
            ),
            duration=duration,
        )


@runtime_checkable
class Recognizer(Protocol):
    """Turns mono int16 samples at ``sample_rate`` into a :class:`Recognition`."""

    blocking: bool
    """True when :meth:`recognize` is slow enough to need a worker (process or thread)."""

    def recognize(self, samples: npt.NDArray[np.int16], sample_rate: int) -> Recognition: ...


@dataclass
class ScriptedRecognizer:
    """Answers with scripted transcripts, in order, whatever the audio says.

    ``transcripts`` are used one per recognition; when they run out the last one repeats
    (or ``default`` is used if given). Pass ``fn`` instead to compute the answer from the
    audio. ``calls`` records how much audio each call received, for assertions.
    """

    transcripts: Sequence[str] = ("hello world",)
    default: str | None = None
    fn: Callable[[npt.NDArray[np.int16], int], str] | None = None
    blocking: bool = False
    calls: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        source: Iterable[str] = self.transcripts
        if self.default is not None:
            source = itertools.chain(source, itertools.repeat(self.default))
        elif self.transcripts:
            source = itertools.chain(source, itertools.repeat(self.transcripts[-1]))
        self._next = iter(source)

    def recognize(self, samples: npt.NDArray[np.int16], sample_rate: int) -> Recognition:
        duration = len(samples) / sample_rate if sample_rate else 0.0
        self.calls.append(duration)
        text = self.fn(samples, sample_rate) if self.fn else next(self._next, "")
        return Recognition.evenly_timed(text, duration)
