"""Phone calls through trio-stt: G.711 passed through against converted to 24 kHz PCM16.

    make bench-phone
    python bench/telephony.py [--streams 100,500] [--seconds 20] [--repeats 3]

One scripted GA server (bench/ga_server.py) runs in its own process for the whole run. For
each number of calls and each repeat, bench/phone_client.py runs once in each mode, in a
fresh process, the order alternating between repeats; after each the server reports what
it received. Medians over the repeats are printed, then passthrough / PCM.

Columns: the client's CPU seconds per second of audio per call, whole and above the floor
(what 20 ms producers paced by ``trio.sleep_until`` cost with no session at all,
bench/pacing_floor.py, measured once per number of calls); the bytes a call puts on
the wire each second (the WebSocket text messages, JSON and base64); how long a frame
waited between ``add_audio`` and the server (p50, p99); turn latency (p50, p99: the server
completes a turn per second of audio at once, so this is the client's own delay); how far
the producers ended behind real time; turns received and expected.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from compare import pacing_floor, run_measured

HERE = Path(__file__).resolve().parent
MODES = ["passthrough", "pcm"]
COLUMNS = [  # key, heading, format
    ("cpu_per_audio_s", "CPU s/audio s", "{:.5f}"),
    ("cpu_above_floor", "CPU above floor", "{:.5f}"),
    ("wire_bytes_per_call_s", "wire B/call s", "{:,.0f}"),
    ("messages_per_stream_s", "msgs/call s", "{:.1f}"),
    ("send_delay_p50_ms", "send delay p50 ms", "{:.1f}"),
    ("send_delay_p99_ms", "send delay p99 ms", "{:.1f}"),
    ("p50_ms", "turn p50 ms", "{:.1f}"),
    ("p99_ms", "turn p99 ms", "{:.1f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
    ("producer_late_p50_ms", "producers late p50 ms", "{:.0f}"),
    ("turns", "turns", "{:.0f}"),
    ("turns_expected", "expected", "{:.0f}"),
    ("server_cpu_share", "server CPU", "{:.0%}"),
]
RATIO_KEYS = ["cpu_per_audio_s", "cpu_above_floor", "wire_bytes_per_call_s", "send_delay_p50_ms",
              "send_delay_p99_ms", "p50_ms", "p99_ms"]  # fmt: skip


def run_client(mode: str, url: str, streams: int, seconds: int) -> dict[str, Any]:
    command = [sys.executable, str(HERE / "phone_client.py"), url, "--mode", mode,
               "--streams", str(streams), "--seconds", str(seconds)]  # fmt: skip
    result, server = run_measured(command, mode, url, seconds)
    result["wire_bytes_per_call_s"] = server["wire_bytes"] / (streams * seconds)
    result["messages_per_stream_s"] = server["messages"] / (streams * seconds)
    result["send_delay_p50_ms"] = server["send_delay_p50_ms"]
    result["send_delay_p99_ms"] = server["send_delay_p99_ms"]
    result["server_cpu_share"] = server["cpu_s"] / server["wall_s"]
    return result


def print_tables(cells: dict[int, dict[str, dict[str, float]]]) -> None:
    headings = ["calls", "mode"] + [heading for _, heading, _ in COLUMNS]
    print("| " + " | ".join(headings) + " |")
    print("|" + "|".join("---:" if i >= 2 else "---" for i in range(len(headings))) + "|")
    for streams, by_mode in cells.items():
        for mode, row in by_mode.items():
            values = [fmt.format(row[key]) for key, _, fmt in COLUMNS]
            print("| " + " | ".join([str(streams), mode, *values]) + " |")
    named = {key: heading for key, heading, _ in COLUMNS}
    print("\npassthrough / pcm (below 1 is better for passthrough):\n")
    print("| calls | " + " | ".join(named[key] for key in RATIO_KEYS) + " |")
    print("|" + "|".join("---:" for _ in range(len(RATIO_KEYS) + 1)) + "|")
    for streams, by_mode in cells.items():
        ours, theirs = by_mode["passthrough"], by_mode["pcm"]
        ratios = [f"{ours[k] / theirs[k]:.2f}" if ours[k] > 0 < theirs[k] else "-"
                  for k in RATIO_KEYS]  # fmt: skip
        print("| " + " | ".join([str(streams), *ratios]) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", default="100,500")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, str(HERE / "ga_server.py")],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    cells: dict[int, dict[str, dict[str, float]]] = {}
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        for streams in (int(x) for x in args.streams.split(",")):
            runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
            for repeat in range(args.repeats):
                for mode in MODES if repeat % 2 == 0 else list(reversed(MODES)):
                    result = run_client(mode, url, streams, args.seconds)
                    runs[mode].append(result)
                    print(f"# {streams} calls {mode} #{repeat + 1}: {json.dumps(result)}",
                          file=sys.stderr, flush=True)  # fmt: skip
            floor = pacing_floor(sys.executable, "trio-stt", streams, 20, args.seconds)
            print(f"# {streams} calls: pacing floor {floor:.5f}", file=sys.stderr, flush=True)
            for results in runs.values():
                for result in results:
                    result["cpu_above_floor"] = result["cpu_per_audio_s"] - floor
            cells[streams] = {
                mode: {key: statistics.median(r[key] for r in results) for key, _, _ in COLUMNS}
                for mode, results in runs.items()
            }
    finally:
        server.terminate()
        server.wait()
    print_tables(cells)


if __name__ == "__main__":
    main()
