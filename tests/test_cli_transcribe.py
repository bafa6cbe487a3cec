"""``trio-stt transcribe`` as a whisper user drives it: formats, output files, stdin."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trio

from trio_stt._audio import write_wav
from trio_stt.testing import open_fake_server, speech_like

from .helpers import serve_in_a_process


def cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trio_stt", *args],
        capture_output=True,
        input=stdin.decode("latin-1"),
        text=True,
        encoding="latin-1",
        timeout=60,
    )


def speech(folder: Path) -> Path:
    path = folder / "talk.wav"
    path.write_bytes(write_wav((speech_like(1.0) * 32767).astype(np.int16), 24_000))
    return path


async def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return await trio.to_thread.run_sync(lambda: cli(*args, stdin=stdin))


async def test_output_files_take_their_format_from_the_extension(tmp_path: Path) -> None:
    talk = speech(tmp_path)
    async with open_fake_server(["hello there"]) as server:
        base = ("--base-url", server.base_url, "--model", "whisper-1")
        srt = await run("transcribe", str(talk), *base, "-o", str(tmp_path / "out" / "t.srt"))
        assert srt.returncode == 0, srt.stderr
        assert srt.stdout == ""
        assert f"wrote {tmp_path / 'out' / 't.srt'}" in srt.stderr
        cue = (tmp_path / "out" / "t.srt").read_text()
        assert cue.startswith("1\n00:00:00,000 --> 00:00:01,000\nhello there")
        vtt = await run("transcribe", str(talk), *base, "--output-dir", str(tmp_path / "subs"),
                        "--format", "vtt")  # fmt: skip
        assert vtt.returncode == 0, vtt.stderr
        assert (tmp_path / "subs" / "talk.vtt").read_text().startswith("WEBVTT\n\n00:00:00.000")
        # .json from whisper-1 is verbose_json: language, segments and words.
        as_json = await run("transcribe", str(talk), *base, "-o", str(tmp_path / "t.json"))
        body = json.loads((tmp_path / "t.json").read_text())
        assert as_json.returncode == 0, as_json.stderr
        assert body["language"] == "english" and body["text"] == "hello there"
        assert [w["word"] for w in body["words"]] == ["hello", "there"]
        assert body["segments"][0]["end"] == 1.0
        # --json: one object, with the timings the format carries.
        flat = await run("transcribe", str(talk), *base, "--format", "verbose_json", "--json")
        fields = json.loads(flat.stdout)
        assert fields["text"] == "hello there" and fields["duration"] == 1.0
        assert len(fields["words"]) == 2 and fields["request_id"].startswith("req_")
        assert [r.fields["response_format"] for r in server.requests] == [
            ["srt"],
            ["vtt"],
            ["verbose_json"],
            ["verbose_json"],
        ]
        assert server.requests[-1].fields["timestamp_granularities[]"] == ["word", "segment"]


async def test_json_is_written_as_json_when_asked_for_and_text_when_read(tmp_path: Path) -> None:
    """--format json printed the bare text, and -o t.json from gpt-4o-transcribe held plain
    text; the default, to a terminal or pipe, stays the text alone."""
    talk = speech(tmp_path)
    async with open_fake_server(["json please"]) as server:
        base = ("--base-url", server.base_url, "--model", "gpt-4o-transcribe")
        asked = await run("transcribe", str(talk), *base, "--format", "json")
        assert asked.returncode == 0, asked.stderr
        assert json.loads(asked.stdout)["text"] == "json please"  # the server's body
        to_file = await run("transcribe", str(talk), *base, "-o", str(tmp_path / "t.json"))
        assert to_file.returncode == 0, to_file.stderr
        assert json.loads((tmp_path / "t.json").read_text())["text"] == "json please"
        plain = await run("transcribe", str(talk), *base)
        assert plain.stdout == "json please\n"
        flat = await run("transcribe", str(talk), *base, "--json")
        fields = json.loads(flat.stdout)
        assert None not in fields.values()  # only what the server gave: no "language": null
        assert fields["text"] == "json please" and "duration" not in fields


async def test_stdin_is_read_as_a_file_named_by_what_it_is(tmp_path: Path) -> None:
    talk = speech(tmp_path).read_bytes()
    async with open_fake_server(["from a pipe"]) as server:
        out = await run("transcribe", "-", "--base-url", server.base_url, stdin=talk)
        assert out.returncode == 0, out.stderr
        assert out.stdout == "from a pipe\n"
        assert server.requests[0].filename == "stdin.wav"
    empty = await run("transcribe", "-", "--base-url", "http://127.0.0.1:9/v1")
    assert empty.returncode == 1 and "stdin is empty" in empty.stderr
    junk = await run("transcribe", "-", "--base-url", "http://127.0.0.1:9/v1", stdin=b"hi" * 50)
    assert junk.returncode == 1 and "stdin is not audio" in junk.stderr


def test_a_format_the_model_lacks_names_a_model_that_has_it(tmp_path: Path) -> None:
    out = cli("transcribe", str(speech(tmp_path)), "--format", "srt",
              "--base-url", "http://127.0.0.1:9/v1")  # fmt: skip
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "gpt-transcribe does not produce srt" in out.stderr
    assert "try --model whisper-1 for srt" in out.stderr
    unknown = cli("transcribe", str(speech(tmp_path)), "-o", "notes.docx",
                  "--base-url", "http://127.0.0.1:9/v1")  # fmt: skip
    assert unknown.returncode == 1 and "name it .txt, .json, .srt or .vtt" in unknown.stderr


def test_help_says_which_models_give_each_format() -> None:
    wide = {**os.environ, "COLUMNS": "1000"}  # argparse wraps at hyphens otherwise
    out = subprocess.run([sys.executable, "-m", "trio_stt", "transcribe", "--help"],
                         capture_output=True, text=True, env=wide, check=True)  # fmt: skip
    text = " ".join(out.stdout.split())
    assert "json: every file model" in text
    assert "text: gpt-transcribe, gpt-4o-transcribe-diarize, whisper-1" in text
    assert "srt, vtt, verbose_json: whisper-1" in text
    assert "diarized_json: gpt-4o-transcribe-diarize" in text
    for flag in ("-o FILE", "--output-dir DIR", "--concurrency", "--format", "reads - as stdin"):
        assert flag in text


def this_machines_address() -> str | None:
    """An address of this machine that is not loopback (no packet is sent to learn it)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
        address: str = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


@pytest.mark.skipif(this_machines_address() is None, reason="no non-loopback address")
def test_a_server_on_another_host_is_reached_with_and_without_a_key(tmp_path: Path) -> None:
    """A server the client sees as another machine: plain http, a key only if asked for."""
    host = this_machines_address()
    assert host is not None
    talk = str(speech(tmp_path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    for key in ("sk-lan-server-key", None):
        serve = ["--host", host, "--scripted", "over the network", "--quiet"]
        if key:
            serve += ["--require-api-key", key]
        with serve_in_a_process(*serve) as (_, url):
            assert f"//{host}:" in url
            args = ["transcribe", talk, "--base-url", url]
            if key:
                args += ["--api-key", key, "--allow-insecure"]
            done = subprocess.run([sys.executable, "-m", "trio_stt", *args],
                                  capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == "over the network\n"
        warned = done.stderr.startswith(f"trio-stt: warning: sending the API key to {host}")
        assert warned == (key is not None)
        assert "sk-lan" not in done.stderr
