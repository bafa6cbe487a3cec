"""What is uploaded for a file: converted when the API cannot read it, split when too big.

The steps that decode or encode audio are CPU work on whole files, so they run in worker
threads, never in the event loop.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable

import trio

from ._audio_files import DecodedAudio, audio_duration, encode_flac, read_audio
from ._audio_input import AudioInput
from ._errors import AudioFormatError
from ._long_audio import (
    DEFAULT_PIECE_SECONDS,
    PIECE_RATE,
    Piece,
    SplitOptions,
    encode_pieces,
    transcribe_in_pieces,
)
from ._rest import AUDIO_CONTENT_TYPES, MAX_BODY_BYTES, FileLike
from ._results import Transcription
from ._settings import STTModelSettings, capabilities_for

__all__ = ["as_uploadable", "is_too_long", "transcribe_long_file"]

_FORM_ROOM = 64 * 1024  # room in the body for the form fields around the file


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


async def as_uploadable(file: FileLike, filename: str | None) -> tuple[FileLike, str | None]:
    """Audio the API cannot take by its extension (AIFF, Opus, ...) becomes FLAC bytes."""
    if isinstance(file, (str, os.PathLike)):
        filename = filename or os.path.basename(os.fspath(file))
    convertible = isinstance(file, (str, os.PathLike, bytes)) and filename is not None
    if convertible and _extension(filename or "") not in AUDIO_CONTENT_TYPES:
        return await trio.to_thread.run_sync(_converted, file, filename)
    await trio.lowlevel.checkpoint()
    return file, filename


def _converted(source: FileLike, name: str | None) -> tuple[FileLike, str | None]:
    if isinstance(source, AudioInput) or name is None:
        return source, name
    if not isinstance(source, bytes) and not os.path.exists(source):
        return source, name  # the request builder says what is wrong with it
    try:
        decoded = read_audio(source)
    except AudioFormatError:
        return source, name  # ... and so it does for a name it cannot take
    return encode_flac(decoded.mono(), decoded.rate), name.rsplit(".", 1)[0] + ".flac"


def _duration(file: FileLike) -> float | None:
    if isinstance(file, AudioInput):
        return file.duration
    return audio_duration(file)


async def is_too_long(model: str, file: FileLike, split: SplitOptions) -> bool:
    """Longer than *model* takes or *split* allows (read from the header; unknown: no)."""
    caps = [capabilities_for(model).max_seconds, split.max_piece_seconds]
    limit = min((cap for cap in caps if cap is not None), default=None)
    if limit is None:
        await trio.lowlevel.checkpoint()
        return False
    seconds = await trio.to_thread.run_sync(_duration, file)
    return seconds is not None and seconds > limit


def _decode(file: FileLike) -> DecodedAudio:
    if isinstance(file, AudioInput):
        return DecodedAudio(file._int16_frames(), file.frame_rate, file.channels)
    return read_audio(file)


def _cut(file: FileLike, max_seconds: float, max_bytes: int) -> list[Piece]:
    decoded = _decode(file)
    rate = min(decoded.rate, PIECE_RATE)
    return encode_pieces(decoded.mono(rate), rate, max_seconds, max_bytes)


async def transcribe_long_file(
    model: str,
    file: FileLike,
    settings: STTModelSettings,
    split: SplitOptions,
    transcribe: Callable[..., Awaitable[Transcription]],
    response_format: str,
) -> Transcription:
    """Cut *file* into pieces *model* accepts and send each through *transcribe*."""
    cap = capabilities_for(model).max_seconds or math.inf
    max_seconds = min(split.max_piece_seconds or DEFAULT_PIECE_SECONDS, cap * 0.98)
    room = MAX_BODY_BYTES - _FORM_ROOM - len((settings.prompt or "").encode())
    pieces = await trio.to_thread.run_sync(_cut, file, max_seconds, room)

    async def one(piece: Piece) -> Transcription:
        return await transcribe(piece.flac, filename=f"piece-{piece.index + 1}.flac")

    return await transcribe_in_pieces(pieces, one, response_format, split)
