"""Files past the request limits: cut at silences, transcribed concurrently, stitched.

OpenAI refuses a body over 25 MB and the gpt-4o models refuse more than 1400 s of audio, so
a long recording has to go in pieces. Where it is cut matters: a cut inside a word loses the
word on both sides, so each cut goes at the quietest stretch shortly before the piece's
length runs out. Pieces are 16 kHz mono FLAC (what the recognizers hear anyway, losslessly,
at a third of a 24 kHz WAV), sent a few at a time under a :class:`trio.CapacityLimiter`,
and put back together on the original timeline: text in order, segment and word times
shifted by the piece's start, usage summed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import trio

from ._audio import frame_rms
from ._audio_files import encode_flac
from ._errors import STTError, UploadTooLargeError
from ._results import (
    DurationUsage,
    TokenUsage,
    Transcription,
    TranscriptionSegment,
    TranscriptionWord,
    Usage,
)
from ._subtitles import SUBTITLE_FORMATS, render_subtitles
from ._supervise import open_supervised_nursery

__all__ = [
    "SplitOptions",
    "SplitProgress",
    "PieceError",
    "Piece",
    "plan_pieces",
    "stitch",
    "transcribe_in_pieces",
    "PIECE_RATE",
]

PIECE_RATE = 16_000
"""Pieces are resampled to this rate (never up): what speech recognizers work at."""

DEFAULT_PIECE_SECONDS = 600.0
"""Pieces of a file that has to be split, unless :class:`SplitOptions` says otherwise."""

_FRAME_S = 0.01  # loudness is measured per 10 ms
_QUIET_WINDOW_S = 0.3  # ... and averaged over 300 ms, so a pause beats a gap between syllables


@dataclass(frozen=True)
class SplitProgress:
    """How far a split transcription has got: pieces and seconds of audio done."""

    pieces_done: int
    pieces: int
    seconds_done: float
    seconds: float


@dataclass(frozen=True)
class SplitOptions:
    """How :meth:`OpenAISTTModel.transcribe_file` handles audio past the request limits.

    Attributes:
        enabled: split at all; when off, a file over a limit raises
            :class:`UploadTooLargeError` (or the server refuses it as too long).
        max_piece_seconds: ``None`` splits only a file over the limits, into pieces of
            up to 10 minutes. A number splits every file longer than that, into pieces no
            longer: shorter pieces finish sooner side by side, longer ones give the model
            more context. Never more than the model accepts.
        limiter: bounds how many pieces are in flight. Pass one limiter to several calls
            to bound them together; by default each call sends up to 4 at once.
        on_progress: called when the plan is made and after each piece.
    """

    enabled: bool = True
    max_piece_seconds: float | None = None
    limiter: trio.CapacityLimiter | None = None
    on_progress: Callable[[SplitProgress], None] | None = None


class PieceError(STTError):
    """A piece of a split file failed after its retries; ``__cause__`` says why."""

    def __init__(self, index: int, count: int, start: float, end: float, cause: Exception):
        super().__init__(
            f"piece {index + 1} of {count} ({_clock(start)}-{_clock(end)}) failed: {cause}"
        )
        self.index = index
        self.start = start
        self.end = end


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}:{secs:04.1f}"


@dataclass(frozen=True)
class Piece:
    """One stretch of the original, as the file that is sent."""

    index: int
    start: float
    end: float
    flac: bytes = b""


def _quietest_cut(loudness: npt.NDArray[np.float64], lo: int, hi: int) -> int:
    """The frame in ``[lo, hi)`` at the middle of the quietest window."""
    window = max(1, round(_QUIET_WINDOW_S / _FRAME_S))
    span = loudness[lo:hi]
    if len(span) <= window:
        return hi
    sums = np.convolve(span, np.ones(window), mode="valid")
    # Ties (digital silence) go to the latest, so pieces stay as long as allowed.
    best = len(sums) - 1 - int(np.argmin(sums[::-1]))
    return lo + best + window // 2


def plan_pieces(
    samples: npt.NDArray[np.int16], rate: int, max_seconds: float
) -> list[tuple[int, int]]:
    """``(start, end)`` sample ranges no longer than *max_seconds*, cut at quiet points.

    Each cut is searched for in the last fifth of the allowed length (at most 60 s), so a
    piece is never shorter than four fifths of it unless the audio ends.
    """
    if max_seconds <= 1:
        raise ValueError(f"max_piece_seconds must be more than 1 s; got {max_seconds}")
    frame = max(1, round(rate * _FRAME_S))
    loudness = frame_rms(samples, frame).astype(np.float64)
    max_frames = int(max_seconds / _FRAME_S)
    search = max(1, min(int(60 / _FRAME_S), max_frames // 5))
    ranges: list[tuple[int, int]] = []
    start = 0  # in frames
    total = len(samples)
    while total - start * frame > max_frames * frame:
        cut = _quietest_cut(loudness, start + max_frames - search, start + max_frames)
        ranges.append((start * frame, cut * frame))
        start = cut
    ranges.append((start * frame, total))
    return ranges


def encode_pieces(
    samples: npt.NDArray[np.int16], rate: int, max_seconds: float, max_bytes: int
) -> list[Piece]:
    """Cut and encode; a piece whose FLAC is still over *max_bytes* is cut again, shorter."""
    pieces: list[Piece] = []
    pending = list(plan_pieces(samples, rate, max_seconds))
    while pending:
        begin, end = pending.pop(0)
        flac = encode_flac(samples[begin:end], rate)
        if len(flac) > max_bytes:
            if end - begin < rate * 2:
                raise UploadTooLargeError(len(flac), max_bytes)
            halves = plan_pieces(samples[begin:end], rate, (end - begin) / rate / 2 + 1)
            pending[:0] = [(begin + a, begin + b) for a, b in halves]
            continue
        pieces.append(Piece(len(pieces), begin / rate, end / rate, flac))
    return pieces


def _sum_usage(usages: Sequence[Usage | None]) -> Usage | None:
    if not usages or any(u is None for u in usages):
        return None
    if all(isinstance(u, DurationUsage) for u in usages):
        return DurationUsage(sum(u.seconds for u in usages if isinstance(u, DurationUsage)))
    tokens = [u for u in usages if isinstance(u, TokenUsage)]
    if len(tokens) != len(usages):
        return None

    def total(name: str) -> int | None:
        values = [getattr(u, name) for u in tokens]
        return None if any(v is None for v in values) else sum(values)

    return TokenUsage(
        input_tokens=sum(u.input_tokens for u in tokens),
        output_tokens=sum(u.output_tokens for u in tokens),
        total_tokens=sum(u.total_tokens for u in tokens),
        audio_tokens=total("audio_tokens"),
        text_tokens=total("text_tokens"),
    )


def stitch(
    results: Sequence[Transcription], pieces: Sequence[Piece], response_format: str
) -> Transcription:
    """One transcription of the whole file from its pieces' results, in order."""
    segments: list[TranscriptionSegment] = []
    words: list[TranscriptionWord] = []
    for result, piece in zip(results, pieces, strict=True):
        for seg in result.segments:
            segments.append(
                replace(
                    seg,
                    start=seg.start + piece.start,
                    end=seg.end + piece.start,
                    id=len(segments) if isinstance(seg.id, int) or seg.id is None else seg.id,
                )
            )
        words += [
            replace(w, start=w.start + piece.start, end=w.end + piece.start) for w in result.words
        ]
    texts = (r.text.strip() for r in results)
    text = " ".join(t for t in texts if t)
    languages = tuple(dict.fromkeys(code for r in results for code in r.languages))
    stitched = Transcription(
        text=text,
        response_format=response_format,
        language=next((r.language for r in results if r.language), None),
        languages=languages,
        duration=pieces[-1].end if pieces else None,
        segments=tuple(segments),
        words=tuple(words),
        logprobs=tuple(lp for r in results for lp in r.logprobs),
        usage=_sum_usage([r.usage for r in results]),
    )
    if response_format in SUBTITLE_FORMATS:
        subtitles = render_subtitles(stitched.segments, response_format)
        return replace(stitched, text=subtitles.strip(), raw=subtitles)
    if response_format == "text":
        return replace(stitched, raw=text + "\n")
    return replace(stitched, raw=json.dumps(stitched.to_dict()))


