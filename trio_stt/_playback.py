"""Play recorded audio through a live session, as a microphone would, and collect its turns.

The ``stream`` and ``demo`` commands both do this. Sending is paced at real time by default,
so the session sees what it would see from a live source; ``realtime=False`` sends as fast as
backpressure allows. Events (deltas, completions, ...) and turns are reported through
callbacks as they arrive, from two tasks, so their relative order is not fixed; turns are also
returned, in commit order.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import numpy.typing as npt
import trio

from ._model import OpenAISTTModel
from ._protocol import RealtimeEvent
from ._session import SessionOptions
from ._settings import STTModelSettings
from ._streamed_input import StreamedAudioInput

__all__ = ["play_into", "transcribe_live"]


async def play_into(
    audio: StreamedAudioInput,
    frames: npt.NDArray[np.int16],
    frame_rate: int,
    *,
    chunk_ms: int = 100,
    realtime: bool = True,
) -> None:
    """Add *frames* to *audio* in ``chunk_ms`` pieces, then end the input."""
    step = max(1, frame_rate * chunk_ms // 1000)
    start = trio.current_time()
    for i, begin in enumerate(range(0, len(frames), step)):
        await audio.add_audio(frames[begin : begin + step])
        if realtime:
            await trio.sleep_until(start + (i + 1) * chunk_ms / 1000)
    await audio.aclose()


async def transcribe_live(
    model: OpenAISTTModel,
    frames: npt.NDArray[np.int16],
    frame_rate: int,
    settings: STTModelSettings,
    *,
    channels: int = 1,
    chunk_ms: int = 100,
    realtime: bool = True,
    options: SessionOptions | None = None,
    on_event: Callable[[RealtimeEvent], None] | None = None,
    on_turn: Callable[[str], None] | None = None,
) -> list[str]:
    """Stream *frames* through a new session; return its turns in commit order."""
    audio = StreamedAudioInput(frame_rate=frame_rate, channels=channels)
    turns: list[str] = []
    async with model.create_session(audio, settings, options=options) as session:
        turns_rx, events_rx = session.transcribe_turns(), session.events()

        async def watch_events() -> None:
            async for event in events_rx:
                if on_event is not None:
                    on_event(event)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_events)
            nursery.start_soon(
                partial(play_into, audio, frames, frame_rate, chunk_ms=chunk_ms, realtime=realtime)
            )
            async for turn in turns_rx:
                turns.append(turn)
                if on_turn is not None:
                    on_turn(turn)
    return turns
