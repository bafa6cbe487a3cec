"""What both benchmark clients share: the audio, the schedule and the measurements.

Imported by ``trio_client.py`` (trio-stt's venv) and ``reference_client.py`` (the Agents
SDK's venv), so it needs nothing but numpy and the standard library. Latencies go into
``array`` buffers rather than lists of floats, so that the harness adds no objects for either
client's garbage collector to track.

Every frame a client hands over is a fresh copy stamped in its first 12 bytes with the
``time.monotonic()`` of the hand-over (float64) and the frame's size in bytes (uint32). The
server reads the stamps back out of the appends, whatever the client's send policy did to
the frames, and reports how long the audio waited between ``add_audio`` and the wire.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import struct
import time
from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np

RATE = 24_000


def parse_args(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("url", help="the scripted server, ws://127.0.0.1:PORT")
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--frame-ms", type=int, default=100)
    return parser.parse_args()


def frame(frame_ms: int) -> np.ndarray:
    """One frame of a voiced tone, int16 as microphones deliver it; the same array each time."""
    t = np.arange(RATE * frame_ms // 1000) / RATE
    tone = 0.3 * np.sign(np.sin(2 * np.pi * 140 * t))
    return (tone * 32767).astype(np.int16)


STAMP = struct.Struct("<dI")


def stamped(chunk: np.ndarray) -> np.ndarray:
    """A copy of *chunk* carrying its hand-over time and size, for the server to read back."""
    copy = chunk.copy()
    copy[: STAMP.size // 2] = np.frombuffer(STAMP.pack(time.monotonic(), chunk.nbytes), "<i2")
    return copy


def percentile_ms(ordered: Sequence[float], q: float) -> float:
    """The *q* quantile of sorted seconds, in milliseconds (nearest rank below)."""
    return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_kb() -> int:
    """Resident memory now (``ru_maxrss`` only gives the peak)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() // 1024


class Measurements:
    """Filled in by a client; printed as one JSON line for the harness."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.latencies = array("d")
        self.lateness = array("d")  # per stream: how far its producer ended behind schedule
        self.setup_cpu = 0.0
        self.idle_kb_per_session = 0.0
        self.stream_cpu = 0.0
        self._mark_cpu = 0.0
        self._mark_rss = 0

    def before_setup(self) -> None:
        gc.collect()
        self._mark_cpu, self._mark_rss = cpu_seconds(), rss_kb()

    def after_setup(self) -> None:
        """Every session connected, configured and idle."""
        self.setup_cpu = cpu_seconds() - self._mark_cpu
        gc.collect()
        self.idle_kb_per_session = (rss_kb() - self._mark_rss) / self.args.streams

    def before_streaming(self) -> None:
        self._mark_cpu = cpu_seconds()

    def after_streaming(self) -> None:
        self.stream_cpu = cpu_seconds() - self._mark_cpu

    def turn(self, text: str) -> None:
        self.latencies.append(time.monotonic() - float(text))

    def fell_behind(self, seconds: float) -> None:
        """A producer's last frame went out *seconds* after its place in real time."""
        self.lateness.append(seconds)

    def report(self) -> None:
        args = self.args
        audio_s = args.streams * args.seconds
        latencies = sorted(self.latencies) or [float("nan")]
        result: dict[str, Any] = {
            "cpu_per_audio_s": self.stream_cpu / audio_s,
            "p50_ms": percentile_ms(latencies, 0.5),
            "p99_ms": percentile_ms(latencies, 0.99),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "idle_kb_per_session": self.idle_kb_per_session,
            "setup_cpu_ms": 1000 * self.setup_cpu / args.streams,
            "producer_late_p50_ms": percentile_ms(sorted(self.lateness) or [float("nan")], 0.5),
            "turns": len(self.latencies),
            "turns_expected": audio_s,
        }
        print(json.dumps(result), flush=True)
