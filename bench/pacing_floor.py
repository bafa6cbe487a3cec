"""What the benchmark's own producers cost in each event loop, with no client at all.

    python bench/pacing_floor.py trio --streams 500 --frame-ms 20
    .venv-reference/bin/python bench/pacing_floor.py asyncio --streams 500 --frame-ms 20

N tasks stamp a frame and sleep until the next one is due, exactly as the clients' producers
do, but hand the frame to nobody. Their CPU per audio-second is a floor under each client's
figure that no client can go below: sleeping to a deadline costs trio a cancel scope and a
caught ``Cancelled`` each time, which asyncio's timer handle does not, so at 20 ms frames the
floors differ by more than the clients can. compare.py prints it beside each client.
"""

from __future__ import annotations

import argparse
import json
import sys

from _cell import cpu_seconds, frame, stamped


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("loop", choices=["trio", "asyncio"])
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--frame-ms", type=int, default=100)
    return parser.parse_args()


def run_trio(args: argparse.Namespace) -> float:
    import trio

    chunk, period, count = frame(args.frame_ms), args.frame_ms / 1000, frames(args)

    async def produce(index: int) -> None:
        await trio.sleep(index / args.streams)
        start = trio.current_time()
        for i in range(count):
            stamped(chunk)
            await trio.sleep_until(start + (i + 1) * period)

    async def main() -> float:
        before = cpu_seconds()
        async with trio.open_nursery() as nursery:
            for index in range(args.streams):
                nursery.start_soon(produce, index)
        return cpu_seconds() - before

    return trio.run(main)


def run_asyncio(args: argparse.Namespace) -> float:
    import asyncio

    chunk, period, count = frame(args.frame_ms), args.frame_ms / 1000, frames(args)

    async def produce(index: int) -> None:
        await asyncio.sleep(index / args.streams)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(count):
            stamped(chunk)
            await asyncio.sleep(start + (i + 1) * period - loop.time())

    async def main() -> float:
        before = cpu_seconds()
        await asyncio.gather(*(produce(index) for index in range(args.streams)))
        return cpu_seconds() - before

    return asyncio.run(main())


def frames(args: argparse.Namespace) -> int:
    return args.seconds * 1000 // args.frame_ms


def main() -> None:
    args = parse_args()
    cpu = run_trio(args) if args.loop == "trio" else run_asyncio(args)
    json.dump({"floor_cpu_per_audio_s": cpu / (args.streams * args.seconds)}, sys.stdout)
    print(flush=True)


if __name__ == "__main__":
    main()
