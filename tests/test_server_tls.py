"""The server off loopback: TLS with --certfile/--keyfile, and a warning without it.

A CA made by trustme signs the server's certificate; the client trusts it through
``ClientConfig(ssl_context=...)``, over ``https`` and ``wss``, as a team's LAN setup would.
"""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trio
import trustme

from trio_stt import (
    APIConnectionError,
    AudioInput,
    ClientConfig,
    OpenAISTTModel,
    StreamedAudioInput,
    STTModelSettings,
)
from trio_stt.server import ScriptedRecognizer, ServerConfig, open_server


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pem_files(authority: trustme.CA, tmp_path: Path) -> tuple[str, str]:
    cert = authority.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "server.pem", tmp_path / "server.key"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


def trusting(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


async def test_rest_and_realtime_over_tls_with_a_key(
    authority: trustme.CA, pem_files: tuple[str, str]
) -> None:
    certfile, keyfile = pem_files
    config = ServerConfig(recognizer=ScriptedRecognizer(["over tls"]), api_key="lan-key")
    async with open_server(config, certfile=certfile, keyfile=keyfile) as server:
        assert server.base_url.startswith("https://")
        assert server.websocket_url.startswith("wss://")
        client = ClientConfig(
            base_url=server.base_url, api_key="lan-key", ssl_context=trusting(authority)
        )
        async with OpenAISTTModel("whisper-1", client) as model:
            assert await model.transcribe(AudioInput(np.zeros(24_000, np.float32))) == "over tls"
        audio = StreamedAudioInput()
        async with OpenAISTTModel("gpt-4o-transcribe", client) as model:
            settings = STTModelSettings(turn_detection="manual")
            async with model.create_session(audio, settings) as session:
                await audio.add_audio(np.full(24_000, 0.1, np.float32))
                await audio.aclose()  # the end commits the turn
                turns = [text async for text in session.transcribe_turns()]
        assert turns == ["over tls"]


async def test_a_client_that_does_not_trust_the_certificate_is_refused(
    pem_files: tuple[str, str],
) -> None:
    certfile, keyfile = pem_files
    config = ServerConfig(recognizer=ScriptedRecognizer(["never"]))
    async with open_server(config, certfile=certfile, keyfile=keyfile) as server:
        client = ClientConfig(base_url=server.base_url, api_key="k", max_retries=0)
        async with OpenAISTTModel("whisper-1", client) as model:
            with trio.fail_after(10), pytest.raises(APIConnectionError, match=r"(?i)certificate"):
                await model.transcribe(AudioInput(np.zeros(24_000, np.float32)))


def first_lines(*args: str) -> str:
    """What ``trio-stt serve --port 0 --scripted hi *args`` says as it starts, and then on
    Ctrl+C (the server's line, then any warning, then its goodbye)."""
    command = [sys.executable, "-m", "trio_stt", "serve", "--port", "0", "--scripted", "hi"]
    with subprocess.Popen([*command, *args], stderr=subprocess.PIPE, text=True) as server:
        assert server.stderr is not None
        line = server.stderr.readline()
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        return line + server.stderr.read()  # not communicate(): it skips what readline buffered


def test_serve_warns_when_it_binds_beyond_loopback_without_tls(
    pem_files: tuple[str, str],
) -> None:
    warning = "0.0.0.0 is reachable from other machines and there is no TLS"
    assert warning in first_lines("--host", "0.0.0.0")
    certfile, keyfile = pem_files
    tls = first_lines("--host", "0.0.0.0", "--certfile", certfile, "--keyfile", keyfile)
    assert tls.startswith("trio-stt server on https://0.0.0.0:")
    assert "no TLS" not in tls
    loopback = first_lines()
    assert loopback.startswith("trio-stt server on http://127.0.0.1:")
    assert "no TLS" not in loopback
