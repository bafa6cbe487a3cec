"""What an upload may cost to decode, judged from its header before a sample is decoded.

A 96 kB WAV whose header says 1 Hz claims 13 hours: resampled to 16 kHz for the recognizer,
that is 1.6 GB from 96 kB. So a file is refused before decoding when its header claims a
duration over the model's cap (OpenAI's 1400 s for the gpt-4o family; the server's
``max_audio_seconds`` for models without one, such as ``whisper-1``), or a rate or channel
count no speech recording has. Decoded samples are then bounded by the duration, the rate
and the channels: the cost of a file follows from what the server agreed to decode.
"""

from __future__ import annotations

import io

import soundfile

__all__ = ["MAX_CHANNELS", "MAX_RATE", "MIN_RATE", "header_refusal", "too_long"]

MIN_RATE = 8_000  # telephone audio; below it there is no speech to recognize
MAX_RATE = 192_000
MAX_CHANNELS = 8


def header_refusal(data: bytes, max_seconds: float) -> str | None:
    """Why the header of *data* rules it out, in the words of OpenAI's refusals; ``None``
    when it may be decoded (or has no header libsndfile reads: the decoder says why)."""
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.SoundFileError, RuntimeError):
        return None
    if not MIN_RATE <= info.samplerate <= MAX_RATE:
        return (
            f"Audio file might be corrupted or unsupported: its header says {info.samplerate} Hz,"
            f" and rates from {MIN_RATE} to {MAX_RATE} Hz are supported"
        )
    if not 1 <= info.channels <= MAX_CHANNELS:
        return (
            f"Audio file might be corrupted or unsupported: its header says {info.channels} "
            f"channels, and 1 to {MAX_CHANNELS} are supported"
        )
    if info.duration > max_seconds:
        return too_long(info.duration, max_seconds)
    return None


def too_long(duration: float, max_seconds: float) -> str:
    """OpenAI's words for audio over a model's cap."""
    return (
        f"audio duration {duration:.2f} seconds is longer than {max_seconds:.0f} "
        "seconds which is the maximum for this model"
    )
