"""N phone calls in one process, each a trio-stt session fed 20 ms frames of 8 kHz µ-law.

    python bench/phone_client.py ws://127.0.0.1:PORT --streams 500 --mode passthrough
    python bench/phone_client.py ws://127.0.0.1:PORT --streams 500 --mode pcm

What a phone bridge does with each frame a carrier delivers. ``passthrough``: add its bytes
to a G.711 session (``audio/pcmu``), which sends them as they are. ``pcm``: what a bridge
must do without that: decode the µ-law (a numpy table, the cheapest decode there is), bring
it to 24 kHz with a soxr stream per call, and add the samples to a PCM session. Every frame
handed over is stamped (``_cell``) so the server can tell how long it waited to be sent.
Prints one JSON line of measurements, as ``trio_client.py`` does.
"""

from __future__ import annotations

import argparse
import io
import time
from collections import deque

import numpy as np
import numpy.typing as npt
import soundfile
import soxr
import trio
from _cell import STAMP, frame
from trio_client import run

from trio_stt import StreamedAudioInput
from trio_stt._protocol import PCMU

PHONE_RATE = 8000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("url", help="the scripted server, ws://127.0.0.1:PORT")
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--frame-ms", type=int, default=20)
    parser.add_argument("--mode", choices=["passthrough", "pcm"], required=True)
    return parser.parse_args()


def phone_frame(frame_ms: int) -> bytes:
    """One frame of the voiced tone as a carrier delivers it: 8 kHz µ-law, by libsndfile."""
    narrow = soxr.resample(frame(frame_ms), 24_000, PHONE_RATE)
    out = io.BytesIO()
    soundfile.write(out, narrow, PHONE_RATE, format="RAW", subtype="ULAW")
    return out.getvalue()


def stamped_bytes(chunk: bytes) -> bytes:
    return STAMP.pack(time.monotonic(), len(chunk)) + chunk[STAMP.size :]


class Converter:
    """What a bridge without G.711 does to each frame: decode, then a soxr stream to 24 kHz.

    The stream holds back part of what it is given (tens of ms), so each piece it lets out
    is stamped with the time the carrier handed over the frame its first sample came from:
    the wait inside the resampler counts as send delay, as it would for the caller.
    """

    def __init__(self, frame_bytes: int) -> None:
        self.upsampler = soxr.ResampleStream(PHONE_RATE, 24_000, 1, dtype="int16")
        self.frame_bytes = frame_bytes
        self.handed: deque[float] = deque()  # hand-over times of frames not all let out
        self.first_frame = 0  # the frame handed[0] is the time of
        self.let_out = 0  # 24 kHz samples let out so far

    def convert(self, chunk: bytes, last: bool = False) -> npt.NDArray[np.int16] | None:
        self.handed.append(time.monotonic())
        pcm = self.upsampler.resample_chunk(PCMU.linear(chunk), last=last)
        if len(pcm) < STAMP.size // 2:
            return None
        source = self.let_out // 3 // self.frame_bytes  # the frame the first sample is from
        while self.first_frame < source:
            self.handed.popleft()
            self.first_frame += 1
        self.let_out += len(pcm)
        stamp = STAMP.pack(self.handed[0], pcm.nbytes)
        pcm = pcm.copy()
        pcm[: STAMP.size // 2] = np.frombuffer(stamp, "<i2")
        return pcm


class PassthroughFeeder:
    """The carrier's frame, stamped, added to a G.711 session as it is."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.audio = StreamedAudioInput(format="audio/pcmu")
        self.chunk = phone_frame(args.frame_ms)

    async def add(self, i: int, last: bool) -> None:
        await self.audio.add_audio(stamped_bytes(self.chunk))


class ConvertingFeeder:
    """The carrier's frame decoded and brought to 24 kHz, added to a PCM session."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.audio = StreamedAudioInput()
        self.chunk = phone_frame(args.frame_ms)
        self.converter = Converter(len(self.chunk))

    async def add(self, i: int, last: bool) -> None:
        pcm = self.converter.convert(self.chunk, last=last)
        if pcm is not None:
            await self.audio.add_audio(pcm)
        else:
            await trio.lowlevel.checkpoint()


if __name__ == "__main__":
    args = parse_args()
    trio.run(run, args, PassthroughFeeder if args.mode == "passthrough" else ConvertingFeeder)
