"""An energy-based voice activity detector that behaves like OpenAI's ``server_vad``.

It honours the same knobs: ``threshold`` (0..1, mapped to an RMS level between -60 and
-10 dBFS, so 0.5 is -35 dBFS), ``prefix_padding_ms`` (audio kept before the detected start)
and ``silence_duration_ms`` (how long a pause ends a turn). Times are session milliseconds,
like ``audio_start_ms`` / ``audio_end_ms`` on the wire. Pure numpy: the endpoint feeds it and
acts on what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._audio import frame_rms

__all__ = ["EnergyVAD", "VADEvent", "voiced_spans"]

FRAME_MS = 10
SAMPLES_PER_FRAME = 240  # 10 ms at 24 kHz


@dataclass(frozen=True)
class VADEvent:
    kind: str  # "start" or "stop"
    ms: int


class EnergyVAD:
    """Feed 24 kHz int16 audio; get speech start and stop times."""

    def __init__(
        self, turn_detection: Mapping[str, Any] | None = None, *, end_after_silence: bool = True
    ) -> None:
        td = turn_detection or {}
        threshold = _number(td, "threshold", 0.5)
        if td.get("type") == "semantic_vad":  # eagerness has no energy analogue; defaults
            threshold = 0.5
        self.level = 32768.0 * 10 ** ((-60.0 + 50.0 * min(max(threshold, 0.0), 1.0)) / 20.0)
        self.prefix_ms = int(_number(td, "prefix_padding_ms", 300))
        self.silence_ms = int(_number(td, "silence_duration_ms", 500)) or 500
        # OpenAI's audio_end_ms is when the silence ran out; the lenient server's, the speech.
        self.end_after_silence = end_after_silence
        self.min_speech_ms = 60
        self._pending = np.zeros(0, np.int16)
        self._now_ms = 0
        self.speaking = False
        self._voiced_run = 0
        self._silence_run = 0
        self._last_voice_end = 0

    def feed(self, samples: np.ndarray) -> list[VADEvent]:
        data = np.concatenate([self._pending, samples]) if self._pending.size else samples
        whole = len(data) - len(data) % SAMPLES_PER_FRAME
        self._pending = data[whole:].copy()
        events: list[VADEvent] = []
        if whole == 0:
            return events
        for loud in frame_rms(data[:whole], SAMPLES_PER_FRAME) > self.level:
            self._now_ms += FRAME_MS
            if loud:
                self._voiced_run += FRAME_MS
                self._silence_run = 0
                self._last_voice_end = self._now_ms
                if not self.speaking and self._voiced_run >= self.min_speech_ms:
                    self.speaking = True
                    start = self._now_ms - self._voiced_run
                    events.append(VADEvent("start", max(0, start - self.prefix_ms)))
            else:
                self._voiced_run = 0
                self._silence_run += FRAME_MS
                if self.speaking and self._silence_run >= self.silence_ms:
                    self.speaking = False
                    end = self._now_ms
                    if not self.end_after_silence:
                        end = min(self._now_ms, self._last_voice_end + 100)
                    events.append(VADEvent("stop", end))
        return events

    def reset(self) -> None:
        """After a manual commit or clear: the next speech is a new turn."""
        self.speaking = False
        self._voiced_run = 0
        self._silence_run = 0


MAX_SETTING = 3_600_000  # no setting means more than an hour (of milliseconds)


def _number(settings: Mapping[str, Any], key: str, default: float) -> float:
    """A setting within ``[0, MAX_SETTING]``, or *default* (a lenient server takes any junk,
    10**400 included)."""
    value = settings.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value) if 0 <= value <= MAX_SETTING else default


def voiced_spans(
    samples: np.ndarray,
    rate: int,
    *,
    min_gap_s: float = 1.0,
    pad_s: float = 0.25,
    level_dbfs: float = -50.0,
) -> list[tuple[int, int]]:
    """Sample ranges holding sound, split where at least *min_gap_s* is quieter than *level*.

    A recognizer that decodes a long file as one utterance spends most of its time on the
    silence and loses its place; decoding each span alone is faster and no worse, because
    nothing is cut shorter than a second of quiet. Each span keeps *pad_s* of that quiet on
    both sides, so no word's edge is clipped.
    """
    frame = max(1, rate * FRAME_MS // 1000)
    loud = frame_rms(samples, frame) > 32768.0 * 10 ** (level_dbfs / 20.0)
    voiced = np.flatnonzero(loud)
    if not len(voiced):
        return []
    gap_frames = max(1, round(min_gap_s * 1000 / FRAME_MS))
    breaks = np.flatnonzero(np.diff(voiced) > gap_frames)
    firsts = np.concatenate([voiced[:1], voiced[breaks + 1]])
    lasts = np.concatenate([voiced[breaks], voiced[-1:]])
    pad = round(pad_s * rate)
    return [
        (max(0, int(a) * frame - pad), min(len(samples), (int(b) + 1) * frame + pad))
        for a, b in zip(firsts, lasts, strict=True)
    ]
