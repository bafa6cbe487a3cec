"""The Whisper recognizer (``trio-stt[whisper]``): real accuracy where PocketSphinx has none.

espeak-ng's voices are nearly unrecognizable to PocketSphinx but not to Whisper, which makes
them the test that tells the two apart. The speech is made in the test by Debian's espeak-ng
(``.ci/run`` installs it); without it those tests are skipped and say why.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from trio_stt import StreamedAudioInput, STTModelSettings
from trio_stt.server import PocketSphinxRecognizer, WhisperRecognizer
from trio_stt.server._recognizers import Recognizer
from trio_stt.testing import bundled_samples, open_fake_server, word_error_rate

from .helpers import serve_in_a_process

pytestmark = pytest.mark.speech

# Sentences a person might say to an assistant: none of them is in the bundled recordings.
ESPEAK_SENTENCES = [
    "The meeting has been moved to Thursday afternoon.",
    "Please remind me to call the dentist tomorrow morning.",
    "Turn off the lights in the living room.",
    "How long will it take to drive to the airport?",
    "The package should arrive before the end of the week.",
    "Add milk, bread and eggs to the shopping list.",
]


@pytest.fixture(scope="module")
def whisper() -> WhisperRecognizer:
    return WhisperRecognizer()


def espeak(text: str, path: Path) -> Path:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return path


def corpus_wer(references: list[str], hypotheses: list[str]) -> float:
    """Errors over all reference words: one figure for the whole set."""
    words = [len(r.split()) for r in references]
    errors = [
        word_error_rate(r, h) * n for r, h, n in zip(references, hypotheses, words, strict=True)
    ]
    return sum(errors) / sum(words)


async def transcribe_all(recognizer: Recognizer, paths: list[Path]) -> list[str]:
    async with open_fake_server(recognizer=recognizer) as server:
        async with server.model("gpt-transcribe") as model:
            return [(await model.transcribe_file(path)).text for path in paths]


async def test_the_bundled_recordings_within_a_tenth(whisper: WhisperRecognizer) -> None:
    samples = bundled_samples()
    texts = await transcribe_all(whisper, [s.path for s in samples])
    rates = [word_error_rate(s.text, text) for s, text in zip(samples, texts, strict=True)]
    assert sum(rates) / len(rates) <= 0.1, list(zip(texts, rates, strict=True))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian's espeak-ng")
async def test_espeak_speech_whisper_follows_and_pocketsphinx_does_not(
    whisper: WhisperRecognizer, tmp_path: Path
) -> None:
    paths = [espeak(text, tmp_path / f"{i}.wav") for i, text in enumerate(ESPEAK_SENTENCES)]
    heard_by_whisper = await transcribe_all(whisper, paths)
    heard_by_pocketsphinx = await transcribe_all(PocketSphinxRecognizer(), paths)
    assert corpus_wer(ESPEAK_SENTENCES, heard_by_whisper) <= 0.3, heard_by_whisper
    assert corpus_wer(ESPEAK_SENTENCES, heard_by_pocketsphinx) >= 0.6, heard_by_pocketsphinx


async def test_a_live_session_with_whisper_gets_every_turn(whisper: WhisperRecognizer) -> None:
    sample = next(s for s in bundled_samples() if len(s.turns) > 1)
    frames, rate = sample.read()
    async with open_fake_server(recognizer=whisper) as server:
        audio = StreamedAudioInput(frame_rate=rate)
        settings = STTModelSettings(turn_detection={"type": "server_vad"})
        async with server.model("gpt-transcribe").create_session(audio, settings) as session:

            async def speak() -> None:
                for start in range(0, frames.size, rate // 10):
                    await audio.add_audio(frames[start : start + rate // 10])
                await audio.aclose()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(speak)
                turns = [turn async for turn in session.transcribe_turns()]
    assert len(turns) == len(sample.turns), turns
    assert word_error_rate(sample.text, " ".join(turns)) <= 0.1


def test_serve_with_the_whisper_recognizer(tmp_path: Path) -> None:
    sample = bundled_samples()[0]
    with serve_in_a_process("--recognizer", "whisper") as (_, base_url):
        done = subprocess.run(
            [sys.executable, "-m", "trio_stt.cli", "transcribe", str(sample.path),
             "--base-url", base_url, "--model", "gpt-transcribe"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert word_error_rate(sample.text, done.stdout) <= 0.25
