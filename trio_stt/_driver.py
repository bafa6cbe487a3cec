"""One connection of a realtime session, from configured to closed.

Theory of operation
-------------------
A :class:`ConnectionDriver` owns one connection: its socket, its sans-I/O core, and the two
tasks that use them, the way trio-websocket drives wsproto.

* The **receiver** runs in :meth:`~ConnectionDriver.run`'s own task. It reads the socket,
  hands each message to the core and what comes back to the session's :class:`EventSink`.
  It looks up from reading only at one deadline, set when a clock could run out (the
  server owes us and is silent, the end-of-input barrier is unanswered, a keepalive ping is
  due, a rotation is due) and checked when it passes, never moved per message.
* The **sender** is the only task that writes. It drains the input (audio, and your commits
  and clears in the order you made them), then ends the input as the core decides, sends
  what the core decides later (the final commit once the barrier is answered), and stops
  the receiver once every turn is out. Only then is the socket closed, with 1000: our own
  goodbye is never read as the server's.
* A **rotation**, for its few seconds, adds a task that opens the next connection (through
  the session's *open_next*), waits for a turn boundary, and interrupts the input reader,
  so that the sender hands the stream over.

:meth:`~ConnectionDriver.run` returns how the connection ended (:class:`Ending`) or raises
why it was lost; the session decides what follows. Everything that outlives the connection
is the session's and reaches the driver in :class:`SessionParts`.
"""

from __future__ import annotations

import enum
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import trio

from ._errors import STTWebsocketTimeoutError, choose_session_failure, recoverable
from ._opening import OpenConnection, server_error
from ._protocol import (
    MIN_COMMIT_MS,
    AudioLost,
    ClientState,
    RealtimeEvent,
    Reconnected,
    Rotated,
)
from ._protocol._record import StreamRecord, rotation_times
from ._secrets import Redactor
from ._session_events import EventSink
from ._session_options import SessionOptions, SessionStatistics
from ._streamed_input import AudioRequest, HandOver, InputReader, Intent
from ._supervise import open_supervised_nursery
from ._tracing import TurnTracer
from ._turn_gate import COMMIT, GateAction, TurnGate
from ._websocket import bounded_sends

__all__ = ["ConnectionDriver", "Ending", "SessionParts"]

logger = logging.getLogger("trio_stt")

ROTATION_RETRY_SECONDS = 5.0
"""How soon a rotation tries again to open the next connection, while there is time."""

_DONE, _STREAMING, _ENDING, _FAILED = (
    ClientState.DONE, ClientState.STREAMING, ClientState.ENDING, ClientState.FAILED
)  # fmt: skip


class Ending(enum.Enum):
    """How a connection ended, when nothing went wrong."""

    INPUT_DONE = "the input ended and every turn is out"
    HANDED_OVER = "the stream moved to the next connection"


@dataclass(frozen=True, eq=False)
class SessionParts:
    """What a session lends each of its connections: everything that outlives one."""

    options: SessionOptions
    reader: InputReader
    record: StreamRecord
    sink: EventSink
    stats: SessionStatistics
    tracer: TurnTracer
    redactor: Redactor
    unconfirmed: list[AudioRequest]  # commits and clears written, not yet known to be whole
    gate: TurnGate | None = None  # the client's turn detection, when it has one
    # What the gate decided and no connection has begun to carry out. One append can end a
    # turn (audio, then a commit): if the connection drops while the audio is sent, the
    # commit is still owed, and the next connection makes it after the replay.
    gate_owed: deque[GateAction] = field(default_factory=deque)


