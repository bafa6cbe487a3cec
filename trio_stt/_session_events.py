"""The session's one event stream: fed by whichever connection is in use, read by you.

A session has exactly one bounded channel of events. Each connection puts what its server
said on it through the :class:`EventSink`, which also does the per-event bookkeeping that
outlives the connection (counters, spans, the replay record), so that a received message
costs one call here, not three. :class:`TurnStream` is the view of the same channel that
keeps only the final texts.
"""

from __future__ import annotations

import logging
from typing import final

import trio

from ._protocol import (
    AudioCommitted,
    RealtimeConnection,
    RealtimeEvent,
    ServerError,
    SpeechStarted,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
    Turn,
)
from ._protocol._record import StreamRecord
from ._session_options import SessionStatistics
from ._tracing import TurnTracer

__all__ = ["EventSink", "TurnStream"]

logger = logging.getLogger("trio_stt")


class EventSink:
    """Where connections put events. Closing the receiving end means you stopped listening:
    later events are counted as dropped and the session carries on."""

    __slots__ = ("_channel", "_record", "_stats", "_tracer", "finished")

    def __init__(
        self,
        channel: trio.MemorySendChannel[RealtimeEvent],
        stats: SessionStatistics,
        tracer: TurnTracer,
        record: StreamRecord,
    ) -> None:
        self._channel = channel
        self._stats = stats
        self._tracer = tracer
        self._record = record
        self.finished = False  # closed: no more events will come

    def offer(self, event: RealtimeEvent, core: RealtimeConnection) -> bool:
        """Note what a server event means, and hand it to the reader if that needs no
        waiting; ``False`` if it does (then :meth:`deliver` it)."""
        self._observe(event)
        self._record.heard(event, core)
        try:
            self._channel.send_nowait(event)
        except trio.WouldBlock:
            return False
        except trio.BrokenResourceError:  # you closed the channel: you stopped listening
            self._stats.events_dropped += 1
        return True

    async def deliver(self, event: RealtimeEvent) -> None:
        """Hand *event* to the reader, waiting for room (the session's backpressure)."""
        try:
            await self._channel.send(event)
        except trio.BrokenResourceError:
            self._stats.events_dropped += 1
            await trio.lowlevel.checkpoint()

    def close(self) -> None:
        """No more events: your ``async for`` ends once it has read what is there."""
        self.finished = True
        self._channel.close()

    def _observe(self, event: RealtimeEvent) -> None:
        kind = type(event)
        if kind is SpeechStarted or kind is TranscriptionDelta:
            self._tracer.started(event.item_id)  # type: ignore[attr-defined]
        elif kind is AudioCommitted:
            self._tracer.started(event.item_id, committed=True)  # type: ignore[attr-defined]
        elif isinstance(event, TranscriptionCompleted):
            self._stats.turns_completed += 1
            self._tracer.finished(event.item_id, event.transcript)
        elif isinstance(event, TranscriptionFailed):
            self._stats.turns_failed += 1
            self._tracer.finished(event.item_id, "", f"{event.code}: {event.message}")
        elif isinstance(event, ServerError):
            self._stats.recoverable_errors += 1
            logger.warning(
                "recoverable server error %s (answering %s)", event.code, event.caused_by
            )


@final
class TurnStream(trio.abc.ReceiveChannel[str]):
    """Final transcripts in commit order: a view of the session's event channel.

    It reads the same channel as :meth:`OpenAISTTTranscriptionSession.events` and keeps only
    non-empty, successful :class:`Turn` texts. Closing it closes that channel.
    """

    def __init__(self, events: trio.MemoryReceiveChannel[RealtimeEvent]) -> None:
        self._events = events

    async def receive(self) -> str:
        while True:
            event = await self._events.receive()
            if type(event) is Turn and event.text and not event.failed:
                return event.text

    def close(self) -> None:
        self._events.close()

    async def aclose(self) -> None:
        await self._events.aclose()
