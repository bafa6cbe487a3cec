"""The command line, as a subprocess: exit codes, output, one-line errors."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile
import trio
import trio_websocket

import trio_stt
import trio_stt.cli
from trio_stt._audio import write_wav
from trio_stt._demo import _Score, _summary
from trio_stt.testing import (
    bundled_samples,
    open_fake_server,
    silence,
    speech_like,
    word_error_rate,
)

from .helpers import serve_in_a_process, stop_server, wait_for_server_url


def speech_file(folder: Path) -> Path:
    """Half a second of speech-like audio as a WAV file in *folder*."""
    path = folder / "speech.wav"
    path.write_bytes(write_wav((speech_like(0.5) * 32767).astype(np.int16), 24_000))
    return path


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trio_stt.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_help_everywhere() -> None:
    for args in ([], ["transcribe"], ["stream"], ["listen"], ["serve"], ["demo"]):
        out = cli(*args, "--help")
        assert out.returncode == 0 and "usage: trio-stt" in out.stdout


@pytest.mark.parametrize(
    ("content", "message"), [(b"not audio at all", "not an audio format"), (None, "cannot open")]
)
def test_bad_file_is_one_line_and_exit_1(tmp_path, content: bytes | None, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    out = cli("stream", str(path), "--base-url", "http://127.0.0.1:9/v1")
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and message in out.stderr
    assert "Traceback" not in out.stderr


def test_an_unreadable_file_is_named_in_plain_words(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The decoder error showed soundfile's ``<_io.BufferedReader name=...>`` and told
    everybody to convert ``talk.m4a``."""
    path = tmp_path / "memo.m4a"
    path.write_bytes(b"\0\0\0\x18ftypM4A " + bytes(64))
    out = cli("stream", str(path), "--base-url", "http://127.0.0.1:9/v1")
    assert out.returncode == 1
    assert "BufferedReader" not in out.stderr and "talk.m4a" not in out.stderr
    assert "is MP4/M4A (AAC), which this decoder (libsndfile) cannot read" in out.stderr
    assert out.stderr.rstrip().endswith(f"ffmpeg -i {path} {tmp_path / 'memo.flac'})")
    noise = tmp_path / "noise.m4a"
    noise.write_bytes(b"not audio at all")
    out = cli("stream", str(noise), "--base-url", "http://127.0.0.1:9/v1")
    assert "(Format not recognised)" in out.stderr and "BufferedReader" not in out.stderr


