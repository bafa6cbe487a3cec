"""The realtime session: a thin trio shell around the sans-I/O core.

Theory of operation
-------------------
Entering ``async with model.create_session(...)`` connects, waits for ``session.created``,
sends the session update and waits for ``session.updated``, each under its own deadline. It
then runs two tasks beside your code, the way trio-websocket drives wsproto:

* the **connection loop**, which is also the **receiver**: it reads the socket, hands each
  message to :class:`RealtimeConnection` and puts what comes back (typed events, and each
  finished :class:`Turn` in commit order) on the session's one bounded event channel. It
  looks up from reading only at one deadline, set when a clock could run out (the server
  owes us and is silent, a keepalive ping is due, a rotation is due) and checked when it
  passes, never moved per message. When a connection ends it decides what comes next: the
  end of the session, a reconnect (``ReconnectPolicy``) or a rotation (``RotationPolicy``),
  and the next connection is sent what the last one had not finished with
  (``_replay.py``).
* the **sender** is the only task that writes. It drains the :class:`StreamedAudioInput`
  queue, where audio and your ``commit()``/``clear()`` requests stand in the order you
  made them, sending audio by the append policy (``SessionOptions.min_append_ms``). When
  the input ends it asks the core how to end it, sends what the core decides (now or once
  the server has answered), and after the last turn closes the socket with 1000. A
  rotation's hand-over reaches it through the same queue, ahead of everything waiting.

A rotation adds, for its few seconds, a task that opens the next connection and holds it
open until the loop takes it over, and waits for a turn boundary to ask for the hand-over.

Every fact about the protocol (the phase, what is outstanding, what to send at the end) is
in the core; this module keeps none. Every transport rule (mapping errors, never tearing a
frame, closing at once under cancellation) is in ``_websocket.py``. What is left here is who
runs what, and the public surface.

:meth:`~OpenAISTTTranscriptionSession.events` and
:meth:`~OpenAISTTTranscriptionSession.transcribe_turns` are two views of the one channel, so
a session has one reader; asking for both is a :class:`trio.BusyResourceError` at once,
rather than the stall two channels fed by one task would give. Closing the channel you read
means you stopped listening: later events are dropped and the session carries on. Your own
exceptions leave the block untouched (``_supervise.py``); only the session's failures become
one exception of ours.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import final

import numpy as np
import trio

from ._config import ClientConfig
from ._errors import (
    RealtimeProtocolError,
    RealtimeServerError,
    ReconnectFailedError,
    STTWebsocketConnectionError,
    STTWebsocketTimeoutError,
    WebSocketClosedError,
    choose_session_failure,
)
from ._protocol import (
    AudioCommitted,
    AudioLost,
    ClientState,
    RealtimeConnection,
    RealtimeEvent,
    Reconnected,
    Reconnecting,
    Rotated,
    ServerError,
    SessionCreated,
    SpeechStarted,
    SpeechStopped,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
    Turn,
    handshake_headers,
)
from ._replay import BYTES_PER_MS, LegMap, ReplayLedger
from ._secrets import masking_logs
from ._session_options import (
    RECOVERABLE_CLOSE_CODES,
    RECOVERABLE_ERROR_CODES,
    SessionOptions,
    SessionStatistics,
)
from ._settings import STTModelSettings
from ._streamed_input import AudioRequest, InputReader, StreamedAudioInput, voiced_until_ms
from ._supervise import open_supervised_nursery
from ._tracing import TracingOptions, TurnTracer
from ._websocket import WebSocketTransport, open_websocket, send_timeout_error

__all__ = ["SessionOptions", "SessionStatistics", "OpenAISTTTranscriptionSession", "TurnStream"]

logger = logging.getLogger("trio_stt")


ROTATION_RETRY_SECONDS = 5.0
"""How soon a rotation tries again to open the next connection, while there is time."""


def _recoverable(exc: Exception) -> bool:
    """Whether a new connection may do better: the network or the server's process failed,
    not our key, our configuration or the protocol."""
    if isinstance(exc, RealtimeServerError):
        return exc.code in RECOVERABLE_ERROR_CODES
    if isinstance(exc, (RealtimeProtocolError, ReconnectFailedError)):
        return False
    if isinstance(exc, WebSocketClosedError):
        return exc.code in RECOVERABLE_CLOSE_CODES
    if isinstance(exc, STTWebsocketTimeoutError):  # not a server that owes us and is silent
        return not exc.awaited.startswith(("server events", "the final transcripts"))
    if isinstance(exc, STTWebsocketConnectionError):
        return exc.status_code not in (400, 401, 403, 404)
    return isinstance(exc, (OSError, trio.BrokenResourceError))


def _quiet_kept_ms(settings: STTModelSettings) -> int:
    """How much of the quiet that ended a server-VAD turn to send again after a reconnect:
    the prefix padding the next turn's speech starts with, never reaching back into speech."""
    detection = settings.turn_detection
    if not isinstance(detection, Mapping) or detection.get("type") != "server_vad":
        return 0
    prefix, silence = (
        detection.get("prefix_padding_ms", 300),
        detection.get("silence_duration_ms", 500),
    )
    if not isinstance(prefix, int) or not isinstance(silence, int):
        return 0
    return max(0, min(prefix, silence - 100))


