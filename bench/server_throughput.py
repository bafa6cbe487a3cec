"""How many live sessions the local server carries: N realtime sessions of real speech.

    python bench/server_throughput.py              # N = 1, 4, 16, 50
    python bench/server_throughput.py --sessions 1 4 --workers 2

Starts ``trio-stt serve`` (PocketSphinx, in worker processes) in a process of its own, then
for each N opens N raw GA sessions under server VAD. Each streams the bundled recordings,
each followed by a second of silence, in 20 ms frames paced at real time (sessions start
staggered over one second, as real callers do). Meanwhile a prober asks ``/v1/health``
every 50 ms.

Per N it prints:

- turn latency: from the end of a recording's speech (the last of its samples sent) to its
  ``…transcription.completed``; p50 and p99 over every turn of every session. It includes
  the server VAD's 200 ms of silence that ends a turn.
- partials: turns that got a delta before their speech ended.
- health p99: the server's answer time to a health check while the sessions run.
- server CPU: seconds of CPU (server and its workers) per second of wall time; 2.0 is both
  cores of a 2-core machine.
- RSS: the server's and its workers' resident memory at the end of the run.

The sessions' own client runs in this process; at N = 50 it sends 2 500 appends a second.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import trio
import trio_websocket

from trio_stt.testing import bundled_samples

RATE = 24_000
DEBUG = bool(os.environ.get("BENCH_DEBUG"))
FRAME = 480  # samples: 20 ms


def start_server(workers: int | None) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "trio_stt", "serve", "--port", "0", "--quiet"]
    command += ["--max-sessions", "200"]
    if workers:
        command += ["--workers", str(workers)]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([server.stderr], [], [], 1)
        match = re.search(r"server on (http://\S+)", server.stderr.readline() if ready else "")
        if match:
            return server, match.group(1)
    raise SystemExit("trio-stt serve did not start")


def family(pid: int) -> list[int]:
    """The server and its worker processes."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                pids.append(int(entry.name))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class Run:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.health: list[float] = []
        self.turns = 0
        self.early = 0


def recordings() -> list[np.ndarray]:
    return [clip.read()[0] for clip in bundled_samples()]


async def session(url: str, clips: list[np.ndarray], delay: float, run: Run) -> None:
    await trio.sleep(delay)
    update = {"type": "session.update", "session": {"type": "transcription", "audio": {
        "input": {"transcription": {"model": "gpt-4o-transcribe"}}}}}  # fmt: skip
    sent_at: list[float] = []  # when each 20 ms frame went out
    speech_end: dict[str, int] = {}  # item -> the frame its speech ended in (server VAD's say)
    committed, completed = 0, 0
    early: set[str] = set()
    async with trio_websocket.open_websocket_url(url) as ws:
        await ws.get_message()
        await ws.send_message(json.dumps(update))
        all_sent, all_completed = trio.Event(), trio.Event()

        async def listen() -> None:
            nonlocal committed, completed
            message: str | bytes | None = None
            await trio.lowlevel.checkpoint()
            while not (all_sent.is_set() and completed == committed):
                with trio.move_on_after(0.2):  # to look at the condition again
                    message = await ws.get_message()
                if message is None:
                    continue
                event = json.loads(message)
                message = None
                kind, item = event["type"], event.get("item_id", "")
                if DEBUG:
                    print(f"{time.monotonic():.2f} {kind} {item} {event.get('delta', '')}")
                if kind == "input_audio_buffer.speech_stopped":
                    speech_end[item] = int(event["audio_end_ms"]) // 20
                elif kind == "input_audio_buffer.committed":
                    committed += 1
                elif kind.endswith("transcription.delta") and item not in speech_end:
                    early.add(item)
                elif kind.endswith("transcription.completed"):
                    frame = min(speech_end.get(item, len(sent_at) - 1), len(sent_at) - 1)
                    run.latencies.append(time.monotonic() - sent_at[frame])
                    completed += 1
            all_completed.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen)
            audio = np.concatenate([np.concatenate([c, np.zeros(RATE, np.int16)]) for c in clips])
            pcm = audio.astype("<i2").tobytes()
            start = trio.current_time()
            for number, at in enumerate(range(0, len(pcm), FRAME * 2)):
                await trio.sleep_until(start + number * FRAME / RATE)
                chunk = base64.b64encode(pcm[at : at + FRAME * 2]).decode()
                await ws.send_message(
                    json.dumps({"type": "input_audio_buffer.append", "audio": chunk})
                )
                sent_at.append(time.monotonic())
            await trio.sleep(1)  # the VAD's silence ends the last turn
            all_sent.set()
            with trio.move_on_after(300):  # a queue of turns drains, however long
                await all_completed.wait()
            nursery.cancel_scope.cancel()
    run.turns += completed
    run.early += len(early)


async def probe(base_url: str, run: Run, done: trio.Event) -> None:
    import httpx2

    async with httpx2.AsyncClient() as client:
        while not done.is_set():
            start = time.monotonic()
            await client.get(base_url + "/health")
            run.health.append(time.monotonic() - start)
            await trio.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.array(values), q))


async def measure(base_url: str, server_pid: int, n: int) -> dict[str, float]:
    url = base_url.replace("http://", "ws://") + "/realtime?intent=transcription"
    clips = recordings()
    run = Run()
    pids = family(server_pid)
    cpu_before, wall_before = cpu_seconds(pids), time.monotonic()
    done = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(probe, base_url, run, done)
        async with trio.open_nursery() as sessions:
            for i in range(n):
                sessions.start_soon(session, url, clips, i / max(n, 1), run)
        done.set()
    pids = family(server_pid)
    wall = time.monotonic() - wall_before
    return {
        "n": n,
        "p50": statistics.median(run.latencies) if run.latencies else float("nan"),
        "p99": percentile(run.latencies, 99),
        "partials": run.early / max(run.turns, 1),
        "health_p99": percentile(run.health, 99),
        "cpu": (cpu_seconds(pids) - cpu_before) / wall,
        "rss": rss_mb(pids),
        "turns": len(run.latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 16, 50])
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    server, base_url = start_server(args.workers)
    try:
        rows = [trio.run(measure, base_url, server.pid, n) for n in args.sessions]
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"cores: {os.cpu_count()}, workers: {args.workers or os.cpu_count()}")
    print("| sessions | turns | turn latency p50 | p99 | partials before the end | "
          "health p99 | server CPU | RSS |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['n']:.0f} | {r['turns']:.0f} | {r['p50'] * 1000:.0f} ms "
            f"| {r['p99'] * 1000:.0f} ms | {r['partials']:.0%} | {r['health_p99'] * 1000:.1f} ms "
            f"| {r['cpu']:.2f} | {r['rss']:.0f} MB |"
        )


if __name__ == "__main__":
    main()
