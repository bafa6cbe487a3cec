"""N Agents SDK sessions (asyncio) in one process, for the side-by-side benchmark.

    .venv-reference/bin/python bench/reference_client.py ws://127.0.0.1:PORT --streams 500

The reference: ``agents.voice.models.openai_stt.OpenAISTTModel`` from openai-agents 0.24,
driven exactly as trio_client.py drives trio-stt (same audio, schedule and measurements).
Its input ends with ``add_audio(None)``, after which it commits, clears and ends once every
transcript has come. Prints one JSON line of measurements.
"""

from __future__ import annotations

import asyncio

from _cell import Measurements, frame, parse_args, stamped
from agents import set_tracing_disabled
from agents.voice import StreamedAudioInput, STTModelSettings
from agents.voice.models.openai_stt import OpenAISTTModel
from openai import AsyncOpenAI


async def one_session(
    model: OpenAISTTModel,
    index: int,
    measured: Measurements,
    ready: asyncio.Queue[None],
    go: asyncio.Event,
) -> None:
    args = measured.args
    await asyncio.sleep(index / args.streams)
    audio = StreamedAudioInput()
    session = await model.create_session(audio, STTModelSettings(), False, False)
    chunk, period = frame(args.frame_ms), args.frame_ms / 1000

    async def produce() -> None:
        while not session.connected:  # the reference connects on the first read of turns
            await asyncio.sleep(0.05)
        ready.put_nowait(None)
        await go.wait()
        await asyncio.sleep(index / args.streams)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(args.seconds * 1000 // args.frame_ms):
            await audio.add_audio(stamped(chunk))
            await asyncio.sleep(start + (i + 1) * period - loop.time())
        measured.fell_behind(loop.time() - (start + (i + 1) * period))
        await audio.add_audio(None)

    producer = asyncio.create_task(produce())
    async for text in session.transcribe_turns():
        measured.turn(text)
    await producer


async def main() -> None:
    args = parse_args(__doc__ or "")
    set_tracing_disabled(True)  # no exporter may reach for the network
    measured = Measurements(args)
    client = AsyncOpenAI(api_key="sk-bench", base_url=args.url.replace("ws://", "http://", 1),
                         websocket_base_url=args.url)  # fmt: skip
    model = OpenAISTTModel("gpt-4o-transcribe", client)
    ready: asyncio.Queue[None] = asyncio.Queue()
    go = asyncio.Event()
    measured.before_setup()
    tasks = [
        asyncio.create_task(one_session(model, i, measured, ready, go)) for i in range(args.streams)
    ]
    for _ in range(args.streams):
        await ready.get()
    measured.after_setup()
    measured.before_streaming()
    go.set()
    await asyncio.gather(*tasks)
    measured.after_streaming()
    measured.report()


if __name__ == "__main__":
    asyncio.run(main())