TranscribePiece = Callable[[Piece], Awaitable[Transcription]]


async def transcribe_in_pieces(
    pieces: Sequence[Piece],
    transcribe_piece: TranscribePiece,
    response_format: str,
    options: SplitOptions,
) -> Transcription:
    """Send *pieces* concurrently (bounded by the options' limiter) and stitch the answers.

    The first piece to fail cancels the rest, and leaves as a :class:`PieceError`.
    """
    limiter = options.limiter or trio.CapacityLimiter(4)
    results: list[Transcription | None] = [None] * len(pieces)
    total = pieces[-1].end
    done = 0.0

    def report() -> None:
        if options.on_progress is not None:
            count = sum(r is not None for r in results)
            options.on_progress(SplitProgress(count, len(pieces), done, total))

    async def run(piece: Piece) -> None:
        nonlocal done
        async with limiter:
            try:
                results[piece.index] = await transcribe_piece(piece)
            except Exception as exc:
                raise PieceError(piece.index, len(pieces), piece.start, piece.end, exc) from exc
        done += piece.end - piece.start
        report()

    report()
    async with open_supervised_nursery(_first_piece_error) as nursery:
        for piece in pieces:
            nursery.start_soon(run, piece)
    return stitch([r for r in results if r is not None], pieces, response_format)


def _first_piece_error(failures: Sequence[BaseException]) -> BaseException:
    for failure in failures:
        if not isinstance(failure, Exception):
            return failure  # KeyboardInterrupt and friends leave as they are
    return min(failures, key=lambda f: f.index if isinstance(f, PieceError) else -1)
