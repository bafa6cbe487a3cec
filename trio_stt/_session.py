"""The realtime session: the public face, and the supervisor of its connections.

Theory of operation
-------------------
Entering ``async with model.create_session(...)`` opens and configures the first connection
(``_opening.py``: the handshake, ``session.created``, our update and ``session.updated``,
each under its own deadline); the block is entered once it is ready. From then on the
session supervises one connection at a time, each run by a
:class:`~trio_stt._driver.ConnectionDriver` that owns that connection's socket, core,
sender and receiver, and returns how it ended or raises why it was lost. The session
decides what follows, from that outcome and from the exception's type alone:

* **the input is done**: every turn is out; the session is over.
* **handed over** (a rotation before the server's time limit): the connection opened ahead
  takes over, and is sent the audio the old one dropped uncommitted.
* **lost** for a reason :attr:`~trio_stt.STTWebsocketConnectionError.recoverable` says a
  new connection may not share: reconnect after a backoff (``ReconnectPolicy``) and send
  the new one everything the lost one had not finished with.

What outlives a connection (the record of what was sent, the replay plan, end of input) is
sans-I/O, in ``_protocol/_record.py``; the counters, the spans and the one event channel
are the session's, lent to each connection as :class:`~trio_stt._driver.SessionParts`.

:meth:`~OpenAISTTTranscriptionSession.events` and
:meth:`~OpenAISTTTranscriptionSession.transcribe_turns` are two views of the one channel, so
a session has one reader; asking for both is a :class:`trio.BusyResourceError` at once,
rather than the stall two channels fed by one task would give. Closing the channel you read
means you stopped listening: later events are dropped and the session carries on. Your own
exceptions leave the block untouched (``_supervise.py``); only the session's failures become
one exception of ours. Leaving the block before the session is over drops what is in
flight and closes the connection at once.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ._config import ClientConfig
from ._driver import ConnectionDriver, Ending, SessionParts
from ._errors import ReconnectFailedError, choose_session_failure, recoverable
from ._opening import OpenConnection, Opener, held, open_connection
from ._protocol import RealtimeEvent, Reconnecting, wire_format
from ._protocol._record import StreamRecord, vad_margin_ms
from ._secrets import masking_logs
from ._session_events import EventSink, TurnStream
from ._session_options import SessionOptions, SessionStatistics
from ._settings import STTModelSettings
from ._streamed_input import AudioRequest, Intent, StreamedAudioInput
from ._supervise import open_supervised_nursery
from ._tracing import TracingOptions, TurnTracer
from ._turn_gate import TurnGate

__all__ = ["SessionOptions", "SessionStatistics", "OpenAISTTTranscriptionSession", "TurnStream"]

logger = logging.getLogger("trio_stt")


class OpenAISTTTranscriptionSession:
    """A live transcription session; get one from :meth:`OpenAISTTModel.create_session`.

    Inside the ``async with``: read :meth:`transcribe_turns` for final transcripts in commit
    order, *or* :meth:`events` for every typed event (turns included, as :class:`Turn`);
    call :meth:`commit` and :meth:`clear` for push-to-talk. Events are kept from the start,
    bounded by ``SessionOptions.event_buffer``: read them while you send, from another task.
    """

    # Slots: a server holds one session per caller.
    __slots__ = ("_events_rx", "_input", "_opener", "_parts", "_reader", "_turns", "model")

    def __init__(
        self,
        model: str,
        config: ClientConfig,
        audio: StreamedAudioInput,
        settings: STTModelSettings,
        tracing: TracingOptions,
        options: SessionOptions,
    ) -> None:
        settings.check_for(model, realtime=True)
        self.model = model
        self._input = audio
        stats = SessionStatistics()
        wire = wire_format(audio.format)
        self._opener = Opener(model, settings, config, options, stats, wire)
        events_tx, self._events_rx = trio.open_memory_channel[RealtimeEvent](options.event_buffer)
        self._turns = TurnStream(self._events_rx)
        self._reader: str | None = None
        policy = options.reconnect
        replay_bytes = int((policy.replay_seconds if policy else 1.0) * 1000) * wire.bytes_per_ms
        record = StreamRecord(replay_bytes, vad_margin_ms(settings), wire)
        client_vad = settings.client_vad(model)
        tracer = TurnTracer(
            model,
            {"language": settings.language, "prompt": settings.prompt,
             "turn_detection": client_vad.as_mapping() if client_vad else
             settings.turn_detection},
            tracing,
            wire.name.removeprefix("audio/"),
        )  # fmt: skip
        self._parts = SessionParts(
            options=options,
            reader=audio._take(options.append_policy(wire.bytes_per_ms)),
            record=record,
            sink=EventSink(events_tx, stats, tracer, record),
            stats=stats,
            tracer=tracer,
            redactor=config.redactor,
            unconfirmed=[],
            gate=TurnGate(client_vad, wire) if client_vad else None,
        )

    def __repr__(self) -> str:
        ended = "input ended" if self._parts.record.input_ended else "streaming"
        return f"<OpenAISTTTranscriptionSession {self.model} {ended}>"

    # ------------------------------------------------------------------ public API

    def events(self) -> trio.MemoryReceiveChannel[RealtimeEvent]:
        """Every typed event, from ``SessionCreated`` on; each finished turn is a :class:`Turn`
        in commit order. Ends (``EndOfChannel``) when the session has finished.

        Raises:
            trio.BusyResourceError: :meth:`transcribe_turns` is already this session's reader.
        """
        self._claim("events()")
        return self._events_rx

    def transcribe_turns(self) -> TurnStream:
        """Final transcripts, one per turn, in commit order; ends when the session finishes.

        Empty and failed turns are skipped (:meth:`events` has them).

        Raises:
            trio.BusyResourceError: :meth:`events` is already this session's reader.
        """
        self._claim("transcribe_turns()")
        return self._turns

    def _claim(self, how: str) -> None:
        if self._reader is None:
            self._reader = how
        elif self._reader != how:
            raise trio.BusyResourceError(
                f"this session already has one reader, {self._reader}; events() and "
                "transcribe_turns() are views of one stream (the turns are the Turn events "
                "of events()), so read one of them"
            )

    async def commit(self) -> None:
        """End the current turn: everything added to the input before this call is committed.

        Returns once the commit is on the wire, after every chunk added before it.

        Raises:
            trio.ClosedResourceError: the input has ended or the session is over.
        """
        await self._request(Intent.COMMIT)

    async def clear(self) -> None:
        """Drop the uncommitted audio: everything added since the last commit, up to this call.

        Raises:
            trio.ClosedResourceError: the input has ended or the session is over.
        """
        await self._request(Intent.CLEAR)

    async def _request(self, intent: Intent) -> None:
        if self._parts.record.input_ended:
            raise trio.ClosedResourceError("the session's input has ended or the session is over")
        request = AudioRequest(intent)
        await self._input._request(request)
        await request.done.wait()
        if not request.sent:
            raise trio.ClosedResourceError(f"the session ended before the {intent.value} was sent")

    def statistics(self) -> SessionStatistics:
        """A snapshot of the session's counters."""
        return SessionStatistics(**vars(self._parts.stats))

    # ------------------------------------------------------------------ lifetime

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[OpenAISTTTranscriptionSession]:
        parts, redactor = self._parts, self._opener.config.redactor
        try:
            with redactor.guard(), masking_logs("trio-websocket", redactor):
                if parts.gate is not None:  # a model to load: 100 ms the loop need not wait
                    await trio.to_thread.run_sync(parts.gate.load)
                async with open_supervised_nursery(choose_session_failure) as nursery:
                    supervised = trio.Event()
                    await nursery.start(self._supervise, nursery, supervised)
                    yield self
                    if parts.sink.finished:
                        # Over: your loop ended with the last turn, and the connection is
                        # saying goodbye. Leaving at once cut the close frame off (half of
                        # all sessions closed without one), so the goodbye gets its time.
                        with trio.move_on_after(parts.options.close_timeout):
                            await supervised.wait()
                    nursery.cancel_scope.cancel()  # you left early: turns in flight go
        finally:
            for request in [*parts.unconfirmed, *parts.reader.close()]:  # wake their callers
                request.settle(sent=False)
            parts.sink.close()
            parts.tracer.close()
            if parts.gate is not None:
                parts.gate.close()

    async def _supervise(
        self,
        hosts: trio.Nursery,
        done: trio.Event,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """One connection after another, until the session is done.

        The first is the one ``async with`` waits for: if it fails, the block is never
        entered. Later ones take over from one handed over before the server's time limit
        (rotation), or replace one lost for a recoverable reason (the reconnect policy).
        Either way the new connection is sent what the old one had not finished with.
        *done* is set when it returns, however it returns.
        """
        try:
            parts, policy = self._parts, self._parts.options.reconnect
            open_next = functools.partial(hosts.start, self._hold_open)
            prepared: OpenConnection | None = None
            attempt, outage_began, replay, started = 0, 0.0, None, False
            while True:
                driver: ConnectionDriver | None = None
                began = trio.current_time()
                try:
                    async with (
                        open_connection(self._opener) if prepared is None else held(prepared)
                    ) as connection:
                        prepared = None
                        setup, connection.setup_events = connection.setup_events, []
                        setup = setup if not started else []
                        if not started:
                            task_status.started()
                            started = True
                        driver = ConnectionDriver(connection, parts, open_next)
                        began = trio.current_time()
                        ending = await driver.run(setup, replay)
                    if ending is Ending.INPUT_DONE:
                        return
                    prepared, replay, attempt = driver.next_connection, 0, 0
                    parts.tracer.moved_on()
                    parts.record.handed_over(connection.core)
                except Exception as exc:
                    if parts.sink.finished:
                        # Every turn is out and your loop has ended: a connection that fails
                        # as it closes (trio-websocket answering a ping mid-goodbye) loses
                        # nothing, and is no reason to open another.
                        logger.debug("the connection failed as it closed", exc_info=True)
                        return  # noqa: ASYNC910  # the connection's block awaited
                    if not started or policy is None or not recoverable(exc):
                        raise
                    now = trio.current_time()
                    if driver is not None and driver.last_heard - began >= policy.max_delay:
                        attempt = 0  # that connection worked for a while: a new outage
                    if attempt == 0:
                        outage_began = now
                    attempt += 1
                    replay = attempt
                    delay = policy.delay(attempt, random.random())
                    if (
                        attempt > policy.max_attempts
                        or now + delay - outage_began > policy.max_outage
                    ):
                        raise ReconnectFailedError(attempt - 1, now - outage_began, exc) from exc
                    cause = parts.redactor.text(str(exc))  # a close reason may quote the key
                    logger.warning(
                        "realtime connection lost (%s); reconnecting in %.1f s", cause, delay
                    )
                    parts.tracer.connection_lost(attempt, cause)
                    await parts.sink.deliver(Reconnecting(attempt, delay, cause))
                    await trio.sleep(delay)
        finally:
            done.set()

    async def _hold_open(self, task_status: trio.TaskStatus[OpenConnection]) -> None:
        """Open the next connection ahead of a rotation, in a task of the session's that
        holds it open until the connection that used it releases it.

        Failures before it is handed over are the opener's; after, the connection is its
        driver's to watch, and a failure to close one no longer in use is nobody's.
        """
        await trio.lowlevel.checkpoint()
        handed = False
        try:
            async with open_connection(self._opener) as connection:
                task_status.started(connection)
                handed = True
                await connection.release.wait()
        except Exception:
            if not handed:
                raise
            logger.debug("a connection no longer in use failed to close", exc_info=True)
