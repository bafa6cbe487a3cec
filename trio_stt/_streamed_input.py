"""``StreamedAudioInput``: the producer side of a live session, bounded.

Audio is converted as it is added, in the producer's task: a wrong dtype raises right there,
where the bug is, instead of inside the session. Resampling is stateful (one soxr stream per
input) so chunk edges do not click. The channel is bounded, so a producer faster than the
network waits in :meth:`add_audio` instead of growing memory; closing it is the end-of-input
signal, there is no sentinel value.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr
import trio

from ._audio import REALTIME_SAMPLE_RATE, frame_rms, to_mono_int16
from ._resource import AsyncClosing

__all__ = ["StreamedAudioInput", "AudioChunk", "AudioRequest", "InputReader"]

AudioChunk = tuple[bytes, float]
"""Little-endian PCM16 mono 24 kHz bytes, and where (ms from its start) its last voiced 10 ms
frame ends, or -1.0 when none is voiced."""


class AudioRequest:
    """A ``commit`` or ``clear`` from the session, queued behind the audio added before it.

    The channel carries both so that order is kept by construction: a clear can never
    overtake audio that was added before it and is still waiting to be sent.
    """

    __slots__ = ("done", "kind", "sent")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.done = trio.Event()
        self.sent = False


VOICED_RMS = 32768 * 10 ** (-45 / 20)
"""A 10 ms frame louder than -45 dBFS RMS counts as voiced: above a typical microphone's noise
floor, well below speech. It only decides whether the tail at end of input is worth a commit."""


def voiced_until_ms(mono: npt.NDArray[np.int16]) -> float:
    """End of the last voiced 10 ms frame of 24 kHz *mono*, in ms from its start; -1 if none."""
    voiced = np.flatnonzero(frame_rms(mono) > VOICED_RMS)
    return float((voiced[-1] + 1) * 10) if voiced.size else -1.0


class StreamedAudioInput(AsyncClosing):
    """Live audio for :meth:`OpenAISTTModel.create_session`.

    Args:
        frame_rate: the rate of the arrays you will add (resampled to 24 kHz when different).
        channels: channels of the arrays you will add (downmixed to mono).
        max_buffered_chunks: how many added chunks may wait to be sent before
            :meth:`add_audio` blocks.
    """

    def __init__(
        self,
        *,
        frame_rate: int = REALTIME_SAMPLE_RATE,
        channels: int = 1,
        max_buffered_chunks: int = 32,
    ) -> None:
        self.frame_rate = frame_rate
        self.channels = channels
        self._send, self._receive = trio.open_memory_channel[AudioChunk | AudioRequest](
            max_buffered_chunks
        )
        self._resampler = (
            soxr.ResampleStream(frame_rate, REALTIME_SAMPLE_RATE, 1, dtype="int16")
            if frame_rate != REALTIME_SAMPLE_RATE
            else None
        )
        self._taken = False
        self._closed = False
        self.chunks_added = 0

    def __repr__(self) -> str:
        return (
            f"<StreamedAudioInput {self.frame_rate} Hz x{self.channels} "
            f"added={self.chunks_added} closed={self._closed}>"
        )

    async def add_audio(
        self, audio: npt.NDArray[np.int16] | npt.NDArray[np.float32] | None
    ) -> None:
        """Queue a chunk for sending; waits while the buffer is full. ``None`` ends the input.

        Raises:
            AudioFormatError: the array is not audio we can send (named in the message).
            trio.ClosedResourceError: the input was already closed.
        """
        if audio is None:
            await self.aclose()
            return
        if self._closed:
            raise trio.ClosedResourceError("this StreamedAudioInput is closed")
        mono = to_mono_int16(audio, self.channels)
        if self._resampler is not None:
            mono = np.asarray(self._resampler.resample_chunk(mono), dtype=np.int16)
        await self._put(mono)

    async def _put(self, mono: npt.NDArray[np.int16]) -> None:
        if mono.size == 0:
            await trio.lowlevel.checkpoint()
            return
        chunk = (mono.astype("<i2", copy=False).tobytes(), voiced_until_ms(mono))
        await self._send.send(chunk)
        self.chunks_added += 1

    async def _request(self, request: AudioRequest) -> None:
        """Queue a commit or clear behind the audio already added (the session's side)."""
        if self._closed:
            raise trio.ClosedResourceError("the input has ended; the session ends the last turn")
        try:
            await self._send.send(request)
        except trio.BrokenResourceError:
            raise trio.ClosedResourceError("the session this input fed is over") from None

    async def aclose(self) -> None:
        """End the input: the session commits what is left (if it holds speech) and finishes."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        if self._resampler is not None:
            tail = np.asarray(
                self._resampler.resample_chunk(np.zeros(0, np.int16), last=True), dtype=np.int16
            )
            try:
                await self._put(tail)
            finally:
                await self._send.aclose()
        else:
            await self._send.aclose()

    def _take(self) -> trio.MemoryReceiveChannel[AudioChunk | AudioRequest]:
        """The receiving end, for exactly one session."""
        if self._taken:
            raise RuntimeError("a StreamedAudioInput feeds one session only; make a new one")
        self._taken = True
        return self._receive


class InputReader:
    """The session's end of a :class:`StreamedAudioInput`: what to send next, coalesced.

    Audio already waiting is joined into one chunk (up to *max_bytes*), because per-message
    cost dominates under load; a request stops the joining and comes out next, in order.
    """

    def __init__(
        self, channel: trio.MemoryReceiveChannel[AudioChunk | AudioRequest], max_bytes: int
    ) -> None:
        self._channel = channel
        self._max_bytes = max_bytes
        self._held: AudioChunk | AudioRequest | None = None
        self._ended = False

    async def next(self) -> AudioChunk | AudioRequest | None:
        """The next request, or the audio waiting; ``None`` once the input has ended."""
        item, self._held = self._held, None
        if item is None and not self._ended:
            item = await self._receive()
        else:
            await trio.lowlevel.checkpoint()
        if item is None or isinstance(item, AudioRequest):
            return item
        pcm, voiced = item
        chunks, size = [pcm], len(pcm)
        while size < self._max_bytes:
            try:
                more = self._channel.receive_nowait()
            except trio.WouldBlock:
                break
            except trio.EndOfChannel:
                self._ended = True
                break
            if isinstance(more, AudioRequest):
                self._held = more
                break
            if more[1] >= 0:
                voiced = size / 48 + more[1]  # 48 bytes per ms of 24 kHz PCM16
            chunks.append(more[0])
            size += len(more[0])
        return (pcm if len(chunks) == 1 else b"".join(chunks)), voiced

    async def _receive(self) -> AudioChunk | AudioRequest | None:
        try:
            return await self._channel.receive()
        except trio.EndOfChannel:
            self._ended = True
        await trio.lowlevel.checkpoint()
        return None
