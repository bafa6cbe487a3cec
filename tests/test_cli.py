"""The command line, as a subprocess: exit codes, output, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import trio

from trio_stt._audio import write_wav
from trio_stt.testing import open_fake_server, speech_like


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trio_stt.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_help_everywhere() -> None:
    for args in ([], ["transcribe"], ["stream"], ["serve"]):
        out = cli(*args, "--help")
        assert out.returncode == 0 and "usage: trio-stt" in out.stdout


@pytest.mark.parametrize(
    ("content", "message"), [(b"not audio at all", "not a PCM WAV file"), (None, "cannot open")]
)
def test_bad_file_is_one_line_and_exit_1(tmp_path, content: bytes | None, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    out = cli("stream", str(path), "--base-url", "http://127.0.0.1:9/v1")
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and message in out.stderr
    assert "Traceback" not in out.stderr


def test_closed_port_is_one_line_and_exit_1(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "a.wav"
    path.write_bytes(write_wav(np.zeros(2400, np.int16), 24_000))
    out = cli("stream", str(path), "--base-url", "http://127.0.0.1:9/v1", "--fast")
    assert out.returncode == 1
    assert out.stderr.startswith("trio-stt: error: cannot connect to 127.0.0.1:9")
    assert "Traceback" not in out.stderr


async def test_transcribe_and_stream_against_a_server(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "speech.wav"
    path.write_bytes(write_wav((speech_like(0.5) * 32767).astype(np.int16), 24_000))
    async with open_fake_server(["hello from the server"]) as server:
        done = await trio.to_thread.run_sync(
            lambda: cli("transcribe", str(path), "--base-url", server.base_url, "--json")
        )
        assert done.returncode == 0, done.stderr
        assert '"text": "hello from the server"' in done.stdout
        streamed = await trio.to_thread.run_sync(
            lambda: cli("stream", str(path), "--base-url", server.base_url, "--fast")
        )
        assert streamed.returncode == 0, streamed.stderr
        assert streamed.stdout.strip() == "hello from the server"
