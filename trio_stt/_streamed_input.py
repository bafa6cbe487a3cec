"""``StreamedAudioInput``: the producer side of a live session, bounded and coalescing.

Audio is converted as it is added, in the producer's task: a wrong dtype raises right there,
where the bug is, instead of inside the session. Resampling is stateful (one soxr stream per
input) so chunk edges do not click. The queue is bounded, so a producer faster than the
network waits in :meth:`~StreamedAudioInput.add_audio` instead of growing memory; closing it
is the end-of-input signal, there is no sentinel value.

Why not a memory channel: per-message cost is what a session spends its CPU on, and a
channel wakes its reader for every chunk. Here the producer wakes the session only when an
append is worth sending (the append policy: at least ``min_append_ms`` of audio, or audio
that has waited ``append_deadline_ms``, or a request behind it, or the end), so 20 ms frames
cost one wake and one message per 100 ms, not five of each. Adding audio while there is room
is a cancellation point but not a schedule point, as the producer's own pacing already yields.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt
import soxr
import trio

from ._audio import REALTIME_SAMPLE_RATE, frame_rms, to_mono_int16
from ._resource import AsyncClosing

__all__ = ["StreamedAudioInput", "AudioChunk", "AudioRequest", "AppendPolicy", "InputReader"]

AudioChunk = tuple[bytes, float]
"""Little-endian PCM16 mono 24 kHz bytes, and where (ms from its start) its last voiced 10 ms
frame ends, or -1.0 when none is voiced."""

BYTES_PER_MS = 48
"""24,000 samples a second, two bytes each."""


class AudioRequest:
    """A ``commit`` or ``clear`` from the session, queued behind the audio added before it.

    The queue carries both so that order is kept by construction: a clear can never
    overtake audio that was added before it and is still waiting to be sent. The session's
    own ``hand_over`` (rotation) goes ahead of everything instead: what is waiting is for
    the next connection.
    """

    __slots__ = ("done", "kind", "sent")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.done = trio.Event()
        self.sent = False


VOICED_RMS = 32768 * 10 ** (-45 / 20)
"""A 10 ms frame louder than -45 dBFS RMS counts as voiced: above a typical microphone's noise
floor, well below speech. It only decides whether the tail at end of input is worth a commit."""

_FRAME = 240  # 10 ms at 24 kHz
_VOICED_ENERGY = VOICED_RMS * VOICED_RMS * _FRAME


def voiced_until_ms(mono: npt.NDArray[np.int16]) -> float:
    """End of the last voiced 10 ms frame of 24 kHz *mono*, in ms from its start; -1 if none.

    Speech is usually voiced up to the end of a chunk, so the last frame is tried alone
    first: one small dot product instead of an RMS over every frame.
    """
    whole = mono.size // _FRAME
    if whole == 0:
        return -1.0
    last = mono[(whole - 1) * _FRAME : whole * _FRAME].astype(np.float32)
    if float(np.dot(last, last)) > _VOICED_ENERGY:
        return whole * 10.0
    voiced = np.flatnonzero(frame_rms(mono) > VOICED_RMS)
    return float((voiced[-1] + 1) * 10) if voiced.size else -1.0


class AppendPolicy:
    """When the session sends the audio waiting: the sizes, in bytes and seconds."""

    __slots__ = ("deadline", "max_bytes", "min_bytes")

    def __init__(self, min_ms: float, deadline_ms: float, max_ms: float) -> None:
        self.min_bytes = int(min_ms * BYTES_PER_MS)
        self.max_bytes = max(self.min_bytes, int(max_ms * BYTES_PER_MS))
        self.deadline = deadline_ms / 1000


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
        if max_buffered_chunks < 1:
            raise ValueError(f"max_buffered_chunks must be at least 1; got {max_buffered_chunks}")
        self.frame_rate = frame_rate
        self.channels = channels
        self._capacity = max_buffered_chunks
        self._resampler = (
            soxr.ResampleStream(frame_rate, REALTIME_SAMPLE_RATE, 1, dtype="int16")
            if frame_rate != REALTIME_SAMPLE_RATE
            else None
        )
        self._waiting: deque[AudioChunk | AudioRequest] = deque()
        self._audio_bytes = 0  # audio in _waiting
        self._requests = 0  # requests in _waiting
        self._oldest_audio_at = math.inf  # when the oldest audio in _waiting was added
        self._room = trio.lowlevel.ParkingLot()  # producers waiting for room
        self._reader: InputReader | None = None
        self._closed = False  # the input has ended
        self._session_over = False  # the reader is gone
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
            trio.BrokenResourceError: the session this input fed is over.
        """
        if audio is None:
            await self.aclose()
            return
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError("this StreamedAudioInput is closed")
        mono = to_mono_int16(audio, self.channels)
        if self._resampler is not None:
            mono = np.asarray(self._resampler.resample_chunk(mono), dtype=np.int16)
        if mono.size:
            await self._put((mono.astype("<i2", copy=False).tobytes(), voiced_until_ms(mono)))
            self.chunks_added += 1

    async def _put(self, item: AudioChunk | AudioRequest) -> None:  # noqa: ASYNC910
        """Queue *item* once there is room, and wake the reader if it is now worth sending.

        Every caller has just checked for cancellation, so this adds no checkpoint of its own
        (it runs once per chunk): it waits only while the queue is full.
        """
        while len(self._waiting) >= self._capacity and not self._session_over:
            await self._room.park()
        if self._session_over:
            raise trio.BrokenResourceError("the session this input fed is over")
        self._waiting.append(item)
        if isinstance(item, AudioRequest):
            self._requests += 1
        else:
            if not self._audio_bytes:
                self._oldest_audio_at = trio.current_time()
            self._audio_bytes += len(item[0])
        if self._reader is not None:
            self._reader._added()

    async def _request(self, request: AudioRequest) -> None:
        """Queue a commit or clear behind the audio already added (the session's side)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError("the input has ended; the session ends the last turn")
        try:
            await self._put(request)
        except trio.BrokenResourceError:
            raise trio.ClosedResourceError("the session this input fed is over") from None

    def _jump_queue(self, request: AudioRequest) -> None:
        """Put *request* before everything waiting, and wake the reader for it."""
        self._waiting.appendleft(request)
        self._requests += 1
        if self._reader is not None:
            self._reader._added()

    async def aclose(self) -> None:
        """End the input: the session commits what is left (if it holds speech) and finishes."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            return
        self._closed = True
        try:
            if self._resampler is not None and not self._session_over:
                tail = np.asarray(
                    self._resampler.resample_chunk(np.zeros(0, np.int16), last=True),
                    dtype=np.int16,
                )
                if tail.size:
                    await self._put((tail.tobytes(), voiced_until_ms(tail)))
        finally:
            if self._reader is not None:
                self._reader._added()

    def _take(self, policy: AppendPolicy) -> InputReader:
        """The reading end, for exactly one session."""
        if self._reader is not None or self._session_over:
            raise RuntimeError("a StreamedAudioInput feeds one session only; make a new one")
        self._reader = InputReader(self, policy)
        return self._reader


