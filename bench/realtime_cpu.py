"""Client cost of live transcription: CPU per audio second, turn latency, peak memory.

    python bench/realtime_cpu.py [--streams 1,10,100,500] [--seconds 4]

The local server runs in its own process so that its CPU is not counted as the client's.
Each stream sends speech-like audio in 100 ms chunks, paced at real time, committing every
second; streams start staggered over one second. A flat-out row sends one stream as fast as
it can. Turn latency is measured from the moment the server's recognizer produced a turn
(it writes ``time.monotonic()`` into the scripted transcript; the clock is system-wide) to
the moment ``transcribe_turns()`` yields it in the client.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import textwrap
import time

import trio

from trio_stt import (
    ClientConfig,
    OpenAISTTModel,
    SessionOptions,
    StreamedAudioInput,
    STTModelSettings,
)
from trio_stt.testing import speech_like

SERVER = textwrap.dedent(
    """
    import sys, time, trio
    from trio_stt.server import ServerConfig, ScriptedRecognizer, STTServerApp, serve
    rec = ScriptedRecognizer(fn=lambda samples, rate: f"turn {time.monotonic():.6f}")
    app = STTServerApp(ServerConfig(recognizer=rec, max_sessions=1000))
    async def main():
        async with trio.open_nursery() as n:
            url = await n.start(serve, app, "127.0.0.1", 0)
            print(url, flush=True)
    trio.run(main)
    """
)

CHUNK = speech_like(0.1)


async def one_stream(
    base_url: str, seconds: float, paced: bool, delay: float, latencies: list[float]
) -> None:
    await trio.sleep(delay)
    model = OpenAISTTModel("gpt-live-transcribe", ClientConfig(base_url=base_url))
    audio = StreamedAudioInput()
    options = SessionOptions(
        session_created_timeout=60, session_updated_timeout=60, connect_timeout=60
    )
    async with model.create_session(audio, STTModelSettings(), options=options) as session:
        turns = session.transcribe_turns()

        async def produce() -> None:
            start = trio.current_time()
            for i in range(int(seconds * 10)):
                await audio.add_audio(CHUNK)
                if paced:
                    await trio.sleep_until(start + (i + 1) * 0.1)
                if i % 10 == 9:
                    await session.commit()
            await audio.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            async for text in turns:
                latencies.append(time.monotonic() - float(text.split()[1]))


async def run(base_url: str, streams: int, seconds: float, paced: bool) -> dict[str, float]:
    latencies: list[float] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(streams):
            nursery.start_soon(one_stream, base_url, seconds, paced, i / max(streams, 1), latencies)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    audio_seconds = streams * seconds
    latencies.sort()
    return {
        "streams": streams,
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_per_audio_s": cpu / audio_seconds,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        if latencies
        else float("nan"),
        "turns": len(latencies),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="1,10,100,500")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--flat-out-seconds", type=float, default=60.0)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        rows = [("flat out", trio.run(run, base_url, 1, args.flat_out_seconds, False))]
        for n in (int(x) for x in args.streams.split(",")):
            rows.append((f"paced x{n}", trio.run(run, base_url, n, args.seconds, True)))
    finally:
        server.terminate()
        server.wait()
    print(
        f"{'run':<12} {'streams':>7} {'CPU s':>7} {'wall s':>7} {'CPU s/audio s':>14} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'turns':>6} {'peak RSS MB':>11}"
    )
    for name, r in rows:
        print(
            f"{name:<12} {r['streams']:>7.0f} {r['cpu_s']:>7.2f} {r['wall_s']:>7.1f} "
            f"{r['cpu_per_audio_s']:>14.5f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} "
            f"{r['turns']:>6.0f} {r['peak_rss_mb']:>11.0f}"
        )


if __name__ == "__main__":
    main()
