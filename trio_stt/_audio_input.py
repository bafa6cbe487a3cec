"""``AudioInput``: a finished recording, for file transcription.

It sits above both the sample conversions (``_audio.py``) and the file decoders
(``_audio_files.py``), so that neither has to import the other.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ._audio import REALTIME_SAMPLE_RATE, AudioArray, float_to_int16, validate_samples, write_wav
from ._audio_files import read_audio
from ._errors import AudioFormatError

__all__ = ["AudioInput"]


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
