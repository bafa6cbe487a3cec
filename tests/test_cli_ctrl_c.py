"""Ctrl+C (SIGINT) in the middle of every command: exit 130, no traceback, nothing left.

``stream`` and ``listen`` have their own tests beside their features (test_cli.py,
test_microphone.py); these are the others, each interrupted while it is doing its work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
import trio

from trio_stt._audio import write_wav
from trio_stt.server import RestFault
from trio_stt.testing import open_fake_server


async def interrupt(args: list[str], ready: Callable[[bytes], bool] | Awaitable[object]) -> str:
    """Run ``trio-stt *args*``, send SIGINT once *ready*; return stderr, checking exit 130."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trio_stt", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stderr is not None
    err = bytearray()
    try:
        with trio.fail_after(60):
            if callable(ready):
                while not ready(bytes(err)):
                    chunk = await process.stderr.receive_some()
                    assert chunk, f"ended before it was ready: {bytes(err)!r}"
                    err += chunk
            else:
                await ready
            process.send_signal(signal.SIGINT)
            code = await process.wait()
            while chunk := await process.stderr.receive_some():
                err += chunk
    finally:
        process.kill()
        with trio.move_on_after(10, shield=True):
            await process.wait()
    text = err.decode()
    assert code == 130, text
    assert "Traceback" not in text and "error" not in text.lower(), text
    return text


async def test_ctrl_c_while_a_transcription_waits_for_its_answer(tmp_path: Path) -> None:
    path = tmp_path / "talk.wav"
    path.write_bytes(write_wav(np.zeros(24_000, np.int16), 24_000))
    async with open_fake_server() as server:
        server.app.rest_faults.append(RestFault(hang=True))
        args = ["transcribe", str(path), "--base-url", server.base_url]
        await interrupt(args, server.app.request_started.wait())
        with trio.fail_after(10):
            await server.app.client_disconnected.wait()  # the request was abandoned


async def test_ctrl_c_stops_the_server() -> None:
    said = await interrupt(
        ["serve", "--port", "0", "--scripted", "hi"], lambda err: b"Ctrl+C to stop" in err
    )
    assert said.splitlines()[-1].startswith("trio-stt server on http://127.0.0.1:")


@pytest.mark.parametrize("moment", [b"Running on", b"realtime session configured"])
async def test_ctrl_c_during_the_demo(moment: bytes) -> None:
    """While its in-process server answers files, and while live sessions run.

    With trio's default handling, the interrupt could land in the server's task, which
    logged it as an ASGI error and closed the client's socket with 1011: exit 1, not 130.
    """
    # -v: the log says when each part is under way.
    await interrupt(["-v", "demo"], lambda err: moment in err)
