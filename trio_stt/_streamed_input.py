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

import enum
import math
from collections import deque

import numpy as np
import numpy.typing as npt
import soxr
import trio

from ._audio import REALTIME_SAMPLE_RATE, to_mono_int16
from ._errors import AudioFormatError
from ._protocol import BYTES_PER_MS, PCM, AudioFormat, WireFormat, wire_format
from ._resource import AsyncClosing

__all__ = [
    "StreamedAudioInput",
    "AudioChunk",
    "AddedAudio",
    "AudioRequest",
    "Intent",
    "HandOver",
    "AppendPolicy",
    "InputReader",
]

AudioChunk = tuple[bytes, float]
"""Audio as it is sent (little-endian PCM16 mono 24 kHz, or G.711), and where (ms from its
start) its last voiced 10 ms frame ends, or -1.0 when none is voiced."""

AddedAudio = (
    npt.NDArray[np.int16]
    | npt.NDArray[np.float32]
    | npt.NDArray[np.uint8]
    | bytes
    | bytearray
    | memoryview
)
"""What :meth:`StreamedAudioInput.add_audio` takes: int16 or float32 sample arrays for PCM,
bytes (or a 1-D uint8 array of them) for G.711."""

_BYTES = (bytes, bytearray, memoryview)


def _pcm_samples(audio: object) -> object:
    """Refuse, with what to do instead, the two mistakes that would send noise: bytes (whose
    encoding we cannot know) and uint8 arrays (G.711 codes, not samples)."""
    given = type(audio).__name__
    if isinstance(audio, np.ndarray) and audio.dtype == np.uint8:
        given = "a uint8 array"
    elif not isinstance(audio, _BYTES):
        return audio
    raise AudioFormatError(
        f"got {given}: this input sends audio/pcm and takes int16 or float32 sample arrays. "
        "For G.711 bytes, open StreamedAudioInput(format='audio/pcmu') or 'audio/pcma'; "
        "for PCM16 bytes, add np.frombuffer(data, '<i2')"
    )


def _g711_bytes(audio: object, name: str) -> bytes:
    """The bytes of a G.711 chunk, which are sent as they are."""
    if isinstance(audio, bytes):
        data = audio
    elif isinstance(audio, (bytearray, memoryview)):
        data = bytes(audio)
    elif isinstance(audio, np.ndarray) and audio.dtype == np.uint8 and audio.ndim == 1:
        data = audio.tobytes()
    else:
        given = (
            f"an array of {audio.dtype}, shape {audio.shape}"
            if isinstance(audio, np.ndarray)
            else type(audio).__name__
        )
        raise AudioFormatError(
            f"got {given}: this input sends {name} as it came and takes its bytes (bytes, "
            "bytearray, or a 1-D uint8 array). Sample arrays need "
            "StreamedAudioInput(format='audio/pcm')"
        )
    if not data:
        raise AudioFormatError("audio chunk is empty; expected at least one G.711 byte")
    return data


class Intent(enum.Enum):
    """What a request asks of the server: the one spelling from :meth:`commit` to the core."""

    COMMIT = "commit"
    CLEAR = "clear"


class AudioRequest:
    """A commit or clear from the session, queued behind the audio added before it.

    The queue carries both so that order is kept by construction: a clear can never
    overtake audio that was added before it and is still waiting to be sent. ``done`` is
    set when the request is settled, ``sent`` tells whether it went out whole.
    """

    __slots__ = ("done", "intent", "sent")

    def __init__(self, intent: Intent) -> None:
        self.intent = intent
        self.done = trio.Event()
        self.sent = False

    def settle(self, sent: bool) -> None:
        self.sent = sent
        self.done.set()


class HandOver(enum.Enum):
    """What :meth:`InputReader.next` returns once :meth:`InputReader.interrupt` was called:
    the stream moves to another connection, and what is waiting is for that one."""

    NOW = "hand over"


class AppendPolicy:
    """When the session sends the audio waiting: the sizes, in bytes and seconds."""

    __slots__ = ("deadline", "max_bytes", "min_bytes")

    def __init__(
        self, min_ms: float, deadline_ms: float, max_ms: float, bytes_per_ms: int = BYTES_PER_MS
    ) -> None:
        self.min_bytes = int(min_ms * bytes_per_ms)
        self.max_bytes = max(self.min_bytes, int(max_ms * bytes_per_ms))
        self.deadline = deadline_ms / 1000


class _Queue:
    """The state a :class:`StreamedAudioInput` and its :class:`InputReader` share: what
    waits to be sent, in order, and the two ends' conditions."""

    __slots__ = (
        "audio_bytes", "capacity", "closed", "oldest_audio_at", "requests", "room",
        "session_over", "waiting", "wire",
    )  # fmt: skip

    def __init__(self, capacity: int, wire: WireFormat) -> None:
        self.capacity = capacity
        self.wire = wire  # what the bytes are
        self.waiting: deque[bytes | AudioRequest] = deque()
        self.audio_bytes = 0  # audio in waiting
        self.requests = 0  # requests in waiting
        self.oldest_audio_at = math.inf  # when the oldest audio in waiting was added
        self.room = trio.lowlevel.ParkingLot()  # producers waiting for room
        self.closed = False  # the input has ended
        self.session_over = False  # the reader is gone


