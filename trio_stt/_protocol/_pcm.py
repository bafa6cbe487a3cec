"""The one audio format the realtime protocol speaks by default: its numbers, and the
measure of voiced audio both ends use.

OpenAI's realtime API takes 16-bit signed little-endian mono PCM at 24 kHz (protocol.md
§1.7), so every duration the client and the server compute from a byte count divides by
the same 48: said here once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["REALTIME_SAMPLE_RATE", "BYTES_PER_MS", "frame_rms", "voiced_until_ms", "VOICED_RMS"]

REALTIME_SAMPLE_RATE = 24_000
"""The only PCM rate OpenAI's realtime API accepts."""

BYTES_PER_MS = REALTIME_SAMPLE_RATE * 2 // 1000
"""48: 24,000 samples a second, two bytes each."""


def frame_rms(
    samples: npt.NDArray[np.int16] | npt.NDArray[np.float32], frame: int = 240
) -> npt.NDArray[np.float32]:
    """RMS of each whole *frame*-sample frame (240 = 10 ms at 24 kHz); a partial tail is ignored."""
    usable = samples[: samples.size - samples.size % frame].astype(np.float32).reshape(-1, frame)
    rms: npt.NDArray[np.float32] = np.sqrt(np.mean(usable * usable, axis=1))
    return rms


VOICED_RMS = 32768 * 10 ** (-45 / 20)
"""A 10 ms frame louder than -45 dBFS RMS counts as voiced: above a typical microphone's noise
floor, well below speech. It only decides whether the tail at end of input is worth a commit."""

_FRAME = 240  # 10 ms at 24 kHz


def voiced_until_ms(mono: npt.NDArray[np.int16], frame: int = _FRAME) -> float:
    """End of the last voiced 10 ms *frame* of *mono* (240 samples at 24 kHz, 80 at 8 kHz),
    in ms from its start; -1 if none.

    Speech is usually voiced up to the end of a chunk, so the last frame is tried alone
    first: one small dot product instead of an RMS over every frame.
    """
    whole = mono.size // frame
    if whole == 0:
        return -1.0
    last = mono[(whole - 1) * frame : whole * frame].astype(np.float32)
    if float(np.dot(last, last)) > VOICED_RMS * VOICED_RMS * frame:
        return whole * 10.0
    voiced = np.flatnonzero(frame_rms(mono, frame) > VOICED_RMS)
    return float((voiced[-1] + 1) * 10) if voiced.size else -1.0
