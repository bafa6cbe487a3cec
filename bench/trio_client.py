"""N trio-stt sessions in one process, for the side-by-side benchmark (see compare.py).

    python bench/trio_client.py ws://127.0.0.1:PORT --streams 500 --frame-ms 20

Each session connects (staggered over a second), waits until all are ready, then streams
``--seconds`` of audio in ``--frame-ms`` frames paced at real time, ends its input, and reads
its turns from ``transcribe_turns()``. Prints one JSON line of measurements.

:func:`run` is the harness; what each session is fed is a :class:`Feeder`, so that
phone_client.py runs the same sessions on G.711.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Protocol

import trio
from _cell import Measurements, frame, parse_args, stamped

from trio_stt import ClientConfig, OpenAISTTModel, SessionOptions, StreamedAudioInput


class Feeder(Protocol):
    """One session's audio: the input it reads, and each frame's hand-over."""

    audio: StreamedAudioInput

    async def add(self, i: int, last: bool) -> None: ...


class PcmFeeder:
    """The same 24 kHz int16 frame, stamped, every time."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.audio = StreamedAudioInput()
        self.chunk = frame(args.frame_ms)

    async def add(self, i: int, last: bool) -> None:
        await self.audio.add_audio(stamped(self.chunk))


async def one_session(
    model: OpenAISTTModel,
    index: int,
    measured: Measurements,
    ready: trio.Semaphore,
    go: trio.Event,
    feeder: Feeder,
) -> None:
    args = measured.args
    await trio.sleep(index / args.streams)
    options = SessionOptions(connect_timeout=60, session_created_timeout=60,
                             session_updated_timeout=60)  # fmt: skip
    period = args.frame_ms / 1000
    async with model.create_session(feeder.audio, options=options) as session:
        turns = session.transcribe_turns()
        ready.release()
        await go.wait()
        await trio.sleep(index / args.streams)

        async def produce() -> None:
            start = trio.current_time()
            frames = args.seconds * 1000 // args.frame_ms
            for i in range(frames):
                await feeder.add(i, i == frames - 1)
                await trio.sleep_until(start + (i + 1) * period)
            measured.fell_behind(trio.current_time() - (start + frames * period))
            await feeder.audio.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            async for text in turns:
                measured.turn(text)


async def run(args: argparse.Namespace, feeder: Callable[[argparse.Namespace], Feeder]) -> None:
    """``args.streams`` sessions, each fed by a new *feeder*; prints the measurements."""
    measured = Measurements(args)
    base_url = args.url.replace("ws://", "http://", 1)
    config = ClientConfig(base_url=base_url, websocket_base_url=args.url)
    model = OpenAISTTModel("gpt-4o-transcribe", config)
    ready, go = trio.Semaphore(0, max_value=args.streams), trio.Event()
    measured.before_setup()
    async with trio.open_nursery() as nursery:
        for i in range(args.streams):
            nursery.start_soon(one_session, model, i, measured, ready, go, feeder(args))
        for _ in range(args.streams):
            await ready.acquire()
        measured.after_setup()
        measured.before_streaming()
        go.set()
    measured.after_streaming()
    measured.report()


if __name__ == "__main__":
    trio.run(run, parse_args(__doc__ or ""), PcmFeeder)