class InputReader:
    """The session's end of a :class:`StreamedAudioInput`: what to send next, and when.

    Requests come out in order with the audio. Audio comes out joined into appends of at
    least ``policy.min_bytes`` (up to ``max_bytes``), or less when it has waited
    ``policy.deadline``, when a request is behind it, or when the input has ended.
    """

    def __init__(self, source: StreamedAudioInput, policy: AppendPolicy) -> None:
        self._source = source
        self._policy = policy
        self._wake = trio.lowlevel.ParkingLot()
        self._idle = False  # next() waits for any input at all
        self._parked: trio.CancelScope | None = None  # next() waits for more, or a deadline

    async def next(self) -> AudioChunk | AudioRequest | None:
        """The next request, or audio worth an append; ``None`` once the input has ended."""
        await trio.lowlevel.checkpoint_if_cancelled()
        source, policy = self._source, self._policy
        while True:
            waiting = source._waiting
            if waiting:
                head = waiting[0]
                if isinstance(head, AudioRequest):
                    waiting.popleft()
                    source._requests -= 1
                    self._made_room()
                    return head
                if (
                    source._audio_bytes >= policy.min_bytes
                    or source._requests
                    or source._closed
                    or trio.current_time() >= source._oldest_audio_at + policy.deadline
                ):
                    return self._take_audio()
            elif source._closed:
                return None
            if not waiting:  # nothing to time: park bare, which costs no cancel scope
                self._idle = True
                try:
                    await self._wake.park()
                finally:
                    self._idle = False
                continue
            try:
                with trio.CancelScope(deadline=source._oldest_audio_at + policy.deadline) as parked:
                    self._parked = parked
                    await self._wake.park()
            finally:
                self._parked = None

    def _added(self) -> None:
        """The producer added something (or ended): wake us if it is worth sending now.

        A reader parked on an empty queue always wakes: if the audio is still short of an
        append, it parks again under a deadline of its own.
        """
        if self._idle:
            self._wake.unpark_all()
        elif self._parked is not None:
            source = self._source
            if source._closed or source._requests or source._audio_bytes >= self._policy.min_bytes:
                self._wake.unpark_all()

    def _take_audio(self) -> AudioChunk:
        """Join the audio at the head of the queue, up to ``max_bytes``, stopping at a request."""
        source = self._source
        waiting = source._waiting
        head = waiting.popleft()
        assert not isinstance(head, AudioRequest)
        pcm, voiced = head
        size, limit = len(pcm), self._policy.max_bytes
        chunks = None
        while size < limit and waiting:
            more = waiting[0]
            if isinstance(more, AudioRequest):
                break
            waiting.popleft()
            if more[1] >= 0:
                voiced = size / BYTES_PER_MS + more[1]
            if chunks is None:
                chunks = [pcm]
            chunks.append(more[0])
            size += len(more[0])
        if chunks is not None:
            pcm = b"".join(chunks)
        source._audio_bytes -= size
        if not source._audio_bytes:
            source._oldest_audio_at = math.inf
        self._made_room()
        return pcm, voiced

    def _made_room(self) -> None:
        if self._source._room:
            self._source._room.unpark_all()

    def close(self) -> list[AudioRequest]:
        """The session is over: nothing more is taken. Returns the requests never sent, and
        wakes producers waiting for room (their ``add_audio`` raises)."""
        source = self._source
        source._session_over = True
        unsent = [item for item in source._waiting if isinstance(item, AudioRequest)]
        source._waiting.clear()
        source._audio_bytes = source._requests = 0
        source._room.unpark_all()
        return unsent
