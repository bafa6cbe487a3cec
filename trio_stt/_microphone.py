"""The microphone as a live source: PortAudio (through ``sounddevice``) into a session.

PortAudio calls back from a thread of its own, at the device's pace, and must never be made
to wait: a callback that blocks makes the device drop audio, or glitch. So each block is
copied and handed to trio with :meth:`trio.lowlevel.TrioToken.run_sync_soon`, which only
queues a function call, and that call puts the block in a bounded memory channel without
waiting. If trio falls that far behind (the session stalls for seconds), blocks are dropped
at the channel rather than piling up without bound, and counted, so the loss is known.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import trio

from ._audio import REALTIME_SAMPLE_RATE
from ._errors import MissingDependencyError
from ._streamed_input import StreamedAudioInput
from ._supervise import open_supervised_nursery

__all__ = ["feed_from_microphone", "open_microphone", "MicrophoneStats", "import_sounddevice"]


def import_sounddevice() -> Any:
    """``sounddevice``, or an error that says what to install (the package, or PortAudio)."""
    try:
        import sounddevice
    except ImportError as exc:
        raise MissingDependencyError("sounddevice", "the microphone", extra="mic") from exc
    except OSError as exc:  # the package is there but the PortAudio library is not
        raise MissingDependencyError(
            "PortAudio",
            "the microphone",
            hint="it is a system library: apt install libportaudio2 on Debian and Ubuntu "
            "(the macOS and Windows wheels of sounddevice carry it)",
        ) from exc
    return sounddevice


@dataclass
class MicrophoneStats:
    """What the device delivered: seconds captured, and seconds dropped and why."""

    captured_seconds: float = 0.0
    dropped_seconds: float = 0.0  # trio fell behind by more than the queue holds
    overflows: int = 0  # the device itself lost input (PortAudio's input_overflow)


Block = npt.NDArray[np.int16]


async def feed_from_microphone(
    audio: StreamedAudioInput,
    *,
    device: int | str | None = None,
    block_ms: int = 100,
    max_queued_blocks: int = 50,
    stats: MicrophoneStats | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Feed *audio* from an input device (the default one) until cancelled, then end it.

    Run it beside a session, in your nursery; cancel it to stop listening, and the session
    ends the last turn as it would at the end of a file.

    *audio* must be made with ``frame_rate=24000, channels=1`` (the defaults): the device
    is asked for that, and PortAudio converts. Up to *max_queued_blocks* blocks of
    *block_ms* wait for the session; beyond that, blocks are dropped and counted in *stats*.

    Example:
        ```python
        audio = StreamedAudioInput()
        async with model.create_session(audio) as session, trio.open_nursery() as nursery:
            await nursery.start(feed_from_microphone, audio)  # the device is running
            async for text in session.transcribe_turns():
                print(text)
        ```

    Raises:
        MissingDependencyError: ``sounddevice`` or PortAudio is not installed.
        sounddevice.PortAudioError: the device cannot be opened.
    """
    if audio.frame_rate != REALTIME_SAMPLE_RATE or audio.channels != 1:
        raise ValueError(
            f"feed_from_microphone needs a StreamedAudioInput of {REALTIME_SAMPLE_RATE} Hz "
            f"mono; got {audio.frame_rate} Hz x{audio.channels}"
        )
    if block_ms <= 0 or max_queued_blocks < 1:
        raise ValueError("block_ms must be positive and max_queued_blocks at least 1")
    sounddevice = import_sounddevice()
    stats = stats if stats is not None else MicrophoneStats()
    send, receive = trio.open_memory_channel[Block](max_queued_blocks)
    deliver = _deliverer(send, stats)
    token = trio.lowlevel.current_trio_token()

    def callback(indata: npt.NDArray[np.int16], frames: int, time: Any, status: Any) -> None:
        # PortAudio's thread: copy (the buffer is reused) and hand over; never wait.
        if status.input_overflow:
            stats.overflows += 1
        with contextlib.suppress(trio.RunFinishedError):  # trio is gone: closing
            token.run_sync_soon(deliver, indata[:, 0].copy())

    def open_stream() -> Any:
        stream = sounddevice.InputStream(
            samplerate=REALTIME_SAMPLE_RATE,
            blocksize=REALTIME_SAMPLE_RATE * block_ms // 1000,
            device=device,
            channels=1,
            dtype="int16",
            callback=callback,
        )
        stream.start()
        return stream

    stream = await trio.to_thread.run_sync(open_stream)
    try:
        task_status.started()
        async with receive:
            async for block in receive:
                try:
                    await audio.add_audio(block)
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    return  # the input was ended (to keep the last turn) or its session is
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(stream.close)
            send.close()
            with trio.move_on_after(1):  # the input ends, so the last turn is committed
                await audio.aclose()


@asynccontextmanager
async def open_microphone(
    *,
    device: int | str | None = None,
    block_ms: int = 100,
    max_queued_blocks: int = 50,
    stats: MicrophoneStats | None = None,
) -> AsyncIterator[StreamedAudioInput]:
    """An input device (the default one) as a live source, listening for the block.

    The device is open before the block starts, so a missing PortAudio or a device that
    cannot be opened is raised as itself from the ``async with``, not in an exception
    group from a nursery of yours. To stop listening and keep the last turn, end the input
    (``await audio.aclose()``): the session commits what was said and its events end.
    Leaving the block closes the device. The options are :func:`feed_from_microphone`'s.

    Example:
        ```python
        async with open_microphone() as audio, model.create_session(audio) as session:
            async for text in session.transcribe_turns():
                print(text)
        ```

    It raises what :func:`feed_from_microphone` raises before the device runs, from the
    ``async with`` itself.
    """
    audio = StreamedAudioInput()
    feed = partial(
        feed_from_microphone,
        audio,
        device=device,
        block_ms=block_ms,
        max_queued_blocks=max_queued_blocks,
        stats=stats,
    )
    async with open_supervised_nursery(_first_failure) as nursery:
        await nursery.start(feed)
        yield audio
        nursery.cancel_scope.cancel()


def _first_failure(failures: Sequence[BaseException]) -> BaseException:
    return failures[0]


def _deliverer(
    send: trio.MemorySendChannel[Block], stats: MicrophoneStats
) -> Callable[[Block], None]:
    def deliver(block: Block) -> None:
        seconds = len(block) / REALTIME_SAMPLE_RATE
        try:
            send.send_nowait(block)
        except trio.WouldBlock:
            stats.dropped_seconds += seconds
            return
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return  # blocks still in flight from the device while it closes
        stats.captured_seconds += seconds

    return deliver
