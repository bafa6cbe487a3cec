"""The three audio formats a realtime session can carry, and what each byte is worth.

OpenAI takes 24 kHz PCM16 (``audio/pcm``) and 8 kHz G.711, µ-law (``audio/pcmu``) or A-law
(``audio/pcma``), one byte a sample (protocol.md §1.7). A phone call arrives as G.711, and
sending it as it is costs a sixth of the bytes of PCM and no conversion, so every duration
the client and the server compute from a byte count goes through :class:`WireFormat`
rather than a constant.

G.711 is decoded here only to measure how loud it is (where the voiced audio ends) and, on
the local server, to recognize it. The tables are computed from the companding law of
ITU-T G.711 rather than typed in, and the tests check all 256 codes against libsndfile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ._pcm import REALTIME_SAMPLE_RATE, voiced_until_ms

__all__ = ["AudioFormat", "WireFormat", "WIRE_FORMATS", "PCM", "PCMU", "PCMA", "wire_format"]

AudioFormat = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]


def _ulaw_table() -> npt.NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF  # µ-law bytes are sent inverted
    exponent, mantissa = (codes >> 4) & 7, codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> npt.NDArray[np.int16]:
    codes = np.arange(256, dtype=np.int32) ^ 0x55  # A-law bytes have every other bit inverted
    exponent, mantissa = (codes >> 4) & 7, codes & 0x0F
    step = (mantissa << 4) + np.where(exponent == 0, 8, 0x108)
    magnitude: npt.NDArray[np.int32] = step << np.maximum(exponent - 1, 0)
    return np.where(codes & 0x80, magnitude, -magnitude).astype(np.int16)


@dataclass(frozen=True)
class WireFormat:
    """One audio format as the session sends it.

    Attributes:
        name: the GA ``format.type``.
        beta_name: the Beta ``input_audio_format``.
        sample_rate, sample_bytes: what one second and one sample are in bytes.
    """

    name: AudioFormat
    beta_name: str
    sample_rate: int
    sample_bytes: int
    _decode: npt.NDArray[np.int16] | None = field(default=None, repr=False, compare=False)

    @property
    def bytes_per_ms(self) -> int:
        """48 for 24 kHz PCM16, 8 for G.711."""
        return self.sample_rate * self.sample_bytes // 1000

    @property
    def g711(self) -> bool:
        return self._decode is not None

    def session_format(self) -> dict[str, Any]:
        """The GA ``audio.input.format`` object (G.711 has no ``rate`` field)."""
        if self.g711:
            return {"type": self.name}
        return {"type": self.name, "rate": self.sample_rate}

    def ms(self, nbytes: int) -> float:
        return nbytes / self.bytes_per_ms

    def linear(self, data: bytes) -> npt.NDArray[np.int16]:
        """*data* as int16 samples at :attr:`sample_rate`: PCM as it is, G.711 decoded."""
        codes = np.frombuffer(data, np.uint8 if self._decode is not None else "<i2")
        return codes if self._decode is None else self._decode[codes]

    def voiced_until_ms(self, data: bytes) -> float:
        """Where the last voiced 10 ms of *data* ends, in ms from its start; -1 if none."""
        return voiced_until_ms(self.linear(data), self.sample_rate // 100)


PCM = WireFormat("audio/pcm", "pcm16", REALTIME_SAMPLE_RATE, 2)
PCMU = WireFormat("audio/pcmu", "g711_ulaw", 8_000, 1, _ulaw_table())
PCMA = WireFormat("audio/pcma", "g711_alaw", 8_000, 1, _alaw_table())
WIRE_FORMATS: dict[str, WireFormat] = {f.name: f for f in (PCM, PCMU, PCMA)}


def wire_format(name: str) -> WireFormat:
    """The format called *name* (a GA ``format.type``), or a :class:`ValueError` naming those
    there are."""
    try:
        return WIRE_FORMATS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown audio format {name!r}; expected one of {', '.join(WIRE_FORMATS)}"
        ) from None
