"""trio-stt against the Agents SDK's asyncio STT session, side by side, in one run.

    make bench-compare
    python bench/compare.py --reference-python .venv-reference/bin/python \\
        [--streams 1,100,500] [--frames 100,20] [--seconds 20] [--repeats 3]

One scripted GA server (bench/ga_server.py) runs in its own process for the whole run. For
each cell (frame size x number of streams) and each repeat, the two clients run one after the
other, each in a fresh process of its own (bench/reference_client.py in the reference's venv,
bench/trio_client.py in ours), the order alternating between repeats. After each client the
server reports what it saw: messages, audio, turns, its own CPU and event-loop lag, so the
table shows that the server kept up. Each cell also measures, once per event loop, what the
producers alone cost with no client (bench/pacing_floor.py): the "floor CPU" column, which
no client can go below, and the "CPU above floor" ratio, which compares what each client
adds to it. Medians over the repeats are printed, then the ratios trio-stt / reference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio
import trio_websocket

HERE = Path(__file__).resolve().parent
CLIENTS = {"reference": "reference_client.py", "trio-stt": "trio_client.py"}
LOOPS = {"reference": "asyncio", "trio-stt": "trio"}

COLUMNS = [  # key, heading, format
    ("cpu_per_audio_s", "CPU s/audio s", "{:.5f}"),
    ("floor_cpu_per_audio_s", "floor CPU", "{:.5f}"),
    ("p50_ms", "p50 ms", "{:.1f}"),
    ("p99_ms", "p99 ms", "{:.1f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
    ("idle_kb_per_session", "idle KB/session", "{:.1f}"),
    ("setup_cpu_ms", "setup CPU ms", "{:.2f}"),
    ("messages_per_stream_s", "msgs/stream s", "{:.1f}"),
    ("send_delay_p50_ms", "send delay p50 ms", "{:.1f}"),
    ("send_delay_p99_ms", "send delay p99 ms", "{:.1f}"),
    ("producer_late_p50_ms", "producers late p50 ms", "{:.0f}"),
    ("turns", "turns", "{:.0f}"),
    ("turns_expected", "expected", "{:.0f}"),
    ("server_cpu_share", "server CPU", "{:.0%}"),
    ("server_lag_p99_ms", "server lag p99 ms", "{:.1f}"),
]
RATIO_KEYS = ["cpu_per_audio_s", "cpu_above_floor", "p50_ms", "p99_ms", "peak_rss_mb",
              "idle_kb_per_session", "setup_cpu_ms", "messages_per_stream_s"]  # fmt: skip


async def server_stats(url: str) -> dict[str, Any]:
    async with trio_websocket.open_websocket_url(url + "/stats") as ws:
        return dict(json.loads(await ws.get_message()))


def run_measured(
    command: list[str], name: str, url: str, seconds: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one client process; what it measured, and what the server saw meanwhile."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds * 20 + 120)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result, trio.run(server_stats, url)


def run_client(python: str, client: str, url: str, streams: int, frame_ms: int,
               seconds: int) -> dict[str, Any]:  # fmt: skip
    command = [python, str(HERE / CLIENTS[client]), url, "--streams", str(streams),
               "--frame-ms", str(frame_ms), "--seconds", str(seconds)]  # fmt: skip
    result, server = run_measured(command, client, url, seconds)
    result["messages_per_stream_s"] = server["messages"] / (streams * seconds)
    result["server_lag_p99_ms"] = server["lag_p99_ms"]
    result["send_delay_p50_ms"] = server["send_delay_p50_ms"]
    result["send_delay_p99_ms"] = server["send_delay_p99_ms"]
    result["server_cpu_share"] = server["cpu_s"] / server["wall_s"]
    return result


def pacing_floor(python: str, client: str, streams: int, frame_ms: int, seconds: int) -> float:
    command = [python, str(HERE / "pacing_floor.py"), LOOPS[client], "--streams", str(streams),
               "--frame-ms", str(frame_ms), "--seconds", str(seconds)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    return float(json.loads(done.stdout)["floor_cpu_per_audio_s"])


def median_row(results: list[dict[str, Any]], floor: float) -> dict[str, float]:
    keys = [key for key, _, _ in COLUMNS if key != "floor_cpu_per_audio_s"]
    row = {key: statistics.median(r[key] for r in results) for key in keys}
    row["floor_cpu_per_audio_s"] = floor
    row["cpu_above_floor"] = row["cpu_per_audio_s"] - floor
    return row


def print_table(rows: list[tuple[str, str, dict[str, float]]]) -> None:
    headings = ["frames", "streams", "client"] + [heading for _, heading, _ in COLUMNS]
    print("| " + " | ".join(headings) + " |")
    print("|" + "|".join("---:" if i >= 3 else "---" for i in range(len(headings))) + "|")
    for cell, client, row in rows:
        frames, streams = cell.split("/")
        values = [fmt.format(row[key]) for key, _, fmt in COLUMNS]
        print("| " + " | ".join([frames, streams, client, *values]) + " |")


def print_ratios(cells: dict[str, dict[str, dict[str, float]]]) -> None:
    named = {**{key: heading for key, heading, _ in COLUMNS}, "cpu_above_floor": "CPU above floor"}
    headings = ["frames", "streams"] + [named[key] for key in RATIO_KEYS]
    print("\ntrio-stt / reference (below 1 is better for trio-stt):\n")
    print("| " + " | ".join(headings) + " |")
    print("|" + "|".join("---:" for _ in headings) + "|")
    for cell, by_client in cells.items():
        frames, streams = cell.split("/")
        ours, theirs = by_client["trio-stt"], by_client["reference"]
        ratios = [f"{ours[k] / theirs[k]:.2f}" if ours[k] > 0 < theirs[k] else "-"
                  for k in RATIO_KEYS]  # fmt: skip
        print("| " + " | ".join([frames, streams, *ratios]) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reference-python", required=True)
    parser.add_argument("--streams", default="1,100,500")
    parser.add_argument("--frames", default="100,20", help="frame sizes in ms")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--trio-python", default=sys.executable,
        help="the interpreter for trio-stt's side (another venv, to compare two builds)",
    )  # fmt: skip
    args = parser.parse_args()
    pythons = {"reference": args.reference_python, "trio-stt": args.trio_python}
    server = subprocess.Popen([args.reference_python, str(HERE / "ga_server.py")],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    rows: list[tuple[str, str, dict[str, float]]] = []
    cells: dict[str, dict[str, dict[str, float]]] = {}
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        for frame_ms in (int(x) for x in args.frames.split(",")):
            for streams in (int(x) for x in args.streams.split(",")):
                cell = f"{frame_ms} ms/{streams}"
                runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CLIENTS}
                for repeat in range(args.repeats):
                    order = list(CLIENTS) if repeat % 2 == 0 else list(reversed(CLIENTS))
                    for client in order:
                        result = run_client(pythons[client], client, url, streams, frame_ms,
                                            args.seconds)  # fmt: skip
                        runs[client].append(result)
                        print(f"# {cell} {client} #{repeat + 1}: {json.dumps(result)}",
                              file=sys.stderr, flush=True)  # fmt: skip
                floors = {client: pacing_floor(pythons[client], client, streams, frame_ms,
                                               args.seconds) for client in CLIENTS}  # fmt: skip
                cells[cell] = {client: median_row(results, floors[client])
                               for client, results in runs.items()}  # fmt: skip
                rows += [(cell, client, cells[cell][client]) for client in CLIENTS]
    finally:
        server.terminate()
        server.wait()
    print_table(rows)
    print_ratios(cells)


if __name__ == "__main__":
    main()
