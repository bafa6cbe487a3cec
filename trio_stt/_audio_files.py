"""Audio files in, samples out, through libsndfile (the ``soundfile`` package).

Why libsndfile: it reads every WAV variant (WAVE_FORMAT_EXTENSIBLE as sox writes it, float,
8/24/32-bit, RF64), FLAC, Ogg Vorbis, Ogg Opus and MP3, and writes FLAC, from one wheel of
1.3 MB that bundles the library, with no ffmpeg to install (PyAV's wheel is 36 MB). What it
lacks is the MP4 family (M4A/AAC) and WebM; those are still uploaded as they are, since
OpenAI decodes them, but they cannot be streamed or split here, and the error says so and
names what can.

Decoding is CPU work on a whole file, so the async callers run it in a worker thread.
"""

from __future__ import annotations

import io
import os
import shlex
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import soundfile

from ._audio import float_to_int16, resample_int16, to_mono_int16
from ._errors import AudioFormatError
from ._protocol import AudioFormat, wire_format

__all__ = [
    "DecodedAudio",
    "DECODABLE",
    "read_audio",
    "audio_duration",
    "encode_flac",
    "sniff_extension",
    "G711_EXTENSIONS",
    "g711_format_of",
    "read_g711",
    "encode_g711",
]

DECODABLE = (
    "WAV (any variant), FLAC, Ogg Vorbis, Ogg Opus, MP3, AIFF, CAF, W64, RF64, "
    "headerless G.711 (.ulaw, .alaw)"
)
"""What :func:`read_audio` reads, for error messages and docs."""

AudioSource = str | os.PathLike[str] | bytes


class DecodedAudio(NamedTuple):
    """Samples as ``(frames, channels)`` int16, with their rate and channel count."""

    frames: npt.NDArray[np.int16]
    rate: int
    channels: int

    @property
    def duration(self) -> float:
        return len(self.frames) / self.rate

    def mono(self, rate: int | None = None) -> npt.NDArray[np.int16]:
        """Downmixed to one channel, resampled to *rate* if given."""
        mono = to_mono_int16(self.frames, self.channels)
        return mono if rate is None else resample_int16(mono, self.rate, rate)


def _describe(source: AudioSource) -> str:
    return "audio bytes" if isinstance(source, bytes) else f"file {os.fspath(source)!r}"


def _container(head: bytes) -> str | None:
    """Name the formats people send that libsndfile cannot read, from their first bytes."""
    if head[4:8] == b"ftyp":
        return "MP4/M4A (AAC)"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "WebM/Matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "a compressed WAV codec"
    return None


def _open(source: AudioSource) -> tuple[io.BufferedIOBase | io.BytesIO, bytes]:
    where = _describe(source)
    if isinstance(source, bytes):
        handle: io.BufferedIOBase | io.BytesIO = io.BytesIO(source)
    else:
        try:
            handle = open(source, "rb")  # noqa: SIM115 - closed by the caller
        except OSError as exc:
            raise AudioFormatError(f"cannot open {where}: {exc.strerror}") from exc
    head = handle.read(16)
    handle.seek(0)
    if not head:
        handle.close()
        raise AudioFormatError(f"{where} is empty (0 bytes); expected an audio file")
    return handle, head


def _unreadable(source: AudioSource, head: bytes, exc: Exception) -> AudioFormatError:
    known = _container(head)
    # libsndfile's own words, without soundfile's "Error opening <_io.BufferedReader ...>:"
    reason = str(getattr(exc, "error_string", "") or exc).rstrip(".")
    what = (
        f"is {known}, which this decoder (libsndfile) cannot read"
        if known
        else f"is not an audio format this decoder (libsndfile) reads ({reason})"
    )
    if isinstance(source, bytes):
        convert = "ffmpeg -i INPUT OUTPUT.flac"
    else:
        path = os.fspath(source)
        stem, extension = os.path.splitext(path)
        out = f"{stem}.wav" if extension.lower() == ".flac" else f"{stem}.flac"
        convert = f"ffmpeg -i {shlex.quote(path)} {shlex.quote(out)}"
    return AudioFormatError(
        f"{_describe(source)} {what}; it reads {DECODABLE} (convert it with, for example, "
        f"{convert})"
    )


_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})


