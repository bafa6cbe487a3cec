"""G.711 sessions: µ-law and A-law bytes sent as they came, with every duration in 8 kHz.

The codes are checked against libsndfile, the audio is encoded by libsndfile, and the
server's recognizer hears tones (:func:`~tests.helpers.hear`), so a byte decoded wrongly,
lost, or counted at the wrong rate changes what the assertions see.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile
import trio
import trio.testing
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from trio_stt import (
    AudioFormatError,
    AudioLost,
    RealtimeEvent,
    Reconnected,
    ReconnectPolicy,
    SessionOptions,
    SessionStatistics,
    StreamedAudioInput,
    STTModelSettings,
    TokenUsage,
    Turn,
    feed_from_file,
)
from trio_stt._audio_files import encode_g711, read_g711
from trio_stt._protocol import PCMA, PCMU, RealtimeConnection, wire_format
from trio_stt._protocol._dialects import build_session_update
from trio_stt.testing import (
    RealtimeFaults,
    RecordedSession,
    ScriptedRecognizer,
    open_fake_server,
)

from .helpers import assert_nothing_left, hear, tone

LAWS = [("audio/pcmu", "ULAW"), ("audio/pcma", "ALAW")]
VAD = STTModelSettings(
    turn_detection={"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500}
)
MANUAL = STTModelSettings(turn_detection="manual")


def g711(samples_24k: npt.NDArray[np.float32], law: str) -> bytes:
    """24 kHz float audio as a phone line carries it: 8 kHz, encoded by libsndfile."""
    samples = np.round(samples_24k[::3] * 32767).astype(np.int16)
    return encode_g711(samples, law)  # type: ignore[arg-type]


@dataclass
class Call:
    """What :func:`place_call` saw: the session's events of interest, its statistics and
    every connection the server was sent."""

    events: list[RealtimeEvent]
    stats: SessionStatistics
    sessions: list[RecordedSession]


async def place_call(
    law: str,
    call: bytes,
    settings: STTModelSettings,
    *,
    frame_bytes: int,
    faults: RealtimeFaults,
    trace_audio: bool = False,
    **options: Any,
) -> Call:
    """Send *call* in frames of *frame_bytes* at real time (on the mock clock) to a fake
    server that keeps every byte it is sent and hears tones."""
    faults.keep_audio = True
    async with open_fake_server(recognizer=ScriptedRecognizer(fn=hear), faults=faults) as server:
        audio = StreamedAudioInput(format=law)  # type: ignore[arg-type]
        model = server.model("gpt-4o-transcribe")
        session_options = SessionOptions(connector=server.connector, **options)
        events: list[RealtimeEvent] = []
        session_cm = model.create_session(
            audio, settings, options=session_options, trace_include_sensitive_audio_data=trace_audio
        )
        async with session_cm as session:

            async def carrier() -> None:
                for start in range(0, len(call), frame_bytes):
                    await audio.add_audio(call[start : start + frame_bytes])
                    await trio.sleep(frame_bytes / 8000)
                await audio.aclose()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(carrier)
                async for event in session.events():
                    if isinstance(event, (AudioLost, Reconnected, Turn)):
                        events.append(event)
        await assert_nothing_left(server)
        return Call(events, session.statistics(), server.sessions)


@pytest.mark.parametrize(("law", "subtype"), LAWS)
def test_every_code_decodes_as_libsndfile_decodes_it(law: str, subtype: str) -> None:
    codes = bytes(range(256))
    expected, _ = soundfile.read(
        io.BytesIO(codes), samplerate=8000, channels=1, format="RAW", subtype=subtype,
        dtype="int16",
    )  # fmt: skip
    assert np.array_equal(wire_format(law).linear(codes), expected)
    # And libsndfile's encoder gives every code back (µ-law has two codes for 0).
    again = encode_g711(expected, law)  # type: ignore[arg-type]
    assert [i for i in range(256) if again[i] != i] == ([0x7F] if law == "audio/pcmu" else [])


@pytest.mark.parametrize(
    ("law", "ga", "beta"), [("audio/pcmu", "audio/pcmu", "g711_ulaw"),
                            ("audio/pcma", "audio/pcma", "g711_alaw")],
)  # fmt: skip
def test_the_session_update_names_the_format_in_each_dialect(law: str, ga: str, beta: str) -> None:
    wire = wire_format(law)
    update = build_session_update("gpt-4o-transcribe", VAD, "ga", "u1", wire)
    assert update["session"]["audio"]["input"]["format"] == {"type": ga}  # no rate for G.711
    update = build_session_update("gpt-4o-transcribe", VAD, "beta", "u1", wire)
    assert update["session"]["input_audio_format"] == beta


def test_the_core_counts_g711_at_one_byte_an_eighth_of_a_millisecond() -> None:
    core = RealtimeConnection(audio_format=PCMA)
    core.receive('{"type":"session.created","session":{"type":"transcription"}}')
    core.update_session("gpt-4o-transcribe", MANUAL)
    core.receive('{"type":"session.updated","session":{"type":"transcription"}}')
    message = json.loads(core.append_audio(b"\xd5" * 801))  # any count of bytes is whole
    assert core.appended_ms == pytest.approx(100.125)
    assert len(message["audio"]) == 4 * 267  # base64 of 801 bytes, untouched


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"format": "audio/pcmu", "frame_rate": 16_000}, "8000 Hz mono"),
        ({"format": "audio/pcma", "channels": 2}, "8000 Hz mono"),
        ({"format": "audio/opus"}, "expected one of audio/pcm, audio/pcmu, audio/pcma"),
        ({"format": None}, "unknown audio format None"),
    ],
)
def test_an_input_that_cannot_be_g711_is_refused_when_made(
    kwargs: dict[str, object], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        StreamedAudioInput(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fmt", "chunk", "words"),
    [
        ("audio/pcmu", np.zeros(160, np.int16), "got an array of int16, shape \\(160,\\)"),
        ("audio/pcma", np.zeros(160, np.float32), "got an array of float32"),
        ("audio/pcmu", np.zeros((80, 2), np.uint8), "got an array of uint8, shape \\(80, 2\\)"),
        ("audio/pcmu", "\xff" * 160, "got str"),
        ("audio/pcma", b"", "audio chunk is empty"),
        ("audio/pcm", b"\x00\x00" * 240, "got bytes: this input sends audio/pcm"),
        ("audio/pcm", bytearray(480), "got bytearray"),
        ("audio/pcm", np.zeros(480, np.uint8), "got a uint8 array: .*G.711 bytes"),
    ],
)
async def test_audio_of_the_wrong_kind_is_a_typed_error_that_says_what_to_do(
    fmt: str, chunk: object, words: str
) -> None:
    audio = StreamedAudioInput(format=fmt)  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError, match=words):
        await audio.add_audio(chunk)  # type: ignore[arg-type]
    assert audio.chunks_added == 0  # nothing half-taken


async def test_g711_chunks_of_every_shape_are_taken_as_they_are() -> None:
    audio = StreamedAudioInput(format="audio/pcmu")
    assert audio.frame_rate == 8000 and audio.channels == 1
    for chunk in (b"\x01\x02\x03", bytearray(b"\x04"), memoryview(b"\x05\x06"),
                  np.array([7, 8], np.uint8)):  # fmt: skip
        await audio.add_audio(chunk)
    assert audio.chunks_added == 4
    assert "audio/pcmu 8000 Hz" in repr(audio)


@pytest.mark.parametrize("law", ["audio/pcmu", "audio/pcma"])
async def test_g711_goes_out_as_it_came_and_every_duration_is_8_khz(
    exact_clock: trio.testing.MockClock, law: str
) -> None:
    """Two turns of tone in 20 ms frames, as a carrier delivers them: the server is sent
    exactly the caller's bytes, hears each tone at its pitch and length, and the session
    counts 8 bytes a millisecond."""
    call = b"".join(
        g711(tone(k, 1.5), law) + g711(np.zeros(24_000, np.float32), law) for k in (1, 2)
    )
    heard = await place_call(law, call, VAD, frame_bytes=160, faults=RealtimeFaults())
    sent, stats = heard.sessions[0], heard.stats
    turns = [e for e in heard.events if isinstance(e, Turn)]
    update = sent.events_of("session.update")[0]
    assert update["session"]["audio"]["input"]["format"] == {"type": law}
    assert bytes(sent.audio or b"") == call  # byte for byte: no decode, no resample
    assert [t.text for t in turns] == ["turn 1 1.5s", "turn 2 1.5s"]
    assert stats.audio_seconds_sent == pytest.approx(5.0)
    # Billed at 10 tokens a second of each turn: the first tone and the 0.5 s of quiet that
    # ended it; the second tone and all that followed it, committed at the end of input. (The
    # server's VAD may end the first a 10 ms frame late: its upsampler delays by 1.4 ms.)
    tokens = [t.usage.input_tokens for t in turns if isinstance(t.usage, TokenUsage)]
    assert tokens == pytest.approx([20, 25], abs=1)


@pytest.mark.parametrize("law", ["audio/pcmu", "audio/pcma"])
async def test_a_reconnect_replays_g711_byte_for_byte_and_reports_the_loss_in_8_khz(
    exact_clock: trio.testing.MockClock, law: str
) -> None:
    """One long turn, a connection cut 6 s in, 2 s kept for replay: the new connection is
    sent exactly the last 2 s of the caller's bytes, and the rest is reported lost, to the
    millisecond."""
    speech = g711(tone(3, 8.0), law) + g711(np.zeros(4800, np.float32), law)
    heard = await place_call(
        law, speech, MANUAL, frame_bytes=800, faults=RealtimeFaults(drops=[(60, 1011)]),
        reconnect=ReconnectPolicy(replay_seconds=2.0, initial_delay=0.05),
        min_append_ms=100, max_append_ms=100,
    )  # fmt: skip
    events, stats, (first, second) = heard.events, heard.stats, heard.sessions
    replayed = [e for e in events if isinstance(e, Reconnected)]
    lost = [e for e in events if isinstance(e, AudioLost)]
    cut_at = len(first.audio or b"")
    assert cut_at == 60 * 800  # the cut connection was sent 6 s, the start of the call
    assert bytes(first.audio or b"") == speech[:cut_at]
    # Of those 6 s, the last 2 s are sent again, then the rest of the call: byte for byte.
    assert replayed[0].replayed_ms == 2000
    assert bytes(second.audio or b"") == speech[cut_at - 2 * 8000 :]
    assert len(lost) == 1 and lost[0].ms == 4000
    assert stats.audio_seconds_replayed == pytest.approx(2.0)
    assert stats.audio_seconds_lost == pytest.approx(4.0)
    assert stats.audio_seconds_sent == pytest.approx(len(speech) / 8000)
    turns = [e.text for e in events if isinstance(e, Turn)]
    assert turns == ["turn 3 4.0s"]  # the 2 s kept and the 2 s that followed


@pytest.mark.parametrize("law", ["audio/pcmu", "audio/pcma"])
def test_files_become_g711_codes_without_touching_a_file_of_that_law(
    tmp_path: Path, law: str
) -> None:
    folder = tmp_path
    samples = np.round(tone(2, 0.5)[::3] * 32767).astype(np.int16)
    codes = encode_g711(samples, law)  # type: ignore[arg-type]
    raw = folder / ("call.ulaw" if law == "audio/pcmu" else "call.alaw")
    raw.write_bytes(codes)
    assert read_g711(raw, law) == codes  # type: ignore[arg-type]
    wav = folder / "call.wav"
    soundfile.write(wav, samples, 8000, subtype="ULAW" if law == "audio/pcmu" else "ALAW")
    assert read_g711(wav, law) == codes  # type: ignore[arg-type]
    # PCM at 24 kHz is brought to 8 kHz and encoded: the same tone, the same length.
    pcm = folder / "call24.wav"
    soundfile.write(pcm, tone(2, 0.5), 24_000, subtype="PCM_16")
    other = read_g711(pcm, law)  # type: ignore[arg-type]
    assert len(other) == 4000
    assert hear(np.repeat(wire_format(law).linear(other), 3), 24_000) == "turn 2 0.5s"
    # The other law is decoded and encoded again.
    twin = "audio/pcma" if law == "audio/pcmu" else "audio/pcmu"
    assert read_g711(raw, twin) == encode_g711(samples_of(codes, law), twin)  # type: ignore[arg-type]


def samples_of(codes: bytes, law: str) -> npt.NDArray[np.int16]:
    return (PCMU if law == "audio/pcmu" else PCMA).linear(codes)


async def test_feed_from_file_encodes_a_wav_for_a_g711_input(tmp_path: Path) -> None:
    """On the real clock: the file is decoded in a worker thread, and a mock clock would
    jump past the session's expiry while it waits."""
    wav = tmp_path / "talk.wav"
    soundfile.write(wav, np.concatenate([tone(4, 1.0), np.zeros(12_000, np.float32)]), 24_000)
    faults = RealtimeFaults(keep_audio=True)
    async with open_fake_server(recognizer=ScriptedRecognizer(fn=hear), faults=faults) as server:
        audio = StreamedAudioInput(format="audio/pcma")
        model = server.model("gpt-4o-transcribe")
        async with model.create_session(audio, VAD) as session:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(feed_from_file, audio, wav, chunk_ms=20))
                turns = [text async for text in session.transcribe_turns()]
    assert turns == ["turn 4 1.0s"]
    assert bytes(server.sessions[0].audio or b"") == read_g711(wav, "audio/pcma")


