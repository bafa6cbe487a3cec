"""What client-side turn detection costs, next to the session's own cost.

    make bench-vad
    python bench/client_vad.py [--streams 100,500] [--seconds 20]

The local server (scripted transcripts) runs in its own process. Each stream speaks the
bundled recordings joined by 1.5 s pauses, looped, in 100 ms chunks paced at real time, as
``gpt-live-transcribe``. Three runs per number of streams, each in a fresh event loop:

* ``manual``: no detector; everything is sent and the end of the input commits it. This is
  the session's own cost.
* ``energy`` and ``silero``: ``ClientVAD`` with that detector, which sends only the turns
  (speech, 300 ms before it and the 500 ms after) and commits each.

CPU is this process's, from the moment every session is ready to the last turn, per second
of audio per stream. "Detector adds" is (run - manual) / manual: below 0 when gating the
silence saves more than the detector costs. "Late" is how far the producers ended behind
real time (p50): a run that cannot keep up shows it there.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np
import numpy.typing as npt
import trio
from realtime_cpu import SERVER

from trio_stt import (
    ClientConfig,
    ClientVAD,
    OpenAISTTModel,
    SessionOptions,
    StreamedAudioInput,
    STTModelSettings,
)
from trio_stt.testing import bundled_samples

MODES = {
    "manual": STTModelSettings(turn_detection="manual"),
    "energy": STTModelSettings(turn_detection=ClientVAD(detector="energy")),
    "silero": STTModelSettings(turn_detection=ClientVAD(detector="silero")),
}


def conversation(seconds: float) -> list[npt.NDArray[np.int16]]:
    """*seconds* of the recordings with 1.5 s pauses, in 100 ms chunks."""
    pause = np.zeros(36_000, np.int16)
    one = np.concatenate([part for s in bundled_samples() for part in (pause, s.read()[0])])
    audio = np.tile(one, int(seconds * 24_000 // len(one)) + 1)[: int(seconds * 24_000)]
    return [audio[i : i + 2400] for i in range(0, len(audio), 2400)]


async def one_stream(
    model: OpenAISTTModel,
    settings: STTModelSettings,
    chunks: list[npt.NDArray[np.int16]],
    ready: trio.Semaphore,
    go: trio.Event,
    late: list[float],
    turns: list[int],
) -> None:
    options = SessionOptions(connect_timeout=60, session_created_timeout=60,
                             session_updated_timeout=60)  # fmt: skip
    audio = StreamedAudioInput()
    async with model.create_session(audio, settings, options=options) as session:
        ready.release()
        await go.wait()

        async def produce() -> None:
            start = trio.current_time()
            for i, chunk in enumerate(chunks):
                await audio.add_audio(chunk)
                await trio.sleep_until(start + (i + 1) * 0.1)
            late.append(trio.current_time() - (start + len(chunks) * 0.1))
            await audio.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            turns.append(sum([1 async for _ in session.transcribe_turns()]))


async def run(base_url: str, mode: str, streams: int, seconds: float) -> dict[str, float]:
    model = OpenAISTTModel("gpt-live-transcribe", ClientConfig(base_url=base_url, api_key="x"))
    chunks = conversation(seconds)
    ready, go = trio.Semaphore(0, max_value=streams), trio.Event()
    late: list[float] = []
    turns: list[int] = []
    async with trio.open_nursery() as nursery:
        for _ in range(streams):
            nursery.start_soon(one_stream, model, MODES[mode], chunks, ready, go, late, turns)
            await trio.sleep(1 / streams)  # connect staggered over a second
        for _ in range(streams):
            await ready.acquire()
        cpu0 = time.process_time()
        go.set()
    cpu = time.process_time() - cpu0
    return {
        "cpu_per_audio_s": cpu / (streams * seconds),
        "late_ms": 1000 * statistics.median(late),
        "turns": statistics.median(turns),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", default="100,500")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    rows = []
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        for streams in (int(n) for n in args.streams.split(",")):
            own = None
            for mode in MODES:
                row = trio.run(run, base_url, mode, streams, args.seconds)
                own = own or row["cpu_per_audio_s"]
                rows.append((streams, mode, row, (row["cpu_per_audio_s"] - own) / own))
    finally:
        server.terminate()
        server.wait()
    print("| streams | mode | CPU s / audio s / stream | detector adds | late p50 ms | turns |")
    print("|---:|---|---:|---:|---:|---:|")
    for streams, mode, row, added in rows:
        print(
            f"| {streams} | {mode} | {row['cpu_per_audio_s']:.5f} | "
            f"{'-' if mode == 'manual' else f'{added:+.2f}x'} | {row['late_ms']:.0f} | "
            f"{row['turns']:.0f} |"
        )


if __name__ == "__main__":
    main()