def test_closed_port_is_one_line_and_exit_1(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "a.wav"
    path.write_bytes(write_wav(np.zeros(2400, np.int16), 24_000))
    for command in ("stream", "transcribe"):  # the WebSocket and the HTTP path alike
        out = cli(command, str(path), "--base-url", "http://127.0.0.1:9/v1")
        assert out.returncode == 1
        assert out.stderr.startswith("trio-stt: error: cannot connect to 127.0.0.1:9")
        assert out.stderr.rstrip().endswith("(is a server running there?)")
        assert len(out.stderr.splitlines()) == 1 and "Traceback" not in out.stderr


async def test_stereo_progress_counts_seconds_of_audio_not_samples(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A stereo file's progress said "sent 5.9 / 2.9 s": the total was divided by its
    channels."""
    mono, _ = bundled_samples()[1].read()
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([mono, mono], axis=1), 24_000)
    async with open_fake_server(["stereo"]) as server:
        out = await trio.to_thread.run_sync(
            lambda: cli("stream", str(path), "--base-url", server.base_url, "--fast")
        )
    assert out.returncode == 0, out.stderr
    assert "sent 3.3 / 3.3 s, 0 turn(s)" in out.stderr.splitlines()


async def test_transcribe_and_stream_against_a_server(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = speech_file(tmp_path)
    async with open_fake_server(["hello from the server"]) as server:
        done = await trio.to_thread.run_sync(
            lambda: cli("transcribe", str(path), "--base-url", server.base_url, "--json")
        )
        assert done.returncode == 0, done.stderr
        assert '"text": "hello from the server"' in done.stdout
        spoken = bundled_samples()[1].path  # real speech: the client's VAD hears it
        streamed = await trio.to_thread.run_sync(
            lambda: cli("stream", str(spoken), "--base-url", server.base_url, "--fast")
        )
        assert streamed.returncode == 0, streamed.stderr
        assert streamed.stdout.strip() == "hello from the server"
        lines = streamed.stderr.splitlines()
        assert "hello from the server" in lines  # the deltas, as they came, on a line of their own
        assert not any("one turn" in line for line in lines)  # the client finds the turns
        assert "sent 3.3 / 3.3 s, 0 turn(s)" in lines  # progress, each on its own line
        as_json = await trio.to_thread.run_sync(
            lambda: cli("stream", str(spoken), "--base-url", server.base_url, "--fast", "--json")
        )
        assert json.loads(as_json.stdout) == {"turn": 1, "text": "hello from the server"}


async def test_stream_into_one_log_writes_each_turn_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``stream x.wav > log 2>&1``: the live text on stderr repeated every final turn."""
    spoken = bundled_samples()[1].path
    log = tmp_path / "log"
    async with open_fake_server(["hello from the server"]) as server:
        with log.open("w") as file:
            args = [sys.executable, "-m", "trio_stt.cli", "stream", str(spoken), "--fast"]
            args += ["--base-url", server.base_url]
            run = partial(subprocess.run, args, stdout=file, stderr=subprocess.STDOUT, timeout=60)
            done = await trio.to_thread.run_sync(run)
    assert done.returncode == 0
    lines = log.read_text().splitlines()
    assert lines.count("hello from the server") == 1, lines
    assert "sent 3.3 / 3.3 s, 0 turn(s)" in lines


def test_bad_arguments_are_one_line_and_exit_2() -> None:
    out = cli("stream", "x.wav", "--chunk-ms", "many")
    assert out.returncode == 2 and "invalid int value" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "args",
    [("stream", "x.wav", "--chunk-ms", "0"), ("serve", "--max-sessions", "-1"),
     ("serve", "--max-body-bytes", "0")],
)  # fmt: skip
def test_non_positive_numbers_are_bad_arguments_exit_2(args: tuple[str, ...]) -> None:
    """The help promises 2 for bad arguments; a zero is one, found before anything runs."""
    out = cli(*args)
    assert out.returncode == 2, out.stderr
    option = next(a for a in args if a.startswith("--"))
    last = out.stderr.strip().splitlines()[-1]  # after the usage, one line says what is wrong
    assert last.endswith(f"argument {option}: must be a positive whole number; got {args[-1]}")
    assert "Traceback" not in out.stderr


def test_serve_help_explains_every_option() -> None:
    out = cli("serve", "--help")
    for option in ("--port", "--max-body-bytes", "--max-sessions", "--host"):
        line = next(line for line in out.stdout.splitlines() if line.strip().startswith(option))
        text = line + out.stdout.split(line, 1)[1].split("\n  -", 1)[0]
        assert "default" in text, f"{option} says nothing of its default: {text!r}"


@pytest.mark.speech
def test_stream_a_bundled_clip_against_serve_in_another_process() -> None:
    """Two processes, as a user would run them: `trio-stt serve`, then `trio-stt stream`."""
    sample = next(s for s in bundled_samples() if len(s.turns) > 1)
    with serve_in_a_process() as (server, base_url):
        out = cli(
            "stream", str(sample.path), "--base-url", base_url,
            "--model", "gpt-transcribe", "--vad", "server_vad",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        turns = out.stdout.splitlines()
        assert len(turns) == len(sample.turns), turns
        assert word_error_rate(sample.text, " ".join(turns)) <= 0.35
        code, log = stop_server(server)  # Ctrl+C: a clean stop, not a traceback
        assert code == 130
        assert "Traceback" not in log


def test_serve_options_key_and_body_limit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = speech_file(tmp_path)
    key = "sk-test-cli-0123456789"
    serving = serve_in_a_process(
        "--scripted", "it works", "--require-api-key", key, "--max-body-bytes", "100000"
    )
    with serving as (_, url):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        refused = cli("transcribe", str(path), "--base-url", url, "--api-key", "sk-wrong-000000")
        assert refused.returncode == 1 and "Incorrect API key" in refused.stderr
        assert refused.stderr.count("\n") == 1 and "sk-wrong" not in refused.stderr
        ok = cli("transcribe", str(path), "--base-url", url, "--api-key", key, env=env)
        assert ok.returncode == 0 and ok.stdout.strip() == "it works", ok.stderr
        big = tmp_path / "big.wav"
        big.write_bytes(write_wav(np.zeros(100_000, np.int16), 24_000))
        too_big = cli("transcribe", str(big), "--base-url", url, "--api-key", key, env=env)
        assert too_big.returncode == 1 and "Maximum content size" in too_big.stderr


@pytest.mark.speech
def test_demo_prints_every_clip_and_its_word_error_rate() -> None:
    out = cli("demo")
    assert out.returncode == 0, out.stdout + out.stderr
    for sample in bundled_samples():
        assert out.stdout.count(f"  {sample.name}.wav\n") == 2  # as a file and live
    rates = [float(line.split()[1]) for line in out.stdout.splitlines() if "    WER " in line]
    assert len(rates) == 2 * len(bundled_samples())
    assert max(rates) <= 0.35
    assert "every clip within WER 0.35 with the expected turns" in out.stdout


def test_demo_verdict_fails_on_a_bad_clip_or_a_wrong_turn_count() -> None:
    good = _Score("live", "a", turns=2, expected_turns=2, wer=0.1)
    assert _summary(io.StringIO(), [good, replace(good, path="file")], 0.35)
    worse = replace(good, path="file", wer=0.5)
    assert not _summary(io.StringIO(), [good, worse], 0.35)
    report = io.StringIO()
    assert not _summary(report, [replace(good, turns=1), replace(good, path="file")], 0.35)
    assert "wrong turn count: a" in report.getvalue()


def test_demo_failure_is_one_line_and_exit_1(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def fails(**_: object) -> bool:
        await trio.lowlevel.checkpoint()
        return False

    monkeypatch.setattr(trio_stt.cli, "run_demo", fails)
    assert trio_stt.cli.main(["demo"]) == 1


async def test_ctrl_c_during_stream_exits_130_and_says_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Ctrl+C while a stream is live: no "internal error", no traceback, exit 130."""
    path = tmp_path / "long.wav"
    path.write_bytes(write_wav((speech_like(30.0) * 32767).astype(np.int16), 24_000))
    async with open_fake_server(["never heard"]) as server:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "trio_stt.cli", "stream", str(path),
             "--base-url", server.base_url, "--model", "gpt-4o-transcribe"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        try:
            with trio.fail_after(30):
                await server.app.realtime.session_started.wait()
                await server.sessions[0].audio_started.wait()  # the stream is live
                process.send_signal(signal.SIGINT)
                code = await process.wait()
            assert process.stderr is not None and process.stdout is not None
            stderr = (await process.stderr.receive_some(65536) or b"").decode()
            assert code == 130, stderr
            said = [line for line in stderr.splitlines() if not line.startswith("sent ")]
            assert said == []  # progress, and nothing else: no traceback, no "error"
            with trio.fail_after(5):
                await server.wait_idle()  # and the socket was closed
        finally:
            process.kill()
            with trio.move_on_after(10, shield=True):
                await process.wait()


@pytest.mark.parametrize(("flags", "answer"), [((), "error"), (("--lenient",), "session.updated")])
async def test_serve_lenient_takes_what_openai_refuses(flags: tuple[str, ...], answer: str) -> None:
    command = [sys.executable, "-m", "trio_stt.cli", "serve", "--port", "0", "--scripted", "hi"]
    server = await trio.to_thread.run_sync(
        partial(subprocess.Popen, [*command, *flags], stderr=subprocess.PIPE, text=True)
    )
    misspelled = {"model": "gpt-live-transcribe", "keyword": ["AC-42"]}
    update = {"type": "session.update", "session": {"type": "transcription", "audio": {
        "input": {"transcription": misspelled, "turn_detection": None}}}}  # fmt: skip
    try:
        base_url = await trio.to_thread.run_sync(wait_for_server_url, server)
        url = base_url.replace("http://", "ws://", 1) + "/realtime?intent=transcription"
        async with trio_websocket.open_websocket_url(url) as ws:
            await ws.get_message()  # session.created
            await ws.send_message(json.dumps(update))
            reply = json.loads(await ws.get_message())
        assert reply["type"] == answer, reply
    finally:
        server.kill()
        with trio.move_on_after(10, shield=True):
            await trio.to_thread.run_sync(server.wait)
        if server.stderr:
            server.stderr.close()


def test_version_and_python_dash_m() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trio_stt", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0
    assert out.stdout.strip() == f"trio-stt {trio_stt.__version__}"


def test_a_port_in_use_is_named_with_the_flag_to_change_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = cli("serve", "--port", str(port))  # PocketSphinx: seconds to load
    assert out.returncode == 1
    assert "loading" not in out.stderr  # found before the model was loaded, not after
    assert out.stderr.strip().splitlines()[-1] == (
        f"trio-stt: error: port {port} on 127.0.0.1 is already in use; choose another with "
        "--port (--port 0 picks a free one)"
    )
    assert "Traceback" not in out.stderr


async def test_verbose_logs_the_trio_stt_logger(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = speech_file(tmp_path)
    async with open_fake_server(["logged"]) as server:
        args = ["stream", str(path), "--base-url", server.base_url, "--fast"]
        quiet = await trio.to_thread.run_sync(lambda: cli(*args))
        loud = await trio.to_thread.run_sync(lambda: cli("-v", *args))
    assert quiet.returncode == loud.returncode == 0
    assert "INFO" not in quiet.stderr
    assert "trio-stt: INFO trio_stt: realtime session configured: gpt-live-transcribe" in (
        loud.stderr
    )


class _HTMLPages(http.server.BaseHTTPRequestHandler):
    """A web server that is not an OpenAI API: every request, a WebSocket handshake
    included, gets an HTML 404."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.do_GET()

    def do_GET(self) -> None:
        page = b"<html><head><title>404 Not Found</title></head><body>nope</body></html>"
        self.send_response(404)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("command", "said"),
    [("transcribe", "HTTP 404"), ("stream", "websocket handshake rejected with HTTP 404")],
)
def test_a_server_that_is_not_openai_compatible_gets_one_line(  # type: ignore[no-untyped-def]
    tmp_path, command: str, said: str
) -> None:
    path = speech_file(tmp_path)
    with http.server.HTTPServer(("127.0.0.1", 0), _HTMLPages) as pages:
        threading.Thread(target=pages.serve_forever, daemon=True).start()
        try:
            base_url = f"http://127.0.0.1:{pages.server_address[1]}"
            out = cli(command, str(path), "--base-url", base_url)
        finally:
            pages.shutdown()
    assert out.returncode == 1
    assert out.stderr == (
        f"trio-stt: error: {said}: the server answered with an HTML page ('404 Not Found'), "
        "not an OpenAI-style error: is --base-url an OpenAI-compatible API (it usually ends "
        "in /v1)?\n"
    )


def test_errors_name_the_flags_not_python_arguments(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    out = cli("transcribe", str(tmp_path / "x.wav"), env=env)
    assert out.returncode == 1
    assert "pass --api-key" in out.stderr and "--base-url is https://api.openai.com/v1" in (
        out.stderr
    )
    assert "api_key=" not in out.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["transcribe", "--model", "gpt-live-transcribe"],
            "gpt-live-transcribe is realtime-only; stream it (trio-stt stream) or pick a file "
            "model",
        ),
        (
            ["stream", "--model", "gpt-live-transcribe", "--vad", "server_vad"],
            "gpt-live-transcribe has no server VAD; leave --vad out (the client finds the "
            "turns) or pass --vad manual",
        ),
    ],
)
def test_model_errors_speak_of_commands_and_flags(tmp_path, args: list[str], said: str) -> None:  # type: ignore[no-untyped-def]
    out = cli(*args, str(speech_file(tmp_path)), "--base-url", "http://127.0.0.1:9/v1")
    assert out.returncode == 1
    assert out.stderr == f"trio-stt: error: {said}\n"