class StreamedAudioInput(AsyncClosing):
    """Live audio for :meth:`OpenAISTTModel.create_session`.

    Args:
        frame_rate: the rate of the arrays you will add (resampled to 24 kHz when different).
        channels: channels of the arrays you will add (downmixed to mono).
        max_buffered_chunks: how many added chunks may wait to be sent before
            :meth:`add_audio` blocks.
        format: what the session sends. ``"audio/pcm"`` (the default): 24 kHz PCM16,
            converted from the int16 or float32 arrays you add. ``"audio/pcmu"`` or
            ``"audio/pcma"``: G.711 µ-law or A-law, 8 kHz mono, as a phone call delivers
            it; you add its bytes and they are sent as they are, a sixth of the bytes of
            PCM and no conversion.
    """

    def __init__(
        self,
        *,
        frame_rate: int | None = None,
        channels: int = 1,
        max_buffered_chunks: int = 32,
        format: AudioFormat = "audio/pcm",  # OpenAI's own name for it, though a builtin's
    ) -> None:
        if max_buffered_chunks < 1:
            raise ValueError(f"max_buffered_chunks must be at least 1; got {max_buffered_chunks}")
        wire = wire_format(format)
        if wire.g711 and (frame_rate not in (None, wire.sample_rate) or channels != 1):
            raise ValueError(
                f"{wire.name} is G.711: 8000 Hz mono, sent as it is; got frame_rate="
                f"{frame_rate}, channels={channels}. Convert other audio with format='audio/pcm'"
            )
        self.format: AudioFormat = wire.name
        self.frame_rate = wire.sample_rate if frame_rate is None else frame_rate
        self.channels = channels
        self._resampler = (
            soxr.ResampleStream(self.frame_rate, REALTIME_SAMPLE_RATE, 1, dtype="int16")
            if self.frame_rate != wire.sample_rate
            else None
        )
        self._queue = _Queue(max_buffered_chunks, wire)
        self._reader: InputReader | None = None
        self.chunks_added = 0

    def __repr__(self) -> str:
        kind = "" if self.format == PCM.name else f" {self.format}"
        return (
            f"<StreamedAudioInput{kind} {self.frame_rate} Hz x{self.channels} "
            f"added={self.chunks_added} closed={self._queue.closed}>"
        )

    async def add_audio(self, audio: AddedAudio | None) -> None:
        """Queue a chunk for sending; waits while the buffer is full. ``None`` ends the input.

        A PCM input takes int16 or float32 arrays; a G.711 input takes bytes (or a 1-D
        uint8 array) of its law, any number of them.

        Raises:
            AudioFormatError: the chunk is not audio this input sends (named in the message).
            trio.ClosedResourceError: the input was already closed.
            trio.BrokenResourceError: the session this input fed is over.
        """
        if audio is None:
            await self.aclose()
            return
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._queue.closed:
            raise trio.ClosedResourceError("this StreamedAudioInput is closed")
        if self._queue.wire.g711:
            data = _g711_bytes(audio, self.format)
        else:
            mono = to_mono_int16(_pcm_samples(audio), self.channels)
            if self._resampler is not None:
                mono = np.asarray(self._resampler.resample_chunk(mono), dtype=np.int16)
            data = mono.astype("<i2", copy=False).tobytes()
        if data:
            await self._put(data)
            self.chunks_added += 1

    async def _put(self, item: bytes | AudioRequest) -> None:  # noqa: ASYNC910
        """Queue *item* once there is room, and wake the reader if it is now worth sending.

        Every caller has just checked for cancellation, so this adds no checkpoint of its own
        (it runs once per chunk): it waits only while the queue is full.
        """
        queue = self._queue
        while len(queue.waiting) >= queue.capacity and not queue.session_over:
            await queue.room.park()
        if queue.session_over:
            raise trio.BrokenResourceError("the session this input fed is over")
        queue.waiting.append(item)
        if isinstance(item, AudioRequest):
            queue.requests += 1
        else:
            if not queue.audio_bytes:
                queue.oldest_audio_at = trio.current_time()
            queue.audio_bytes += len(item)
        if self._reader is not None:
            self._reader.added()

    async def _request(self, request: AudioRequest) -> None:
        """Queue a commit or clear behind the audio already added (the session's side)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._queue.closed:
            raise trio.ClosedResourceError("the input has ended; the session ends the last turn")
        try:
            await self._put(request)
        except trio.BrokenResourceError:
            raise trio.ClosedResourceError("the session this input fed is over") from None

    async def aclose(self) -> None:
        """End the input: the session commits what is left (if it holds speech) and finishes."""
        await trio.lowlevel.checkpoint_if_cancelled()
        queue = self._queue
        if queue.closed:
            return
        queue.closed = True
        try:
            if self._resampler is not None and not queue.session_over:
                tail = np.asarray(
                    self._resampler.resample_chunk(np.zeros(0, np.int16), last=True),
                    dtype=np.int16,
                )
                if tail.size:
                    await self._put(tail.tobytes())
        finally:
            if self._reader is not None:
                self._reader.added()

    def _take(self, policy: AppendPolicy) -> InputReader:
        """The reading end, for exactly one session."""
        if self._reader is not None or self._queue.session_over:
            raise RuntimeError("a StreamedAudioInput feeds one session only; make a new one")
        self._reader = InputReader(self._queue, policy)
        return self._reader


class InputReader:
    """The session's end of a :class:`StreamedAudioInput`: what to send next, and when.

    Requests come out in order with the audio. Audio comes out joined into appends of at
    least ``policy.min_bytes`` (up to ``max_bytes``), or less when it has waited
    ``policy.deadline``, when a request is behind it, or when the input has ended.
    """

    __slots__ = ("_interrupted", "_parked", "_policy", "_queue", "_wake")

    def __init__(self, queue: _Queue, policy: AppendPolicy) -> None:
        self._queue = queue
        self._policy = policy
        self._wake = trio.lowlevel.ParkingLot()
        self._parked: trio.CancelScope | None = None  # next() waits for more, or a deadline
        self._interrupted = False

    @property
    def ended(self) -> bool:
        """The input has ended (what is still waiting will be sent)."""
        return self._queue.closed

    async def next(self) -> AudioChunk | AudioRequest | HandOver | None:
        """The next request, or audio worth an append; ``None`` once the input has ended;
        :attr:`HandOver.NOW` once, after :meth:`interrupt`."""
        await trio.lowlevel.checkpoint_if_cancelled()
        queue, policy = self._queue, self._policy
        while True:
            if self._interrupted:
                self._interrupted = False
                return HandOver.NOW
            waiting = queue.waiting
            if waiting:
                head = waiting[0]
                if isinstance(head, AudioRequest):
                    waiting.popleft()
                    queue.requests -= 1
                    self._made_room()
                    return head
                if (
                    queue.audio_bytes >= policy.min_bytes
                    or queue.requests
                    or queue.closed
                    or trio.current_time() >= queue.oldest_audio_at + policy.deadline
                ):
                    return self._take_audio()
            elif queue.closed:
                return None
            # One park per append: if the first audio arrives while we wait, the producer
            # sets the deadline (added()) instead of waking us to set it ourselves.
            deadline = queue.oldest_audio_at + policy.deadline if waiting else math.inf
            try:
                with trio.CancelScope(deadline=deadline) as parked:
                    self._parked = parked
                    await self._wake.park()
            finally:
                self._parked = None

    def interrupt(self, hand_over: bool = True) -> None:
        """Make :meth:`next` return :attr:`HandOver.NOW` before anything waiting (or, with
        ``False``, take back an interruption not yet seen)."""
        self._interrupted = hand_over
        if hand_over:
            self._wake.unpark_all()

    def added(self) -> None:
        """The producer added something (or ended): wake us if it is worth sending now, or
        else start the clock on the audio that waits (``append_deadline_ms``)."""
        parked = self._parked
        if parked is None:
            return  # busy: it looks at the queue before it parks again
        queue = self._queue
        if queue.closed or queue.requests or queue.audio_bytes >= self._policy.min_bytes:
            self._wake.unpark_all()
        elif parked.deadline == math.inf and queue.audio_bytes:
            parked.deadline = queue.oldest_audio_at + self._policy.deadline

    def _take_audio(self) -> AudioChunk:
        """Join the audio at the head of the queue, up to ``max_bytes``, stopping at a request."""
        queue = self._queue
        waiting = queue.waiting
        pcm = waiting.popleft()
        assert not isinstance(pcm, AudioRequest)
        size, limit = len(pcm), self._policy.max_bytes
        chunks = None
        while size < limit and waiting:
            more = waiting[0]
            if isinstance(more, AudioRequest):
                break
            waiting.popleft()
            if chunks is None:
                chunks = [pcm]
            chunks.append(more)
            size += len(more)
        if chunks is not None:
            pcm = b"".join(chunks)
        # Once per append, not per chunk added: 20 ms frames would cost five of these.
        voiced = queue.wire.voiced_until_ms(pcm)
        queue.audio_bytes -= size
        if not queue.audio_bytes:
            queue.oldest_audio_at = math.inf
        self._made_room()
        return pcm, voiced

    def _made_room(self) -> None:
        if self._queue.room:
            self._queue.room.unpark_all()

    def close(self) -> list[AudioRequest]:
        """The session is over: nothing more is taken. Returns the requests never sent, and
        wakes producers waiting for room (their ``add_audio`` raises)."""
        queue = self._queue
        queue.session_over = True
        unsent = [item for item in queue.waiting if isinstance(item, AudioRequest)]
        queue.waiting.clear()
        queue.audio_bytes = queue.requests = 0
        queue.room.unpark_all()
        return unsent
