"""Audio conversions: pure numpy, no I/O library, no trio.

The realtime API takes one format only, 16-bit signed little-endian mono PCM at 24 kHz, and the
commonest client bug in the field is sending something else under that label (float32 bytes,
48 kHz, stereo), which the server accepts and turns into garbage. So every buffer goes through
:func:`validate_samples` first, and every error quotes what it was given and what it takes.
"""

from __future__ import annotations

import base64
import io
import os
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr

from ._errors import AudioFormatError

__all__ = [
    "REALTIME_SAMPLE_RATE",
    "AudioInput",
    "validate_samples",
    "to_mono_int16",
    "resample_int16",
    "to_pcm16_bytes",
    "write_wav",
    "iter_pcm16_chunks",
    "pcm16_duration_ms",
    "frame_rms",
]

REALTIME_SAMPLE_RATE = 24_000
"""The only PCM rate OpenAI's realtime API accepts (protocol.md §1.7)."""

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


def frame_rms(samples: npt.NDArray[np.int16], frame: int = 240) -> npt.NDArray[np.float32]:
    """RMS of each whole *frame*-sample frame (240 = 10 ms at 24 kHz); a partial tail is ignored."""
    usable = samples[: samples.size - samples.size % frame].astype(np.float32).reshape(-1, frame)
    rms: npt.NDArray[np.float32] = np.sqrt(np.mean(usable * usable, axis=1))
    return rms


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


@dataclass(eq=False)
class AudioInput:
    """A finished recording, for file transcription (the Agents SDK's ``AudioInput``).

    ``buffer`` holds int16 or float32 samples; ``frame_rate`` is their rate. It is validated
    on construction, so a bad buffer fails here rather than at upload time.
    """

    buffer: AudioArray = field(repr=False)
    frame_rate: int = REALTIME_SAMPLE_RATE
    sample_width: int = 2
    channels: int = 1

    def __post_init__(self) -> None:
        self.buffer = validate_samples(self.buffer, self.channels)
        if self.sample_width != 2:
            raise AudioFormatError(
                f"sample_width={self.sample_width} is not supported; uploads are 16-bit (2)"
            )
        if self.frame_rate <= 0:
            raise AudioFormatError(f"frame_rate must be positive; got {self.frame_rate}")

    def __repr__(self) -> str:
        frames = (
            self.buffer.shape[0] if self.buffer.ndim == 2 else self.buffer.size // self.channels
        )
        return (
            f"AudioInput({frames} frames, {self.buffer.dtype}, {self.frame_rate} Hz, "
            f"{self.channels} ch)"
        )

    @classmethod
    def from_file(cls, source: str | os.PathLike[str] | bytes) -> AudioInput:
        """Decode an audio file (path or bytes; WAV, FLAC, Ogg, MP3, ...) into a recording."""
        from ._audio_files import read_audio  # libsndfile, loaded only when a file is read

        decoded = read_audio(source)
        return cls(decoded.frames, frame_rate=decoded.rate, channels=decoded.channels)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.buffer.size / self.channels / self.frame_rate

    def _int16_frames(self) -> npt.NDArray[np.int16]:
        frames = self.buffer.reshape(-1, self.channels)
        if frames.dtype == np.float32:
            return float_to_int16(frames)
        return np.asarray(frames, dtype=np.int16)

    def to_wav_bytes(self) -> bytes:
        """The recording as a 16-bit PCM WAV file, at its own rate and channel count."""
        return write_wav(self._int16_frames(), self.frame_rate, self.channels)

    def to_audio_file(self) -> tuple[str, io.BytesIO, str]:
        """``(filename, file object, content type)``, ready for a multipart upload."""
        return ("audio.wav", io.BytesIO(self.to_wav_bytes()), "audio/wav")

    def to_base64(self) -> str:
        """Base64 of the interleaved little-endian int16 samples (the reference's span input)."""
        return base64.b64encode(self._int16_frames().astype("<i2").tobytes()).decode("ascii")