def test_plain_http_to_another_host_needs_allow_insecure_and_warns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = speech_file(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    remote = ["transcribe", str(path), "--base-url", "http://speech.invalid:8000/v1"]
    refused = cli(*remote, "--api-key", "sk-test-remote-0123456789", env=env)
    assert refused.returncode == 1
    assert refused.stderr == (
        "trio-stt: error: refusing to send the API key in cleartext (http://) to "
        "speech.invalid; use https/wss or pass --allow-insecure\n"
    )
    allowed = cli(*remote, "--api-key", "sk-test-remote-0123456789", "--allow-insecure", env=env)
    first = allowed.stderr.splitlines()[0]
    assert first == (
        "trio-stt: warning: sending the API key to speech.invalid over plain http; anyone on "
        "the way can read it"
    )
    assert allowed.returncode == 1 and "cleartext" not in allowed.stderr  # it tried to connect
    assert "sk-test-remote" not in allowed.stderr
    # a self-hosted server elsewhere may need no key at all: nothing refuses to try
    keyless = cli(*remote, env=env)
    assert keyless.returncode == 1
    assert "API key" not in keyless.stderr and "cannot connect" in keyless.stderr


async def test_turns_and_live_text_never_share_a_line_in_one_pipe(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """stdout and stderr into the same pipe, turns arriving while progress flows: each line
    is one thing, and each turn is there once (the live text would repeat it)."""
    speech = np.concatenate([np.concatenate([speech_like(0.8), silence(0.8)]) for _ in range(4)])
    path = tmp_path / "turns.wav"
    path.write_bytes(write_wav((speech * 32767).astype(np.int16), 24_000))
    words = ["alpha beta gamma", "delta epsilon", "zeta eta theta", "iota kappa"]
    async with open_fake_server(words) as server:
        command = [sys.executable, "-m", "trio_stt", "stream", str(path), "--base-url",
                   server.base_url, "--model", "gpt-4o-transcribe", "--vad", "server_vad",
                   "--chunk-ms", "50"]  # fmt: skip
        both = await trio.to_thread.run_sync(
            partial(
                subprocess.run,
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=60,
            )
        )
    assert both.returncode == 0, both.stdout
    lines = both.stdout.splitlines()
    for line in lines:  # each line is one thing: progress, or a turn
        assert line.startswith("sent ") or line in words, lines
    assert [line for line in lines if line in words] == words


def test_serve_logs_each_request_without_its_query(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = speech_file(tmp_path)
    with serve_in_a_process("--scripted", "logged") as (server, base_url):
        assert cli("transcribe", str(path), "--base-url", base_url).returncode == 0
        assert cli("stream", str(path), "--base-url", base_url, "--fast").returncode == 0
        with contextlib.suppress(urllib.error.HTTPError):  # a 400: no file, but a key in the URL
            urllib.request.urlopen(
                urllib.request.Request(
                    f"{base_url}/audio/transcriptions?api-key=sk-in-the-query-0123456789",
                    data=b"",
                    method="POST",
                ),
                timeout=30,
            )
        _, log = stop_server(server)
    lines = log.splitlines()
    assert any('"POST /v1/audio/transcriptions" 200 ' in line for line in lines), lines
    assert any('"GET /v1/realtime" 101 ' in line for line in lines), lines
    assert sum('"POST /v1/audio/transcriptions" ' in line for line in lines) == 2, lines
    assert "sk-in-the-query" not in log and "intent=" not in log
