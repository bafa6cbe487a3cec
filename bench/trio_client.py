"""N trio-stt sessions in one process, for the side-by-side benchmark (see compare.py).

    python bench/trio_client.py ws://127.0.0.1:PORT --streams 500 --frame-ms 20

Each session connects (staggered over a second), waits until all are ready, then streams
``--seconds`` of audio in ``--frame-ms`` frames paced at real time, ends its input, and reads
its turns from ``transcribe_turns()``. Prints one JSON line of measurements.
"""

from __future__ import annotations

import trio
from _cell import Measurements, frame, parse_args, stamped

from trio_stt import ClientConfig, OpenAISTTModel, SessionOptions, StreamedAudioInput


async def one_session(
    model: OpenAISTTModel,
    index: int,
    measured: Measurements,
    ready: trio.Semaphore,
    go: trio.Event,
) -> None:
    args = measured.args
    await trio.sleep(index / args.streams)
    audio = StreamedAudioInput()
    options = SessionOptions(connect_timeout=60, session_created_timeout=60,
                             session_updated_timeout=60)  # fmt: skip
    chunk, period = frame(args.frame_ms), args.frame_ms / 1000
    async with model.create_session(audio, options=options) as session:
        turns = session.transcribe_turns()
        ready.release()
        await go.wait()
        await trio.sleep(index / args.streams)

        async def produce() -> None:
            start = trio.current_time()
            for i in range(args.seconds * 1000 // args.frame_ms):
                await audio.add_audio(stamped(chunk))
                await trio.sleep_until(start + (i + 1) * period)
            measured.fell_behind(trio.current_time() - (start + (i + 1) * period))
            await audio.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            async for text in turns:
                measured.turn(text)


async def main() -> None:
    args = parse_args(__doc__ or "")
    measured = Measurements(args)
    base_url = args.url.replace("ws://", "http://", 1)
    config = ClientConfig(base_url=base_url, websocket_base_url=args.url)
    model = OpenAISTTModel("gpt-4o-transcribe", config)
    ready, go = trio.Semaphore(0, max_value=args.streams), trio.Event()
    measured.before_setup()
    async with trio.open_nursery() as nursery:
        for i in range(args.streams):
            nursery.start_soon(one_session, model, i, measured, ready, go)
        for _ in range(args.streams):
            await ready.acquire()
        measured.after_setup()
        measured.before_streaming()
        go.set()
    measured.after_streaming()
    measured.report()


if __name__ == "__main__":
    trio.run(main)
