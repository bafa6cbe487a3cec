"""Where a benchmark client's CPU goes, by layer: a cProfile run, self time grouped by module.

    python bench/profile_client.py ws://127.0.0.1:PORT --streams 500 --frame-ms 20
    .venv-reference/bin/python bench/profile_client.py --reference ws://... (same flags)
    python bench/profile_client.py ... --top 30     # and the 30 costliest functions
    python bench/profile_client.py --phone ws://... --mode passthrough   # phone_client.py

Runs trio_client.py (or reference_client.py) under cProfile against a running
bench/ga_server.py, and prints each layer's share of the profiled self time, plus the
garbage collector's pauses (timed through ``gc.callbacks``, which cProfile cannot see).
cProfile slows everything by a similar factor, so read the shares, not the seconds.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import runpy
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

LAYERS = [  # first match wins: (layer, substrings of the code's file path or name)
    ("JSON", ("json/", "_json", "json.")),
    ("base64", ("base64", "binascii")),
    ("numpy", ("numpy/", "numpy.", "{method 'astype'", "{method 'tobytes'")),
    ("wsproto framing", ("wsproto/",)),
    ("websockets framing", ("websockets/",)),
    ("trio-websocket", ("trio_websocket/",)),
    ("trio-stt", ("trio_stt/",)),
    ("openai-agents", ("agents/",)),
    (
        "event loop: scheduling and I/O",
        (
            "trio/",
            "outcome/",
            "sniffio/",
            "methods outcome.",
            "methods trio.",
            "asyncio/",
            "Context' objects",
            "selectors",
            "{method 'poll'",
            "epoll",
        ),
    ),
    ("contextlib (context managers)", ("contextlib.py",)),
    ("socket calls", ("{method 'send'", "{method 'recv'", "socket", "posix.write", "posix.read")),
]


def layer_of(filename: str, name: str) -> str:
    where = f"{filename}:{name}"
    for layer, needles in LAYERS:
        if any(needle in where for needle in needles):
            return layer
    return "other (interpreter, harness)"


def main() -> None:
    reference = "--reference" in sys.argv
    if reference:
        sys.argv.remove("--reference")
    top = 0
    if "--top" in sys.argv:  # also list the N functions with the most self time
        at = sys.argv.index("--top")
        top = int(sys.argv[at + 1])
        del sys.argv[at : at + 2]
    script = HERE / ("reference_client.py" if reference else "trio_client.py")
    if "--phone" in sys.argv:  # phone_client.py instead; pass its --mode too
        sys.argv.remove("--phone")
        script = HERE / "phone_client.py"
    pauses: list[float] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(on_gc)
    sys.path.insert(0, str(HERE))
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler)
    totals: dict[str, float] = {}
    for (filename, _, name), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        layer = layer_of(filename, name)
        totals[layer] = totals.get(layer, 0.0) + tottime
    whole = sum(totals.values())
    print(f"\n{script.name}: profiled self time by layer")
    for layer, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {layer:<30} {100 * seconds / whole:5.1f} %")
    worst = max(pauses, default=0.0)
    print(f"  full collections: {len(pauses)} (2 are the harness's own), "
          f"longest pause {1000 * worst:.0f} ms")  # fmt: skip
    if top:
        print()
        stats.sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    main()