def read_audio(source: AudioSource) -> DecodedAudio:
    """Decode a whole audio file (path or bytes) to int16 frames.

    Raises :class:`AudioFormatError` naming the file, the format when it is one we know
    but cannot read, and what can be read.
    """
    handle, head = _open(source)
    with handle:
        law = None if isinstance(source, bytes) else _headerless_g711(source)
        if law is not None:  # no header to tell libsndfile what it is
            g711 = wire_format(law)
            return DecodedAudio(g711.linear(handle.read())[:, None], g711.sample_rate, 1)
        try:
            with soundfile.SoundFile(handle) as sound:
                # libsndfile reads float samples as int16 without scaling them (a float WAV
                # at full level came out as 0 and 1), so floats are read as floats.
                if sound.subtype in _FLOAT_SUBTYPES:
                    data = float_to_int16(sound.read(dtype="float32", always_2d=True))
                else:
                    data = sound.read(dtype="int16", always_2d=True)
                rate = sound.samplerate
        except (soundfile.SoundFileError, RuntimeError) as exc:
            raise _unreadable(source, head, exc) from exc
    frames = np.ascontiguousarray(data, dtype=np.int16)
    if not len(frames):
        raise AudioFormatError(f"{_describe(source)} contains no audio frames")
    return DecodedAudio(frames, int(rate), int(frames.shape[1]))


def audio_duration(source: AudioSource) -> float | None:
    """Seconds of audio from the header alone, or None when the file is not one we read."""
    try:
        handle, _ = _open(source)
    except AudioFormatError:
        return None
    with handle:
        try:
            info = soundfile.info(handle)
        except (soundfile.SoundFileError, RuntimeError):
            return None
    return float(info.duration)


def encode_flac(samples: npt.NDArray[np.int16], rate: int) -> bytes:
    """Mono int16 samples as a 16-bit FLAC file: lossless, about half the size of WAV."""
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="FLAC", subtype="PCM_16")
    return out.getvalue()


_EXTENSION_OF_FORMAT = {
    "WAV": "wav", "WAVEX": "wav", "RF64": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3",
    "AIFF": "aiff", "CAF": "caf", "W64": "w64",
}  # fmt: skip


def sniff_extension(data: bytes) -> str | None:
    """The file extension for audio *data* (from a pipe, say), or None if it is not audio.

    OpenAI trusts the extension of the uploaded file's name, so bytes without a name need
    one that matches what they are.
    """
    if data[4:8] == b"ftyp":
        return "m4a"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.SoundFileError, RuntimeError):
        return None
    return _EXTENSION_OF_FORMAT.get(str(info.format))


# --------------------------------------------------------------------------- G.711

G711_EXTENSIONS: dict[str, AudioFormat] = {
    ".ulaw": "audio/pcmu", ".ul": "audio/pcmu", ".mulaw": "audio/pcmu", ".pcmu": "audio/pcmu",
    ".alaw": "audio/pcma", ".al": "audio/pcma", ".pcma": "audio/pcma",
}  # fmt: skip
"""Headerless G.711 files (as ``sox -t ul`` writes them) by their names: 8 kHz mono."""

_G711_SUBTYPES: dict[AudioFormat, str] = {"audio/pcmu": "ULAW", "audio/pcma": "ALAW"}
_G711_OF_SUBTYPE = {subtype: name for name, subtype in _G711_SUBTYPES.items()}


def _headerless_g711(path: str | os.PathLike[str]) -> AudioFormat | None:
    return G711_EXTENSIONS.get(os.path.splitext(os.fspath(path))[1].lower())


def g711_format_of(path: str | os.PathLike[str]) -> AudioFormat | None:
    """The G.711 law of a file: a headerless one by its extension, a WAV (or AIFF, CAF...)
    by its encoding; ``None`` for anything else, unreadable files included."""
    known = _headerless_g711(path)
    if known is not None:
        return known
    try:
        subtype = soundfile.info(os.fspath(path)).subtype
    except (soundfile.SoundFileError, RuntimeError):
        return None
    return _G711_OF_SUBTYPE.get(str(subtype))


def encode_g711(samples: npt.NDArray[np.int16], law: AudioFormat) -> bytes:
    """8 kHz mono int16 *samples* as the codes of G.711 *law*, by libsndfile's encoder."""
    out = io.BytesIO()
    soundfile.write(out, samples, 8000, format="RAW", subtype=_G711_SUBTYPES[law])
    return out.getvalue()


def read_g711(path: str | os.PathLike[str], law: AudioFormat) -> bytes:
    """The audio of the file at *path* as G.711 *law* codes, 8 kHz mono.

    A headerless file of that law is returned as it is. A G.711 WAV is decoded and encoded
    again, which gives back its codes (the two codes for silence, +0 and -0, become one);
    anything else is decoded, downmixed, brought to 8 kHz and encoded.
    """
    if _headerless_g711(path) == law:
        handle, _ = _open(path)
        with handle:
            return handle.read()
    return encode_g711(read_audio(path).mono(wire_format(law).sample_rate), law)