class ConnectionDriver:
    """Runs one connection (see the module docstring)."""

    __slots__ = (
        "_barrier_by", "_boundary", "_core", "_core_moved", "_handed_over", "_heard_at",
        "_next", "_open_next", "_owed", "_owed_from", "_parts", "_pong_at", "_quiet",
        "_reading", "_rotate_at", "_rotation", "_switch_by", "_transport",
    )  # fmt: skip

    def __init__(
        self,
        connection: OpenConnection,
        parts: SessionParts,
        open_next: Callable[[], Awaitable[OpenConnection]],
    ) -> None:
        self._parts = parts
        self._core = connection.core
        self._transport = bounded_sends(connection.transport, parts.options.send_timeout)
        self._open_next = open_next
        self._next: OpenConnection | None = None  # opened ahead, for a rotation
        self._handed_over = False
        self._quiet = trio.CancelScope()  # the receiver's one deadline
        self._reading = False  # the receiver waits for the socket, and only for it
        self._core_moved = trio.Event()  # the receiver woke the sender at the end
        self._rotation = trio.CancelScope()  # the rotation task, while there is one
        self._boundary: trio.Event | None = None  # a rotation waits for a turn boundary
        self._heard_at = self._pong_at = self._owed_from = trio.current_time()
        self._owed = False  # the server owes us an answer, a commit or a transcript
        self._barrier_by = math.inf  # when an unanswered end-of-input barrier is given up
        self._rotate_at = self._switch_by = math.inf
        rotation = parts.options.rotation
        if connection.expires is not None and rotation is not None:
            now = trio.current_time()
            self._rotate_at, self._switch_by = rotation_times(
                now, connection.expires - now, rotation.open_before, rotation.switch_before
            )

    def __repr__(self) -> str:
        return f"<ConnectionDriver {self._core.state.name} next={self._next is not None}>"

    @property
    def last_heard(self) -> float:
        """When the server last showed it was there (a message or a pong), on trio's clock."""
        return max(self._heard_at, self._pong_at)

    @property
    def next_connection(self) -> OpenConnection | None:
        """After :attr:`Ending.HANDED_OVER`, the connection opened ahead to take over."""
        return self._next

    async def run(self, setup_events: Sequence[RealtimeEvent], replay: int | None) -> Ending:
        """Carry the stream until the input is done or handed over. *replay*: send what the
        last connection had not finished with first, after reconnect attempt *replay* (0:
        after a rotation); ``None`` for the first connection."""
        parts = self._parts
        parts.record.begin_connection()
        parts.reader.interrupt(False)  # a rotation of an earlier connection is no more
        try:
            async with open_supervised_nursery(choose_session_failure) as nursery:
                nursery.start_soon(self._send, replay)
                await self._receive(nursery, setup_events)
            if parts.record.input_ended and not self._handed_over:
                parts.sink.close()  # every turn is out: your loop ends here
            with trio.move_on_after(parts.options.close_timeout):
                await self._transport.aclose(1000)  # goodbye
        finally:
            self._core.connection_closed()
            if not self._handed_over and self._next is not None:
                self._next.release.set()  # opened for a rotation that will not happen
        return Ending.HANDED_OVER if self._handed_over else Ending.INPUT_DONE

    # ------------------------------------------------------------------ the receiver

    async def _receive(self, nursery: trio.Nursery, setup: Sequence[RealtimeEvent]) -> None:
        core, transport, sink, stats = (
            self._core,
            self._transport,
            self._parts.sink,
            self._parts.stats,
        )
        await trio.lowlevel.checkpoint()
        for event in setup:
            if not sink.offer(event, core):
                await self._deliver(event)
        setup = ()  # delivered: an idle session need not hold the server's configuration
        self._heard_at = self._owed_from = trio.current_time()
        self._owed = core.waiting_for_server
        while True:
            with trio.CancelScope(deadline=self._next_check()) as quiet:
                self._quiet = quiet
                while core.state is not _DONE:
                    self._reading = True
                    message = await transport.receive()
                    self._reading = False
                    stats.messages_received += 1
                    self._heard_at = trio.current_time()
                    events = core.receive(message)
                    if core.state is _FAILED:
                        raise server_error(core.fatal_error)
                    for event in events:
                        if not sink.offer(event, core):
                            await self._deliver(event)
                    self._owed = core.waiting_for_server
                    if core.state is not _STREAMING:
                        self._core_moved.set()  # the sender may have the last word to say
                    elif self._boundary is not None and core.at_turn_boundary:
                        self._boundary.set()
            self._reading = False
            if core.state is _DONE:
                return
            await self._look_up(nursery)

    def _next_check(self) -> float:
        """When the receiver next has to look up from reading (see the module docstring)."""
        opts, check = self._parts.options, min(self._rotate_at, self._barrier_by)
        if opts.keepalive_interval is not None:
            check = min(check, max(self._heard_at, self._pong_at) + opts.keepalive_interval)
        if self._owed:
            check = min(check, max(self._heard_at, self._owed_from) + opts.inactivity_timeout)
        return check

    async def _look_up(self, nursery: trio.Nursery) -> None:
        """The receiver's deadline passed: see which clock ran out.

        A ping is the one way to find a connection that died without closing while nothing
        is owed (a silent speaker). Sent by the receiver, only when the server has been
        quiet, it costs no task of its own.
        """
        await trio.lowlevel.checkpoint()
        opts, core, now = self._parts.options, self._core, trio.current_time()
        if now >= self._rotate_at:
            self._rotate_at = math.inf
            nursery.start_soon(self._rotate)
        if now >= self._barrier_by:
            self._barrier_by = math.inf
            logger.warning(
                "the server did not answer the end-of-input update in %g s; ending the "
                "input with what its VAD said so far", opts.session_updated_timeout,
            )  # fmt: skip
            core.barrier_unanswered()
            self._owed = core.waiting_for_server
            self._core_moved.set()
        limit = opts.inactivity_timeout
        if self._owed and now >= max(self._heard_at, self._owed_from) + limit:
            raise STTWebsocketTimeoutError(self._awaiting(), limit, kind="inactivity")
        interval = opts.keepalive_interval
        if interval is not None and now >= max(self._heard_at, self._pong_at) + interval:
            with trio.move_on_after(opts.keepalive_timeout) as waited:
                await self._transport.ping()
            if waited.cancelled_caught:
                raise STTWebsocketTimeoutError(
                    "a pong to the keepalive ping (the connection died without closing)",
                    opts.keepalive_timeout,
                    kind="keepalive",
                )
            self._parts.stats.pings_answered += 1
            self._pong_at = trio.current_time()

    async def _deliver(self, event: RealtimeEvent) -> None:
        self._quiet.deadline = math.inf  # waiting for you is not the server being quiet
        await self._parts.sink.deliver(event)
        self._owed_from = trio.current_time()  # the server's silence counts from now
        self._quiet.deadline = self._next_check()

    def _arm(self) -> None:
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

    # ------------------------------------------------------------------ the sender

    async def _send(self, replay: int | None) -> None:
        core, parts = self._core, self._parts
        try:
            if replay is not None:
                await self._replay(replay)
            if await self._stream() is HandOver.NOW:
                await self._write(core.hand_over())
                self._handed_over = True
            else:
                parts.record.input_ended = True
                if parts.gate is not None:
                    await self._turn_ended(parts.gate)
                for message in core.end_input():
                    await self._write(message)
                if core.state is _ENDING:
                    self._barrier_by = trio.current_time() + parts.options.session_updated_timeout
            self._arm()
            while core.state is not _DONE:
                await self._core_moved.wait()
                self._core_moved = trio.Event()
                for message in core.take_outgoing():
                    await self._write(message)
                    parts.stats.commits_sent += 1
                    self._arm()
        finally:
            self._rotation.cancel()  # this connection is done with, one way or the other
        if self._reading:
            self._quiet.cancel()  # every turn is out: the receiver need not wait for more

    async def _stream(self) -> HandOver | None:
        """Send your audio, commits and clears until the input ends (``None``) or a rotation
        asks for the stream to move to the next connection (:attr:`HandOver.NOW`)."""
        reader, record, gate = self._parts.reader, self._parts.record, self._parts.gate
        await trio.lowlevel.checkpoint()
        if gate is not None:
            await self._carry_out(gate)  # what the gate decided before the last drop
        while not record.input_ended:
            item = await reader.next()
            if item is None or item is HandOver.NOW:
                return item
            if isinstance(item, AudioRequest):
                await self._request(item)
            elif gate is not None:
                await self._gated(gate, item[0])
            else:
                await self._append(*item)
        return None

    async def _append(self, data: bytes, voiced: float) -> None:
        core, parts = self._core, self._parts
        parts.record.appending(data, voiced >= 0)
        await self._transport.send(core.append_audio(data, voiced_until_ms=voiced))
        parts.stats.messages_sent += 1
        parts.stats.audio_seconds_sent += len(data) / (core.audio_format.bytes_per_ms * 1000)
        if parts.tracer.keeps_audio:
            parts.tracer.add_audio(data)

    async def _gated(self, gate: TurnGate, data: bytes) -> None:  # noqa: ASYNC910
        """Send what the client's turn detection lets through, and commit where it says a
        turn ends (``_turn_gate.py``). What it sends is speech, padded: voiced throughout.
        It runs once an append; the reader it follows is the loop's cancellation point."""
        self._parts.gate_owed.extend(gate.feed(data))
        await self._carry_out(gate)

    async def _carry_out(self, gate: TurnGate) -> None:  # noqa: ASYNC910
        """Each owed action, taken off before it starts: one begun is in the stream's record
        (appends and commits are recorded before they are written), so a replay has it."""
        owed = self._parts.gate_owed
        while owed:
            action = owed.popleft()
            if isinstance(action, bytes):
                await self._append(action, len(action) / self._core.audio_format.bytes_per_ms)
            elif action is COMMIT:
                if self._core.uncommitted_ms >= MIN_COMMIT_MS:  # else it joins the next turn
                    await self._commit()
            else:
                await self._parts.sink.deliver(action)
        self._core.speech_active = gate.speaking  # a rotation waits for the turn to end

    async def _turn_ended(self, gate: TurnGate) -> None:  # noqa: ASYNC910
        """Your commit or clear, or the end of input, ends the turn the client heard (its
        callers send next, or return to a checkpoint)."""
        stopped = gate.end_turn()
        if stopped is not None:
            await self._parts.sink.deliver(stopped)

    async def _request(self, request: AudioRequest) -> None:
        core, parts = self._core, self._parts
        parts.unconfirmed.append(request)
        if parts.gate is not None:
            await self._turn_ended(parts.gate)
            if not core.uncommitted_ms:  # nobody was speaking: nothing was sent to end
                self._confirm_requests()
                return
        if request.intent is Intent.COMMIT:
            await self._commit()
        else:
            parts.record.clearing()
            await self._write(core.clear())
            self._arm()
        self._confirm_requests()

    async def _commit(self) -> None:
        self._parts.record.committing()
        await self._write(self._core.commit())
        self._parts.stats.commits_sent += 1
        self._arm()

    def _confirm_requests(self) -> None:
        """Commits and clears written whole: their callers may go on."""
        for request in self._parts.unconfirmed:
            request.settle(sent=True)
        self._parts.unconfirmed.clear()

    async def _replay(self, attempt: int) -> None:
        """Send this connection what the last one had not finished with, commits included:
        after a reconnect (*attempt* > 0), all of it; after a rotation, only the audio the
        last one dropped uncommitted, since it finished its own turns."""
        parts, stats = self._parts, self._parts.stats
        replay = parts.record.take_replay()
        audio_format = self._core.audio_format
        largest = max(
            audio_format.bytes_per_ms * 20,
            parts.options.append_policy(audio_format.bytes_per_ms).max_bytes,
        )
        for message in parts.record.replay_messages(replay, self._core, largest):
            await self._write(message)
        self._confirm_requests()
        replayed_ms = audio_format.ms(replay.audio_bytes)
        stats.audio_seconds_replayed += replayed_ms / 1000
        if replay.lost_bytes:
            lost_ms = audio_format.ms(replay.lost_bytes)
            stats.audio_seconds_lost += lost_ms / 1000
            await self._deliver(AudioLost(lost_ms, "past the replay buffer (replay_seconds)"))
        if attempt:
            stats.reconnects += 1
            logger.info(
                "reconnected (attempt %d); %.0f ms of audio sent again", attempt, replayed_ms
            )
            await self._deliver(Reconnected(attempt, replayed_ms))
        else:
            stats.rotations += 1
            session_id = self._core.session.get("id")
            session_id = session_id if isinstance(session_id, str) else None
            logger.info("rotated to %s; %.0f ms of audio moved over", session_id, replayed_ms)
            await self._deliver(Rotated(session_id, replayed_ms))
        self._arm()

    async def _write(self, message: str) -> None:
        await self._transport.send(message)
        self._parts.stats.messages_sent += 1

    # ------------------------------------------------------------------ rotation

    async def _rotate(self) -> None:
        """Open the next connection; hand over to it at the next turn boundary, or at the
        switch time at the latest (see :class:`RotationPolicy`)."""
        await trio.lowlevel.checkpoint()
        parts, switch_by = self._parts, self._switch_by
        with self._rotation:  # the sender cancels it when this connection is done anyway
            while self._next is None:
                try:
                    self._next = await self._open_next()
                except Exception as exc:
                    cause = parts.redactor.text(str(exc))
                    if not recoverable(exc) or trio.current_time() >= switch_by:
                        logger.warning("cannot open the next connection to rotate to (%s)", cause)
                        return  # if the server ends this one, that is a lost connection
                    logger.info("opening the next connection failed (%s); trying again", cause)
                    await trio.sleep(min(ROTATION_RETRY_SECONDS, switch_by - trio.current_time()))
            if not self._core.at_turn_boundary:
                self._boundary = boundary = trio.Event()  # the receiver sets it at one
                with trio.move_on_at(switch_by):
                    await boundary.wait()
                self._boundary = None
            if not parts.record.input_ended:
                parts.reader.interrupt()
