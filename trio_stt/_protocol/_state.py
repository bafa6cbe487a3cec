"""The lifecycle of a realtime transcription session, as data.

Theory of operation
-------------------
A session lives through a fixed sequence of phases, and every rule about what may be said
in which phase is in the table below: :class:`RealtimeConnection` (client role) looks up
each step here and never decides a transition anywhere else. The trio shell keeps no
protocol flags of its own; it asks the core (``state``, ``waiting_for_server``).

Client phases, in order:

* ``AWAITING_CREATED``: the socket is open; the server speaks first (``session.created``).
* ``CREATED``: we may configure.
* ``CONFIGURING``: our ``session.update`` is out; ``session.updated`` makes us ``STREAMING``,
  an error makes us ``FAILED`` (a session the server refused to configure would never
  transcribe anything).
* ``STREAMING``: audio, commits and clears. Server VAD may commit turns by itself.
* ``ENDING``: the input has ended under server VAD. We cannot know from our own clock what
  the server's VAD made of the last audio (a file sent flat out ends long before the server
  has heard it), so we asked a question the server answers in order after the last append
  (an empty ``session.update``: a patch that changes nothing). When the answer is back, the
  server's VAD has seen everything: speech it is still inside must be committed by us, and
  nothing else will ever be committed.
* ``DRAINING``: nothing more will be sent; we wait for every commit to be answered and every
  committed item to complete or fail.
* ``DONE``: every turn is out. The shell closes the socket with 1000.
* ``CLOSED``: the connection is gone (after ``DONE``, or abruptly from any phase).
* ``FAILED``: a fatal error. Nothing may follow.

A session that moves to a new connection (rotation before the server's time limit) hands
over from ``STREAMING`` straight to ``DRAINING``: it clears what the server holds uncommitted
(that audio goes to the new connection) and waits for the turns already committed.

Manual mode skips ``ENDING``: without server VAD the client knows everything the server
does, so the final commit (or clear) is decided at once.

The table is keyed by the state we are in and what happens (an intent of ours or a fact
from the server), and gives the state it leads to. Absent entries are illegal; for our own
intents that is a :class:`LocalProtocolError`. Events that do not change the phase (audio,
deltas, completions) are not steps of this machine at all.
"""

from __future__ import annotations

import enum

__all__ = ["ClientState", "ServerState", "Step", "CLIENT_TRANSITIONS", "SERVER_TRANSITIONS"]


class ClientState(enum.Enum):
    AWAITING_CREATED = "awaiting session.created"
    CREATED = "created"
    CONFIGURING = "awaiting session.updated"
    STREAMING = "streaming"
    ENDING = "input ended, awaiting the server's VAD"
    DRAINING = "draining the last turns"
    DONE = "done"
    CLOSED = "closed"
    FAILED = "failed"


class Step(enum.Enum):
    """What moves a session from one phase to the next."""

    CREATED = "session.created"
    UPDATE = "send session.update"
    UPDATED = "session.updated"
    SEND_AUDIO = "send audio, commit or clear"
    END_INPUT_VAD = "end of input under server VAD"
    END_INPUT = "end of input"
    HAND_OVER = "hand the stream over to another connection"
    VAD_SETTLED = "the server's answer after the last append"
    DRAINED = "every turn finished"
    FATAL = "fatal error"
    CONNECTION_CLOSED = "connection closed"


_S = ClientState

CLIENT_TRANSITIONS: dict[ClientState, dict[Step, ClientState]] = {
    _S.AWAITING_CREATED: {Step.CREATED: _S.CREATED},
    _S.CREATED: {Step.UPDATE: _S.CONFIGURING},
    _S.CONFIGURING: {Step.UPDATED: _S.STREAMING},
    _S.STREAMING: {
        Step.UPDATE: _S.STREAMING,  # a later update (a new prompt): a patch, not a phase
        Step.SEND_AUDIO: _S.STREAMING,
        Step.END_INPUT_VAD: _S.ENDING,
        Step.END_INPUT: _S.DRAINING,
        Step.HAND_OVER: _S.DRAINING,
    },
    _S.ENDING: {Step.VAD_SETTLED: _S.DRAINING},
    _S.DRAINING: {Step.DRAINED: _S.DONE},
    _S.DONE: {},
    _S.CLOSED: {},
    _S.FAILED: {},
}
for _state in ClientState:
    if _state not in (_S.CLOSED, _S.FAILED):
        CLIENT_TRANSITIONS[_state][Step.FATAL] = _S.FAILED
        CLIENT_TRANSITIONS[_state][Step.CONNECTION_CLOSED] = _S.CLOSED


class ServerState(enum.Enum):
    """The server role's phases: it speaks first, then serves one configured session."""

    UNCONFIGURED = "session.created sent, awaiting session.update"
    CONFIGURED = "configured"
    CLOSED = "closed"


SERVER_TRANSITIONS: dict[ServerState, frozenset[ServerState]] = {
    ServerState.UNCONFIGURED: frozenset({ServerState.CONFIGURED, ServerState.CLOSED}),
    ServerState.CONFIGURED: frozenset({ServerState.CONFIGURED, ServerState.CLOSED}),
    ServerState.CLOSED: frozenset(),
}