@pytest.mark.parametrize("law", ["audio/pcmu", "audio/pcma"])
async def test_a_turns_span_names_the_format_and_holds_the_bytes_sent(
    exact_clock: trio.testing.MockClock, span_exporter: InMemorySpanExporter, law: str
) -> None:
    call = g711(tone(5, 1.0), law)
    faults = RealtimeFaults()
    await place_call(law, call, MANUAL, frame_bytes=160, faults=faults, trace_audio=True)
    (span,) = span_exporter.get_finished_spans()
    attributes = span.attributes or {}
    assert attributes["trio_stt.input_format"] == law.removeprefix("audio/")
    assert base64.b64decode(str(attributes["trio_stt.input"])) == call


async def test_a_headerless_g711_file_is_uploaded_as_flac(tmp_path: Path) -> None:
    """OpenAI's upload takes no raw µ-law: the file is decoded by its name and sent as FLAC."""
    call = tmp_path / "call.ulaw"
    call.write_bytes(g711(np.concatenate([tone(6, 1.0), np.zeros(4800, np.float32)]), "audio/pcmu"))

    def pitch_and_length(samples: npt.NDArray[np.int16], rate: int) -> str:
        return f"{hear(samples, rate).rsplit(' ', 1)[0]}, {len(samples) / rate:.1f} s at {rate} Hz"

    recognizer = ScriptedRecognizer(fn=pitch_and_length)
    async with open_fake_server(recognizer=recognizer) as server:
        async with server.model("gpt-4o-transcribe") as model:
            result = await model.transcribe_file(call)
        assert [request.filename for request in server.requests] == ["call.flac"]
    assert result.text == "turn 6, 1.2 s at 8000 Hz"
