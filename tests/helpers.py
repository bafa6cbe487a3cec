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

import numpy as np
import numpy.typing as npt
import trio

from trio_stt import OpenAISTTTranscriptionSession, StreamedAudioInput
from trio_stt.testing import FakeServer


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
        if "_session." in n or ("trio_websocket" in n and "reader" in n and "serve" not in n)
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
        match = re.search(r"server on (http://\S+)", line)
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
