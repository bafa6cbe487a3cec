"""Every audio format, through the CLI, against the local server with PocketSphinx.

Each file is made in the test from a bundled recording with libsndfile, the library that
decodes them, and must come back with the text the WAV gives.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import soxr
import trio

from trio_stt.server import PocketSphinxRecognizer
from trio_stt.testing import bundled_samples, open_fake_server, word_error_rate

pytestmark = pytest.mark.speech

# (file name, container, codec): what the API takes by name, and what is converted first.
FORMATS = [
    ("pcm16.wav", "WAV", "PCM_16"),
    ("sox-24bit.wav", "WAVEX", "PCM_24"),  # WAVE_FORMAT_EXTENSIBLE, "unknown format 65534"
    ("float.wav", "WAV", "FLOAT"),
    ("8bit.wav", "WAV", "PCM_U8"),
    ("32bit.wav", "WAV", "PCM_32"),
    ("talk.flac", "FLAC", "PCM_16"),
    ("vorbis.ogg", "OGG", "VORBIS"),
    ("opus.ogg", "OGG", "OPUS"),
    ("talk.opus", "OGG", "OPUS"),  # not a name the API takes: sent as FLAC
    ("talk.mp3", "MP3", "MPEG_LAYER_III"),
    ("talk.aiff", "AIFF", "PCM_16"),  # nor this
]


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "trio_stt", *args], capture_output=True, input=stdin, timeout=60
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    clip = next(c for c in bundled_samples() if c.name == "weather")
    samples, rate = clip.read()
    folder = tmp_path_factory.mktemp("formats")
    made = {}
    for name, container, codec in FORMATS:
        # From float in [-1, 1], as sox and recorders write: int16 written into a float
        # file is stored unscaled, which hid a decoder that read floats as silence.
        as_float = samples.astype("float32") / 32768
        soundfile.write(folder / name, as_float, rate, format=container, subtype=codec)
        made[name] = folder / name
    return made


async def test_every_format_gives_the_text_the_wav_gives(files: dict[str, Path]) -> None:
    async with open_fake_server(recognizer=PocketSphinxRecognizer()) as server:

        def transcribe(*args: str, stdin: bytes | None = None) -> str:
            out = cli("transcribe", *args, "--base-url", server.base_url, stdin=stdin)
            assert out.returncode == 0, out.stderr.decode()
            return out.stdout.decode().strip()

        wav = await trio.to_thread.run_sync(transcribe, str(files["pcm16.wav"]))
        assert len(wav.split()) >= 5
        heard = {}
        for name in files:
            heard[name] = await trio.to_thread.run_sync(transcribe, str(files[name]))
        assert heard == dict.fromkeys(files, wav)
        # What the server was sent: the API's own formats as they are, the others as FLAC.
        sent = [r.filename for r in server.requests[1:]]
        assert sent == [n if n.rsplit(".")[-1] in ("wav", "flac", "ogg", "mp3") else
                        n.rsplit(".")[0] + ".flac" for n in files]  # fmt: skip
        # The same from a pipe, named by what it turned out to be.
        piped = files["talk.mp3"].read_bytes()
        assert await trio.to_thread.run_sync(lambda: transcribe("-", stdin=piped)) == wav
        assert server.requests[-1].filename == "stdin.mp3"


async def test_streaming_reads_the_compressed_formats_too(files: dict[str, Path]) -> None:
    async with open_fake_server(recognizer=PocketSphinxRecognizer()) as server:
        texts = []
        for name in ("pcm16.wav", "sox-24bit.wav", "opus.ogg", "talk.mp3"):
            args = ("stream", str(files[name]), "--base-url", server.base_url, "--fast")
            out = await trio.to_thread.run_sync(lambda args=args: cli(*args))
            assert out.returncode == 0, out.stderr.decode()
            texts.append(out.stdout.decode().strip())
    assert len(set(texts)) == 1 and len(texts[0].split()) >= 5


def test_a_format_the_decoder_lacks_is_named_with_what_it_reads(tmp_path: Path) -> None:
    m4a = tmp_path / "voice-memo.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isommp42" + bytes(200))
    out = cli("stream", str(m4a), "--base-url", "http://127.0.0.1:9/v1")
    assert out.returncode == 1
    message = out.stderr.decode()
    assert message.count("\n") == 1 and "MP4/M4A (AAC)" in message
    assert "FLAC" in message and "ffmpeg" in message


async def test_streaming_sends_g711_files_as_they_are(files: dict[str, Path]) -> None:
    """A call recording (headerless µ-law, an A-law WAV) goes out in its own law, its bytes
    untouched; a PCM file can be sent as G.711 when asked, and a G.711 one as PCM."""
    folder = files["pcm16.wav"].parent
    samples, rate = soundfile.read(files["pcm16.wav"], dtype="int16")
    narrow = soxr.resample(samples.astype("float32") / 32768, rate, 8000)
    soundfile.write(folder / "call.ulaw", narrow, 8000, format="RAW", subtype="ULAW")
    soundfile.write(folder / "call.wav", narrow, 8000, subtype="ALAW")
    ulaw = (folder / "call.ulaw").read_bytes()
    cases = [
        (["call.ulaw"], "audio/pcmu", len(ulaw)),
        (["call.wav"], "audio/pcma", len(ulaw)),
        (["pcm16.wav", "--audio-format", "audio/pcmu"], "audio/pcmu", len(samples) // 3),
        (["call.ulaw", "--audio-format", "audio/pcm"], "audio/pcm", len(ulaw) * 6),
    ]
    async with open_fake_server(recognizer=PocketSphinxRecognizer()) as server:
        server.faults.keep_audio = True
        heard = []
        for (name, *flags), _, _ in cases:
            args = ("stream", str(folder / name), *flags, "--base-url", server.base_url,
                    "--model", "gpt-4o-transcribe", "--vad", "server_vad", "--fast")  # fmt: skip
            out = await trio.to_thread.run_sync(lambda args=args: cli(*args))
            assert out.returncode == 0, out.stderr.decode()
            heard.append(out.stdout.decode().strip())
    said = next(c for c in bundled_samples() if c.name == "weather").text
    for (_, law, size), session, text in zip(cases, server.sessions, heard, strict=True):
        update = session.events_of("session.update")[0]
        assert update["session"]["audio"]["input"]["format"]["type"] == law
        assert session.audio_bytes == size
        # Telephone audio has nothing above 4 kHz; PocketSphinx's model was trained on more.
        assert word_error_rate(said, text) <= 0.35, text
    assert bytes(server.sessions[0].audio or b"") == ulaw  # as the file has it
    assert rate == 24_000
