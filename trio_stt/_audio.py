"""Audio conversions: pure numpy, no I/O library, no trio.

The realtime API takes one format only, 16-bit signed little-endian mono PCM at 24 kHz, and the
commonest client bug in the field is sending something else under that label (float32 bytes,
48 kHz, stereo), which the server accepts and turns into garbage. So every buffer goes through
:func:`validate_samples` first, and every error quotes what it was given and what it takes.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr

from ._errors import AudioFormatError
from ._protocol._pcm import REALTIME_SAMPLE_RATE, frame_rms

__all__ = [
    "REALTIME_SAMPLE_RATE",
    "validate_samples",
    "to_mono_int16",
    "resample_int16",
    "to_pcm16_bytes",
    "write_wav",
    "iter_pcm16_chunks",
    "pcm16_duration_ms",
    "frame_rms",
]


_ACCEPTED = "int16 or float32 samples, shaped (frames,) or (frames, channels)"

AudioArray = npt.NDArray[np.int16] | npt.NDArray[np.float32]


def validate_samples(buffer: object, channels: int = 1) -> AudioArray:
    """Check that *buffer* is audio we know how to send, and return it as an array.

    Accepts int16 or float32 arrays, 1-D (interleaved when ``channels > 1``) or 2-D with one
    column per channel. Raises :class:`AudioFormatError` naming the problem otherwise.
    """
    if not isinstance(buffer, np.ndarray):
        raise AudioFormatError(
            f"audio must be a numpy array of {_ACCEPTED}; got {type(buffer).__name__}"
        )
    if buffer.dtype not in (np.int16, np.float32):
        raise AudioFormatError(
            f"unsupported dtype {buffer.dtype}; expected int16 or float32 "
            "(convert with buffer.astype(np.float32) and scale to [-1, 1])"
        )
    if not isinstance(channels, int) or channels < 1:
        raise AudioFormatError(f"channels must be a positive integer; got {channels!r}")
    if buffer.ndim == 2:
        if buffer.shape[1] != channels:
            raise AudioFormatError(
                f"array of shape {buffer.shape} has {buffer.shape[1]} channel columns, "
                f"but channels={channels}"
            )
    elif buffer.ndim == 1:
        if buffer.size % channels:
            raise AudioFormatError(
                f"{buffer.size} interleaved samples do not divide into {channels} channels"
            )
    else:
        raise AudioFormatError(f"audio array has shape {buffer.shape}; expected {_ACCEPTED}")
    if buffer.size == 0:
        raise AudioFormatError("audio buffer is empty; expected at least one frame")
    if buffer.dtype == np.float32 and not np.isfinite(buffer).all():
        bad = int(np.count_nonzero(~np.isfinite(buffer)))
        raise AudioFormatError(f"float32 audio contains {bad} NaN or infinite samples")
    return buffer


def float_to_int16(samples: npt.NDArray[Any]) -> npt.NDArray[np.int16]:
    """Clip to [-1, 1] and scale by 32767, rounding to nearest."""
    scaled: npt.NDArray[Any] = np.clip(samples, -1.0, 1.0) * np.float32(32767.0)
    return np.asarray(scaled.round(), dtype=np.int16)


def to_mono_int16(buffer: object, channels: int = 1) -> npt.NDArray[np.int16]:
    """Validate, downmix to mono and convert to int16 (float32 is clipped to [-1, 1])."""
    samples = validate_samples(buffer, channels)
    if channels == 1 and samples.ndim == 1 and samples.dtype == np.int16:
        return samples  # type: ignore[return-value]  # int16 mono, as microphones deliver
    frames = samples.reshape(-1, channels)
    if samples.dtype == np.float32:
        mono = frames.mean(axis=1, dtype=np.float32) if channels > 1 else frames[:, 0]
        return float_to_int16(mono)
    if channels == 1:
        return np.asarray(frames[:, 0], dtype=np.int16)
    # Average in a wider type: the sum of int16 channels overflows int16.
    return np.asarray(frames.mean(axis=1).round(), dtype=np.int16)


def resample_int16(
    samples: npt.NDArray[np.int16], from_rate: int, to_rate: int
) -> npt.NDArray[np.int16]:
    """Resample mono int16 audio with soxr (HQ). A no-op when the rates match."""
    if from_rate <= 0 or to_rate <= 0:
        raise AudioFormatError(f"sample rates must be positive; got {from_rate} -> {to_rate}")
    if from_rate == to_rate:
        return samples
    out = soxr.resample(samples, from_rate, to_rate, quality="HQ")
    return np.asarray(out, dtype=np.int16)


def to_pcm16_bytes(
    buffer: object,
    *,
    frame_rate: int = REALTIME_SAMPLE_RATE,
    channels: int = 1,
    target_rate: int = REALTIME_SAMPLE_RATE,
) -> bytes:
    """Any accepted buffer -> little-endian 16-bit mono PCM at *target_rate*."""
    mono = to_mono_int16(buffer, channels)
    resampled = resample_int16(mono, frame_rate, target_rate)
    return resampled.astype("<i2", copy=False).tobytes()


def pcm16_duration_ms(nbytes: int, rate: int = REALTIME_SAMPLE_RATE) -> float:
    """Duration of *nbytes* of mono PCM16 at *rate*, in milliseconds."""
    return nbytes / 2 / rate * 1000.0


def iter_pcm16_chunks(
    pcm: bytes, chunk_ms: float, rate: int = REALTIME_SAMPLE_RATE
) -> Iterator[bytes]:
    """Split mono PCM16 into chunks of *chunk_ms* (the last one may be shorter)."""
    if chunk_ms <= 0:
        raise ValueError(f"chunk_ms must be positive; got {chunk_ms}")
    step = max(2, int(rate * chunk_ms / 1000) * 2)
    for start in range(0, len(pcm), step):
        yield pcm[start : start + step]


def write_wav(samples: npt.NDArray[np.int16], frame_rate: int, channels: int = 1) -> bytes:
    """Encode int16 samples (interleaved or (frames, channels)) as a 16-bit PCM WAV file."""
    data = np.ascontiguousarray(samples, dtype="<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(frame_rate)
        wav.writeframes(data.tobytes())
    return out.getvalue()