@dataclass
class _Connection:
    """An open, configured connection. One opened ahead for a rotation is held open by a
    task of its own until *release*: it is configured while the current one still carries
    the audio."""

    transport: WebSocketTransport
    core: RealtimeConnection
    setup_events: list[RealtimeEvent]
    expires: float | None  # when the server will end it, on trio's clock
    release: trio.Event = field(default_factory=trio.Event)


@asynccontextmanager
async def _held(connection: _Connection) -> AsyncIterator[_Connection]:
    """Use a connection opened ahead; leaving lets its task close it."""
    try:
        yield connection
    finally:
        connection.release.set()


def _expires(session: Mapping[str, object]) -> float | None:
    """``expires_at`` (epoch seconds) on trio's clock, or ``None`` if absent or passed."""
    expires_at = session.get("expires_at")
    if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
        return None
    remaining = expires_at - time.time()
    return trio.current_time() + remaining if 0 < remaining < math.inf else None


def _server_error(event: ServerError | None) -> RealtimeServerError:
    assert event is not None
    return RealtimeServerError(
        event.message, code=event.code, type=event.type, param=event.param,
        event_id=event.client_event_id,
    )  # fmt: skip


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


class OpenAISTTTranscriptionSession:
    """A live transcription session; get one from :meth:`OpenAISTTModel.create_session`.

    Inside the ``async with``: read :meth:`transcribe_turns` for final transcripts in commit
    order, *or* :meth:`events` for every typed event (turns included, as :class:`Turn`);
    call :meth:`commit` and :meth:`clear` for push-to-talk. Events are kept from the start,
    bounded by ``SessionOptions.event_buffer``: read them while you send, from another task.
    """

    # Slots: a server holds one session per caller, and a dict of three dozen attributes
    # would be a tenth of an idle session's memory.
    __slots__ = (
        "_boundary",
        "_config",
        "_core",
        "_core_moved",
        "_events_rx",
        "_events_tx",
        "_handed_over",
        "_heard_at",
        "_hosts",
        "_input",
        "_input_ended",
        "_leaving",
        "_ledger",
        "_leg",
        "_leg_running",
        "_legs",
        "_next",
        "_options",
        "_owed",
        "_owed_from",
        "_pong_at",
        "_quiet",
        "_reader",
        "_redactor",
        "_rotate_at",
        "_rotation",
        "_settings",
        "_setup_events",
        "_stats",
        "_switch_by",
        "_tasks",
        "_timed_sends",
        "_tracer",
        "_turns",
        "_unconfirmed",
        "model",
    )  # fmt: skip

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
        self._config = config
        self._input = audio
        self._settings = settings
        self._options = options
        self._redactor = config.redactor
        self._core = RealtimeConnection(
            dialect=options.dialect,
            max_message_bytes=options.max_message_bytes,
            redact=self._redactor.text,
        )
        self._stats = SessionStatistics()
        self._events_tx, self._events_rx = trio.open_memory_channel[RealtimeEvent](
            options.event_buffer
        )
        self._turns = TurnStream(self._events_rx)
        self._reader: str | None = None
        self._setup_events: list[RealtimeEvent] = []
        self._quiet = trio.CancelScope()  # the receiver's inactivity deadline
        self._core_moved = trio.Event()  # the receiver woke the sender at the end
        self._leg = trio.CancelScope()  # the tasks of the connection in use
        self._rotation = trio.CancelScope()  # the connection in use's rotation task
        self._rotate_at = self._switch_by = math.inf  # when it starts, and switches at last
        self._tasks: trio.Nursery | None = None  # the connection in use's tasks
        self._timed_sends = False  # the connection in use times its own sends
        self._hosts: trio.Nursery | None = None  # where each connection is held open
        self._next: _Connection | None = None  # opened ahead, for a rotation
        self._boundary: trio.Event | None = None  # a rotation waits for a turn boundary
        self._handed_over = False  # the connection in use handed the stream on (rotation)
        self._leaving = False  # you left the block before the session finished
        self._leg_running = False  # a connection is configured and its tasks run
        self._heard_at = 0.0  # when the server last sent a message
        self._pong_at = 0.0  # ... or answered a keepalive ping
        self._owed = False  # the server owes us an answer, a commit or a transcript
        self._owed_from = 0.0  # ... and its silence counts from then at the earliest
        policy = options.reconnect
        self._ledger = ReplayLedger(
            int((policy.replay_seconds if policy else 1.0) * 1000) * BYTES_PER_MS
        )
        self._legs = LegMap(_quiet_kept_ms(settings))
        self._input_ended = False  # the reader has said the input is over
        self._unconfirmed: list[AudioRequest] = []  # commits and clears written to a lost leg
        self._tracer = TurnTracer(
            model,
            {"language": settings.language, "prompt": settings.prompt,
             "turn_detection": settings.turn_detection},
            tracing,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"<OpenAISTTTranscriptionSession {self.model} {self._core.state.name}>"

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
        await self._request("commit")

    async def clear(self) -> None:
        """Drop the uncommitted audio: everything added since the last commit, up to this call.

        Raises:
            trio.ClosedResourceError: the input has ended or the session is over.
        """
        await self._request("clear")

    async def _request(self, kind: str) -> None:
        if self._input_ended:
            raise trio.ClosedResourceError("the session's input has ended or the session is over")
        request = AudioRequest(kind)
        await self._input._request(request)
        await request.done.wait()
        if not request.sent:
            raise trio.ClosedResourceError(f"the session ended before the {kind} was sent")

    def statistics(self) -> SessionStatistics:
        """A snapshot of the session's counters."""
        return SessionStatistics(**vars(self._stats))

    # ------------------------------------------------------------------ lifetime

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[OpenAISTTTranscriptionSession]:
        reader = self._input._take(self._options.append_policy())
        try:
            with self._redactor.guard(), masking_logs("trio-websocket", self._redactor):
                async with open_supervised_nursery(choose_session_failure) as nursery:
                    self._hosts = nursery
                    await nursery.start(self._connections, reader)
                    yield self
                    if not (self._input_ended and self._core.state is ClientState.DONE):
                        self._leaving = True  # you left early: turns in flight go
                        if self._leg_running:
                            self._leg.cancel()  # ... and the connection closes politely
                        else:
                            nursery.cancel_scope.cancel()  # mid-outage: nothing to close
        finally:
            self._core.connection_closed()
            for request in [*self._unconfirmed, *reader.close()]:  # wake their callers
                request.done.set()
            self._events_tx.close()
            self._tracer.close()

    async def _connections(
        self, reader: InputReader, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """One connection after another, until the session is done.

        The first is the one ``async with`` waits for: if it fails, the block is never
        entered. Later ones take over from one handed over before the server's time limit
        (rotation), or replace one lost for a recoverable reason (the reconnect policy).
        Either way the new connection is sent what the old one had not finished with.
        """
        policy = self._options.reconnect
        attempt, outage_began, rotated, started = 0, 0.0, False, False
        try:
            while True:
                leg_began: float | None = None  # when this connection started carrying audio
                prepared, self._next = self._next, None
                try:
                    async with (
                        self._open_connection() if prepared is None else _held(prepared)
                    ) as connection:
                        self._core.connection_closed()
                        self._core = connection.core
                        if not started:
                            self._setup_events = connection.setup_events
                            task_status.started()
                            started = True
                        leg_began = trio.current_time()
                        await self._run_leg(connection, reader, attempt, rotated)
                    if not self._handed_over or self._leaving:
                        return
                    self._handed_over, rotated, attempt = False, True, 0
                    self._tracer.moved_on()
                    self._forget_heard_quiet(connection.core)
                except Exception as exc:
                    self._drop_next()  # lost while handing over: the replay covers it all
                    self._handed_over = False
                    if not started or policy is None or self._leaving or not _recoverable(exc):
                        raise
                    now = trio.current_time()
                    heard = max(self._heard_at, self._pong_at)
                    if leg_began is not None and heard - leg_began >= policy.max_delay:
                        attempt = 0  # that connection worked for a while: a new outage
                    if attempt == 0:
                        outage_began = now
                    attempt, rotated = attempt + 1, False
                    delay = policy.delay(attempt, random.random())
                    if (
                        attempt > policy.max_attempts
                        or now + delay - outage_began > policy.max_outage
                    ):
                        raise ReconnectFailedError(attempt - 1, now - outage_began, exc) from exc
                    cause = self._redactor.text(str(exc))  # a close reason may quote the key
                    logger.warning(
                        "realtime connection lost (%s); reconnecting in %.1f s", cause, delay
                    )
                    self._core.connection_closed()
                    self._tracer.connection_lost(attempt, cause)
                    await self._deliver(Reconnecting(attempt, delay, cause))
                    await trio.sleep(delay)
        finally:
            self._drop_next()

    @asynccontextmanager
    async def _open_connection(self) -> AsyncIterator[_Connection]:
        """Connect and configure: the handshake, ``session.created``, our update and its
        answer. Leaving the block drops the connection (close politely first)."""
        opts = self._options
        core = RealtimeConnection(
            dialect=opts.dialect, max_message_bytes=opts.max_message_bytes,
            redact=self._redactor.text,
        )  # fmt: skip
        headers = self._config.websocket_headers() + handshake_headers(opts.dialect)
        connector = opts.connector or open_websocket
        async with connector(
            self._config.websocket_url,
            headers,
            max_message_bytes=opts.max_message_bytes,
            connect_timeout=opts.connect_timeout,
        ) as transport:
            events = await self._configure(transport, core)
            created = next((e for e in events if isinstance(e, SessionCreated)), None)
            expires = _expires(created.session) if created is not None else None
            yield _Connection(transport, core, events, expires)

    async def _host(self, task_status: trio.TaskStatus[_Connection]) -> None:
        """Open the next connection ahead of a rotation, in a task of the session's that
        holds it open until the connection loop, having used it, releases it.

        Failures before it is handed over are the opener's; after, the connection is the
        session's tasks' to watch, and a failure to close one no longer in use is nobody's.
        """
        await trio.lowlevel.checkpoint()
        handed = False
        try:
            async with self._open_connection() as connection:
                task_status.started(connection)
                handed = True
                await connection.release.wait()
        except Exception:
            if not handed:
                raise
            logger.debug("a connection no longer in use failed to close", exc_info=True)

    def _forget_heard_quiet(self, core: RealtimeConnection) -> None:
        """After a hand-over the new connection needs only what the old one dropped. Under
        server VAD, if no speech had started when it dropped it, that was quiet the old one
        heard: keep only its last stretch, the prefix padding a next turn would start with."""
        if core.vad_enabled and not core.speech_active:
            self._ledger.finished_through(self._ledger.end - self._legs.vad_margin)

    def _drop_next(self) -> None:
        """Close a connection opened for a rotation that will not happen now."""
        if self._next is not None:
            self._next.release.set()
            self._next = None

    async def _run_leg(
        self, connection: _Connection, reader: InputReader, attempt: int, rotated: bool
    ) -> None:
        """The receiver (which also keeps the connection alive), the sender, and, if the
        server will end the connection at a known time, the rotation that gets there first."""
        self._legs.begin()
        self._leg, self._quiet, self._rotation = (
            trio.CancelScope(), trio.CancelScope(), trio.CancelScope()
        )  # fmt: skip
        self._core_moved, self._boundary = trio.Event(), None
        self._leg_running = True
        transport = connection.transport
        set_send_timeout = getattr(transport, "set_send_timeout", None)
        self._timed_sends = set_send_timeout is not None
        if set_send_timeout is not None:
            set_send_timeout(self._options.send_timeout)
        try:
            with self._leg:
                async with open_supervised_nursery(choose_session_failure) as nursery:
                    self._tasks = nursery
                    nursery.start_soon(self._send, transport, reader, attempt, rotated)
                    self._plan_rotation(connection.expires)
                    await self._receive(transport)  # in this task: one task fewer each
        finally:
            self._leg_running = False
        if self._core.state is not ClientState.DONE and self._leaving:
            with trio.move_on_after(self._options.close_timeout):
                await transport.aclose(1000)

    def _plan_rotation(self, expires: float | None) -> None:
        """When to start rotating away from a connection the server will end at *expires*.

        The receiver starts the rotation when that time comes (it is one of the times it
        looks up from reading), so that a connection does not keep a task asleep for most
        of an hour.
        """
        self._rotate_at = self._switch_by = math.inf
        policy = self._options.rotation
        if expires is None or policy is None:
            return
        lead = min(policy.open_before, (expires - trio.current_time()) / 2)
        self._rotate_at = expires - lead
        self._switch_by = expires - min(policy.switch_before, lead / 2)

    def _start_rotation(self) -> None:
        assert self._tasks is not None
        self._tasks.start_soon(self._rotate, self._switch_by)
        self._rotate_at = math.inf

    async def _rotate(self, switch_by: float) -> None:
        """Open the next connection; hand over to it at the next turn boundary, or at
        *switch_by* at the latest (see :class:`RotationPolicy`)."""
        await trio.lowlevel.checkpoint()
        with self._rotation:  # the sender cancels it when this connection is done anyway
            while self._next is None:
                try:
                    assert self._hosts is not None
                    self._next = await self._hosts.start(self._host)
                except Exception as exc:
                    cause = self._redactor.text(str(exc))
                    if not _recoverable(exc) or trio.current_time() >= switch_by:
                        logger.warning("cannot open the next connection to rotate to (%s)", cause)
                        return  # if the server ends this one, that is a lost connection
                    logger.info("opening the next connection failed (%s); trying again", cause)
                    await trio.sleep(min(ROTATION_RETRY_SECONDS, switch_by - trio.current_time()))
            if not self._at_turn_boundary():
                self._boundary = boundary = trio.Event()  # the receiver sets it at one
                with trio.move_on_at(switch_by):
                    await boundary.wait()
                self._boundary = None
            if not self._input_ended:
                self._input._jump_queue(AudioRequest("hand_over"))

    def _at_turn_boundary(self) -> bool:
        """Nothing owed and nobody speaking: moving now splits no turn and waits for none."""
        core = self._core
        return (
            core.state is ClientState.STREAMING
            and not core.waiting_for_server
            and not core.speech_active
        )

    async def _configure(
        self, transport: WebSocketTransport, core: RealtimeConnection
    ) -> list[RealtimeEvent]:
        opts, events = self._options, []
        events += await self._receive_until(
            transport, core, "session.created", opts.session_created_timeout
        )
        await transport.send(core.update_session(self.model, self._settings))
        self._stats.messages_sent += 1
        events += await self._receive_until(
            transport, core, "session.updated", opts.session_updated_timeout
        )
        logger.info("realtime session configured: %s, dialect %s", self.model, opts.dialect)
        return events

    async def _receive_until(
        self, transport: WebSocketTransport, core: RealtimeConnection, what: str, limit: float
    ) -> list[RealtimeEvent]:
        await trio.lowlevel.checkpoint()
        state, events = core.state, []
        with trio.move_on_after(limit) as scope:
            while core.state is state:
                message = await transport.receive()
                self._stats.messages_received += 1
                events += core.receive(message)
                if core.state is ClientState.FAILED:
                    raise _server_error(core.fatal_error)
        if scope.cancelled_caught:
            raise STTWebsocketTimeoutError(what, limit)
        return events

    # ------------------------------------------------------------------ the two tasks

    async def _receive(self, transport: WebSocketTransport) -> None:
        core = self._core
        await trio.lowlevel.checkpoint()
        for event in self._setup_events:
            if not self._offer(event):
                await self._deliver(event)
        self._setup_events.clear()
        self._heard_at = self._owed_from = trio.current_time()
        self._owed = core.waiting_for_server
        while True:
            with trio.CancelScope(deadline=self._next_check()) as quiet:
                self._quiet = quiet
                while core.state is not ClientState.DONE:
                    message = await transport.receive()
                    self._stats.messages_received += 1
                    self._heard_at = trio.current_time()
                    events = core.receive(message)
                    if core.state is ClientState.FAILED:
                        raise _server_error(core.fatal_error)
                    for event in events:
                        self._observe(event)
                        self._track_for_replay(event)
                        if not self._offer(event):
                            await self._deliver(event)
                    self._owed = core.waiting_for_server
                    if core.state is not ClientState.STREAMING:
                        self._core_moved.set()  # the sender may have the last word to say
                    elif self._boundary is not None and self._at_turn_boundary():
                        self._boundary.set()
            if not quiet.cancelled_caught:
                break
            await self._quiet_for_a_while(transport)
        if self._input_ended:
            self._events_tx.close()  # every turn is out: your loop ends here

    def _next_check(self) -> float:
        """When the receiver next has to look up from reading: the server owes us and has
        been silent too long, it has been silent long enough for a keepalive ping, or it
        is time to start a rotation. The deadline is set once and looked at when it passes,
        not moved with every message: hundreds of sessions receive many messages a second.
        """
        opts, check = self._options, self._rotate_at
        if opts.keepalive_interval is not None:
            check = min(check, max(self._heard_at, self._pong_at) + opts.keepalive_interval)
        if self._owed:
            check = min(check, max(self._heard_at, self._owed_from) + opts.inactivity_timeout)
        return check

    async def _quiet_for_a_while(self, transport: WebSocketTransport) -> None:
        """The receiver's deadline passed: see which clock ran out.

        A ping is the one way to find a connection that died without closing while nothing
        is owed (a silent speaker), when no other deadline is armed. Sent by the receiver,
        only when the server has been quiet, it costs no task of its own.
        """
        await trio.lowlevel.checkpoint()
        opts, now = self._options, trio.current_time()
        if now >= self._rotate_at:
            self._start_rotation()
        limit = opts.inactivity_timeout
        if self._owed and now >= max(self._heard_at, self._owed_from) + limit:
            raise STTWebsocketTimeoutError(self._awaiting(), limit)
        interval = opts.keepalive_interval
        if interval is not None and now >= max(self._heard_at, self._pong_at) + interval:
            with trio.move_on_after(opts.keepalive_timeout) as waited:
                await transport.ping()
            if waited.cancelled_caught:
                raise STTWebsocketTimeoutError(
                    "a pong to the keepalive ping (the connection died without closing)",
                    opts.keepalive_timeout,
                )
            self._stats.pings_answered += 1
            self._pong_at = trio.current_time()

    def _offer(self, event: RealtimeEvent) -> bool:
        """Hand *event* to the reader if that needs no waiting; ``False`` if it does."""
        try:
            self._events_tx.send_nowait(event)
        except trio.WouldBlock:
            return False
        except trio.BrokenResourceError:  # you closed the channel: you stopped listening
            self._stats.events_dropped += 1
        return True

    async def _deliver(self, event: RealtimeEvent) -> None:
        self._quiet.deadline = math.inf  # waiting for you is not the server being quiet
        try:
            await self._events_tx.send(event)
        except trio.BrokenResourceError:
            self._stats.events_dropped += 1
            await trio.lowlevel.checkpoint()
        self._owed_from = trio.current_time()  # the server's silence counts from now
        self._quiet.deadline = self._next_check()

    def _arm_inactivity(self) -> None:
        """Called after we sent something the server must answer: if it owed us nothing
        before, its silence counts from now."""
        if not self._owed and self._core.waiting_for_server:
            self._owed, self._owed_from = True, trio.current_time()
            self._quiet.deadline = min(self._quiet.deadline, self._next_check())

    def _awaiting(self) -> str:
        n = self._core.outstanding
        if self._core.state in (ClientState.ENDING, ClientState.DRAINING):
            return f"the final transcripts after end of input ({n} outstanding)"
        return f"server events for {n} outstanding commit(s) or transcript(s)"

    async def _send(
        self, transport: WebSocketTransport, reader: InputReader, attempt: int, rotated: bool
    ) -> None:
        core, opts = self._core, self._options
        try:
            with trio.CancelScope() as stuck:
                if attempt or rotated:
                    await self._replay(transport, stuck, attempt)
                if await self._stream(transport, reader, stuck):
                    await self._write(transport, stuck, core.hand_over())
                    self._handed_over = True
                else:
                    self._input_ended = True
                    for message in core.end_input():
                        await self._write(transport, stuck, message)
                self._arm_inactivity()
                while core.state is not ClientState.DONE:
                    await self._core_moved.wait()
                    self._core_moved = trio.Event()
                    for message in core.take_outgoing():
                        await self._write(transport, stuck, message)
                        self._stats.commits_sent += 1
                        self._arm_inactivity()
        finally:
            self._rotation.cancel()  # this connection is done with, one way or the other
        if stuck.cancelled_caught:
            raise send_timeout_error(opts.send_timeout)
        with trio.move_on_after(opts.close_timeout):
            await transport.aclose(1000)  # every turn is out: goodbye

    async def _stream(
        self, transport: WebSocketTransport, reader: InputReader, stuck: trio.CancelScope
    ) -> bool:
        """Send your audio, commits and clears until the input ends (``False``) or a rotation
        asks for the stream to move to the next connection (``True``)."""
        core = self._core
        await trio.lowlevel.checkpoint()
        while not self._input_ended and (item := await reader.next()) is not None:
            if isinstance(item, AudioRequest):
                if item.kind == "hand_over":
                    return True
                self._unconfirmed.append(item)
                if item.kind == "commit":
                    message = core.commit()
                    self._legs.commit_sent(self._ledger.commit())
                else:
                    message = core.clear()
                    self._ledger.clear()
                await self._write(transport, stuck, message)
                self._stats.commits_sent += item.kind == "commit"
                self._arm_inactivity()
                self._confirm_requests()
                continue
            data, voiced = item
            self._legs.audio_sent(self._ledger.end, len(data))
            self._ledger.add(data, voiced >= 0)
            await self._write(transport, stuck, core.append_audio(data, voiced_until_ms=voiced))
            self._stats.audio_seconds_sent += len(data) / 48_000
            if self._tracer.keeps_audio:
                self._tracer.add_audio(data)
        return False

    def _confirm_requests(self) -> None:
        """Commits and clears written whole: their callers may go on."""
        for request in self._unconfirmed:
            request.sent = True
            request.done.set()
        self._unconfirmed.clear()

    async def _replay(
        self, transport: WebSocketTransport, stuck: trio.CancelScope, attempt: int
    ) -> None:
        """Send a new connection what the old one had not finished with, commits included:
        after a reconnect (*attempt*), all of it; after a rotation, only the audio the old one
        dropped uncommitted, since it finished its own turns."""
        core = self._core
        replay = self._ledger.take_replay()
        largest = max(BYTES_PER_MS * 20, self._options.append_policy().max_bytes)
        largest -= largest % 2
        for part, start in zip(replay.parts, replay.starts, strict=True):
            if part is None:
                await self._write(transport, stuck, core.commit())
                self._legs.commit_sent(start)
                continue
            for begin in range(0, len(part), largest):
                piece = part[begin : begin + largest]
                self._legs.audio_sent(start + begin, len(piece))
                voiced = voiced_until_ms(np.frombuffer(piece, "<i2"))
                await self._write(
                    transport, stuck, core.append_audio(piece, voiced_until_ms=voiced)
                )
        self._confirm_requests()
        replayed_ms = replay.audio_bytes / BYTES_PER_MS
        self._stats.audio_seconds_replayed += replayed_ms / 1000
        if replay.lost_bytes:
            lost_ms = replay.lost_bytes / BYTES_PER_MS
            self._stats.audio_seconds_lost += lost_ms / 1000
            await self._deliver(AudioLost(lost_ms, "past the replay buffer (replay_seconds)"))
        if attempt:
            self._stats.reconnects += 1
            logger.info(
                "reconnected (attempt %d); %.0f ms of audio sent again", attempt, replayed_ms
            )
            await self._deliver(Reconnected(attempt, replayed_ms))
        else:
            self._stats.rotations += 1
            session_id = core.session.get("id")
            session_id = session_id if isinstance(session_id, str) else None
            logger.info("rotated to %s; %.0f ms of audio moved over", session_id, replayed_ms)
            await self._deliver(Rotated(session_id, replayed_ms))
        self._arm_inactivity()

    async def _write(
        self, transport: WebSocketTransport, stuck: trio.CancelScope, message: str
    ) -> None:
        if self._timed_sends:  # the transport times a send that has to wait
            await transport.send(message)
        else:
            stuck.deadline = trio.current_time() + self._options.send_timeout
            await transport.send(message)
            stuck.deadline = math.inf
        self._stats.messages_sent += 1

    # ------------------------------------------------------------------ bookkeeping

    def _track_for_replay(self, event: RealtimeEvent) -> None:
        """Keep the ledger to the audio of turns not yet back."""
        kind = type(event)
        if kind is SpeechStarted and not self._core.outstanding:  # no turn needs what is kept
            start = self._legs.vad_started(event.audio_start_ms)  # type: ignore[attr-defined]
            self._ledger.finished_through(start)
        elif kind is SpeechStopped:
            self._legs.vad_stopped(event.item_id, event.audio_end_ms)  # type: ignore[attr-defined]
        elif kind is AudioCommitted:
            self._legs.committed(event.item_id)  # type: ignore[attr-defined]
        elif kind is Turn:
            end = self._legs.finished(event.item_id)  # type: ignore[attr-defined]
            if end is not None:
                self._ledger.finished_through(end)

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
