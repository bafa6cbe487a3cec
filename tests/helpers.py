"""Shared helpers for the tests."""

from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import trio

from trio_stt import (
    AudioLost,
    OpenAISTTTranscriptionSession,
    RealtimeEvent,
    Reconnected,
    Reconnecting,
    Rotated,
    ServerError,
    SessionOptions,
    SessionStatistics,
    StreamedAudioInput,
    STTModelSettings,
    Turn,
)
from trio_stt.testing import (
    FakeServer,
    RealtimeFaults,
    RecordedSession,
    ScriptedRecognizer,
    open_fake_server,
)


async def assert_nothing_left(server: FakeServer) -> None:
    """No task of a session is left, and the server saw its socket close."""
    assert session_tasks() == []
    with trio.fail_after(5):
        await server.wait_idle()


def live_tasks() -> list[str]:
    """Names of every task still running under the root task."""
    names: list[str] = []

    def walk(task: trio.lowlevel.Task) -> None:
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                names.append(child.name)
                walk(child)

    walk(trio.lowlevel.current_root_task())
    return names


def session_tasks() -> list[str]:
    """Tasks belonging to a client session or its WebSocket (none may outlive a session)."""
    return [
        n
        for n in live_tasks()
        if n.startswith(("trio_stt._session.", "trio_stt._driver."))
        or ("trio_websocket" in n and "reader" in n and "serve" not in n)
    ]


async def feed(audio: StreamedAudioInput, *parts: np.ndarray, chunk_ms: int = 100) -> None:
    """Add *parts* in chunks of *chunk_ms*, then end the input."""
    step = 24 * chunk_ms
    for part in parts:
        for start in range(0, len(part), step):
            await audio.add_audio(part[start : start + step])
    await audio.aclose()


async def push_to_talk(session: OpenAISTTTranscriptionSession, audio: StreamedAudioInput,
                       *turns: np.ndarray) -> None:  # fmt: skip
    """Say each of *turns*, committing after each but the last; the end commits that one."""
    for turn in turns[:-1]:
        await audio.add_audio(turn)
        await session.commit()
    await feed(audio, turns[-1])


def wait_for_server_url(server: subprocess.Popen[str]) -> str:
    """Read the server's stderr until it says where it listens (or give up after 30 s)."""
    assert server.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([server.stderr], [], [], deadline - time.monotonic())
        line = server.stderr.readline() if ready else ""
        match = re.search(r"server on (https?://\S+)", line)
        if match:
            return match.group(1)
        if server.poll() is not None:
            break
    raise AssertionError("trio-stt serve did not start")


@contextmanager
def serve_in_a_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``trio-stt serve --port 0 *args`` in a process of its own, as a user runs it, and the
    URL it serves. Killed on the way out unless the block stopped it (:func:`stop_server`)."""
    command = [sys.executable, "-m", "trio_stt", "serve", "--port", "0", *args]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as server:
        try:
            yield server, wait_for_server_url(server)
        finally:
            if server.returncode is None:
                server.kill()
                server.communicate(timeout=30)


def stop_server(server: subprocess.Popen[str]) -> tuple[int, str]:
    """Ctrl+C (SIGINT), as a user stops it: its exit code and what it wrote to stderr."""
    server.send_signal(signal.SIGINT)
    _, log = server.communicate(timeout=30)
    return server.returncode, log


def tone(k: int, seconds: float) -> npt.NDArray[np.float32]:
    """Turn *k* of a test conversation: a tone at 200 + 10 k Hz, at 24 kHz."""
    t = np.arange(int(seconds * 24_000)) / 24_000
    return (0.3 * np.sin(2 * np.pi * (200 + 10 * k) * t)).astype(np.float32)


def hear(samples: npt.NDArray[np.int16], rate: int) -> str:
    """Which :func:`tone` the audio holds, and for how long (to a tenth of a second): a
    recognizer for ``ScriptedRecognizer(fn=hear)`` under which a turn lost, cut or sent
    twice changes the transcript."""
    frames = samples[: len(samples) // 240 * 240].astype(np.float64).reshape(-1, 240)
    loud = np.sqrt((frames**2).mean(axis=1)) > 1000
    if not loud.any():
        return ""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    pitch = np.argmax(spectrum) * rate / len(samples)
    return f"turn {round((pitch - 200) / 10)} {loud.sum() / 100:.1f}s"


Script = list[tuple[int | None, float]]
"""A conversation: ``(k, seconds)`` is turn *k*'s :func:`tone`, ``(None, seconds)`` quiet."""

CONNECTION_EVENTS = (Rotated, Reconnecting, Reconnected, AudioLost, ServerError)


@dataclass
class Conversation:
    """What :func:`converse` heard: the turns' texts, the events kept, the session's
    statistics, and every connection the server saw."""

    turns: list[str]
    events: list[RealtimeEvent]
    stats: SessionStatistics
    sessions: list[RecordedSession]


async def converse(
    settings: STTModelSettings,
    script: Script,
    faults: RealtimeFaults,
    *,
    commit_after_turns: bool = False,
    keep: tuple[type[RealtimeEvent], ...] = CONNECTION_EVENTS,
    refuse_after_first_turn: int = 0,
    leave_after: type[RealtimeEvent] | None = None,
    in_memory: bool = True,
    **options: object,
) -> Conversation:
    """Speak *script* in real time, a second at a time, to a fake server that hears tones
    (:func:`hear`), in memory unless told otherwise (run it on a mock clock), committing
    after each turn if asked.
    Keeps the events of the types in *keep*; leaves the block at the first *leave_after*.
    Checks that nothing of the session is left when it is over."""
    async with open_fake_server(recognizer=ScriptedRecognizer(fn=hear), faults=faults) as server:
        audio = StreamedAudioInput()
        turns: list[str] = []
        events: list[RealtimeEvent] = []
        model = server.model("gpt-4o-transcribe")
        connector = server.connector if in_memory else None
        session_options = SessionOptions(connector=connector, **options)  # type: ignore[arg-type]
        async with model.create_session(audio, settings, options=session_options) as session:

            async def speak() -> None:
                for k, seconds in script:
                    sound = tone(k, seconds) if k is not None else np.zeros(int(seconds * 24_000))
                    for start in range(0, len(sound), 24_000):
                        await audio.add_audio(sound[start : start + 24_000].astype(np.float32))
                        await trio.sleep(min(1.0, (len(sound) - start) / 24_000))
                    if commit_after_turns and k is not None:
                        await session.commit()
                await audio.aclose()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(speak)
                async for event in session.events():
                    if isinstance(event, Turn):
                        assert not event.failed, event
                        if event.text:
                            turns.append(event.text)
                        if len(turns) == 1 and refuse_after_first_turn:
                            server.faults.refuse_connections = refuse_after_first_turn
                    elif isinstance(event, keep):
                        events.append(event)
                    if leave_after is not None and isinstance(event, leave_after):
                        nursery.cancel_scope.cancel()
                        break
        await assert_nothing_left(server)
        return Conversation(turns, events, session.statistics(), server.sessions)
