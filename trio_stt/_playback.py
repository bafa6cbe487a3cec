"""Play recorded audio through a live session, as a microphone would, and collect its turns.

The ``stream`` and ``demo`` commands both do this. Sending is paced at real time by default,
so the session sees what it would see from a live source; ``realtime=False`` sends as fast as
backpressure allows. Events (deltas, completions, ...) and turns are reported through
callbacks as they arrive, in one stream: each turn's callback comes after the events that
finished it. Turns are also returned, in commit order.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from functools import partial

import numpy as np
import numpy.typing as npt
import trio

from ._audio_files import read_audio, read_g711
from ._model import OpenAISTTModel
from ._protocol import AudioFormat, RealtimeEvent, Turn
from ._session import SessionOptions
from ._settings import STTModelSettings
from ._streamed_input import StreamedAudioInput

__all__ = ["play_into", "feed_from_file", "transcribe_live", "collect_turns"]


Frames = npt.NDArray[np.int16] | npt.NDArray[np.uint8]
"""Samples, or G.711 codes for an input that sends G.711."""


async def play_into(
    audio: StreamedAudioInput,
    frames: Frames,
    frame_rate: int,
    *,
    chunk_ms: int = 100,
    realtime: bool = True,
    on_sent: Callable[[float], None] | None = None,
) -> None:
    """Add *frames* to *audio* in ``chunk_ms`` pieces, then end the input.

    *on_sent* hears how many seconds of audio have been handed over after each piece.
    """
    step = max(1, frame_rate * chunk_ms // 1000)
    start = trio.current_time()
    for i, begin in enumerate(range(0, len(frames), step)):
        await audio.add_audio(frames[begin : begin + step])
        if on_sent is not None:
            on_sent(min(len(frames), begin + step) / frame_rate)
        if realtime:
            await trio.sleep_until(start + (i + 1) * chunk_ms / 1000)
    await audio.aclose()


async def feed_from_file(
    audio: StreamedAudioInput,
    path: str | os.PathLike[str],
    *,
    chunk_ms: int = 100,
    realtime: bool = True,
) -> None:
    """Play an audio file (any format :func:`read_audio` reads) into *audio*, then end it.

    Paced at real time, as a microphone would deliver it, unless ``realtime=False``. The
    file is decoded in a worker thread and converted to *audio*'s rate and channels; for a
    G.711 input it is encoded in its law, and a headerless file of that law
    (``.ulaw``, ``.alaw``) is sent as it is.

    Example:
        ```python
        audio = StreamedAudioInput()
        async with model.create_session(audio) as session, trio.open_nursery() as nursery:
            nursery.start_soon(feed_from_file, audio, "talk.wav")
            async for text in session.transcribe_turns():
                print(text)
        ```
    """
    if audio.format != "audio/pcm":
        codes = await trio.to_thread.run_sync(read_g711, path, audio.format)
        frames: Frames = np.frombuffer(codes, np.uint8)
    else:
        mono = await trio.to_thread.run_sync(lambda: read_audio(path).mono(audio.frame_rate))
        if audio.channels != 1:
            mono = np.repeat(mono, audio.channels)  # interleaved, as the input expects
        frames = mono.reshape(-1, audio.channels)
    await play_into(audio, frames, audio.frame_rate, chunk_ms=chunk_ms, realtime=realtime)


async def transcribe_live(
    model: OpenAISTTModel,
    frames: Frames,
    frame_rate: int,
    settings: STTModelSettings,
    *,
    channels: int = 1,
    audio_format: AudioFormat = "audio/pcm",
    chunk_ms: int = 100,
    realtime: bool = True,
    options: SessionOptions | None = None,
    on_event: Callable[[RealtimeEvent], None] | None = None,
    on_turn: Callable[[str], None] | None = None,
    on_sent: Callable[[float], None] | None = None,
) -> list[str]:
    """Stream *frames* (G.711 codes for a G.711 *audio_format*) through a new session;
    return its turns in commit order."""
    audio = StreamedAudioInput(frame_rate=frame_rate, channels=channels, format=audio_format)
    play = partial(
        play_into,
        audio,
        frames,
        frame_rate,
        chunk_ms=chunk_ms,
        realtime=realtime,
        on_sent=on_sent,
    )
    return await collect_turns(
        model, audio, settings, play, options=options, on_event=on_event, on_turn=on_turn
    )


async def collect_turns(
    model: OpenAISTTModel,
    audio: StreamedAudioInput,
    settings: STTModelSettings,
    feed: Callable[[], Awaitable[object]],
    *,
    options: SessionOptions | None = None,
    on_event: Callable[[RealtimeEvent], None] | None = None,
    on_turn: Callable[[str], None] | None = None,
) -> list[str]:
    """Run a session on *audio* while *feed* fills it; return the turns in commit order."""
    turns: list[str] = []
    session_cm = model.create_session(audio, settings, options=options)
    async with session_cm as session, trio.open_nursery() as nursery:
        nursery.start_soon(feed)
        async for event in session.events():
            if on_event is not None:
                on_event(event)
            if isinstance(event, Turn) and event.text and not event.failed:
                turns.append(event.text)
                if on_turn is not None:
                    on_turn(event.text)
    return turns
