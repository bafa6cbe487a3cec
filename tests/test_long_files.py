"""Files past the request limits: a 12-minute recording, split, sent in pieces, stitched.

The recording is the bundled clips with 15 to 25 s of silence between them, written as a
35 MB WAV: over OpenAI's 25 MB limit, so it cannot be sent whole, and longer than one
10-minute piece. The local server has the
same limit and PocketSphinx behind it, so the text is real recognition, scored against what
each clip gives when transcribed alone.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import trio

from trio_stt import (
    APIStatusError,
    PieceError,
    SplitOptions,
    SplitProgress,
    Transcription,
)
from trio_stt._audio import write_wav
from trio_stt._long_audio import Piece, plan_pieces, stitch
from trio_stt._results import DurationUsage, TranscriptionSegment, TranscriptionWord
from trio_stt.server import PocketSphinxRecognizer, Recognition
from trio_stt.testing import RestFault, bundled_samples, open_fake_server, word_error_rate

pytestmark = pytest.mark.speech

RATE = 24_000
MINUTES = 12  # past 25 MB as 24 kHz PCM16 (from 9.1 minutes), and two pieces


class Recording:
    def __init__(self, path: Path, said: str, seconds: float, clip_names: list[str]) -> None:
        self.path = path
        self.said = said
        self.seconds = seconds
        self.clip_names = clip_names


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    clips = bundled_samples()
    rng = np.random.default_rng(7)
    parts: list[np.ndarray] = []
    said: list[str] = []
    names: list[str] = []
    total = 0
    while total < MINUTES * 60 * RATE:
        clip = clips[len(names) % len(clips)]
        samples, rate = clip.read()
        assert rate == RATE
        gap = np.zeros(int(rng.uniform(15, 25) * RATE), np.int16)
        parts += [samples, gap]
        said.append(clip.text)
        names.append(clip.name)
        total += len(samples) + len(gap)
    audio = np.concatenate(parts)[: MINUTES * 60 * RATE]
    path = tmp_path_factory.mktemp("long") / "meeting.wav"
    path.write_bytes(write_wav(audio, RATE))
    return Recording(path, " ".join(said), len(audio) / RATE, names)


@pytest.fixture(scope="module")
def recognizer() -> PocketSphinxRecognizer:
    return PocketSphinxRecognizer()


def alone_wer(recording: Recording, recognizer: PocketSphinxRecognizer) -> float:
    """The word error rate of the same clips, each transcribed on its own."""
    by_name = {c.name: recognizer.recognize(*c.read()).text for c in bundled_samples()}
    heard = " ".join(by_name[name] for name in recording.clip_names)
    return word_error_rate(recording.said, heard)


def assert_on_the_timeline(result: Transcription, seconds: float) -> None:
    for timed in (result.segments, result.words):
        assert timed, "no timings came back"
        starts = [t.start for t in timed]
        assert starts == sorted(starts)
        assert all(0 <= t.start <= t.end <= seconds + 0.01 for t in timed)
    assert result.segments[-1].end > seconds * 0.9  # the last piece's times were shifted


async def test_a_file_past_25_mb_is_split_sent_concurrently_and_stitched(
    recording: Recording, recognizer: PocketSphinxRecognizer
) -> None:
    assert recording.path.stat().st_size > 25 * 1024 * 1024
    progress: list[SplitProgress] = []
    limiter = trio.CapacityLimiter(2)
    async with (
        open_fake_server(recognizer=recognizer) as server,
        server.model("whisper-1") as model,
    ):
        result = await model.transcribe_file(
            recording.path,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
            split=SplitOptions(limiter=limiter, on_progress=progress.append),
        )
    pieces = len(server.requests)
    assert pieces >= 2
    assert all(r.filename and r.filename.endswith(".flac") for r in server.requests)
    assert all(0 < r.file_bytes < 26_214_400 for r in server.requests)
    assert word_error_rate(recording.said, result.text) <= alone_wer(recording, recognizer) + 0.05
    assert_on_the_timeline(result, recording.seconds)
    assert result.duration == pytest.approx(recording.seconds, abs=0.01)
    assert isinstance(result.usage, DurationUsage)
    # Each piece is billed in whole seconds, rounded up.
    assert recording.seconds <= result.usage.seconds <= recording.seconds + pieces
    assert json.loads(result.raw)["text"] == result.text
    # Progress: the plan, then one report per piece, ending at the whole file.
    assert progress[0] == SplitProgress(0, pieces, 0.0, pytest.approx(recording.seconds))
    assert [p.pieces_done for p in progress] == list(range(pieces + 1))
    assert progress[-1].seconds_done == pytest.approx(recording.seconds)
    assert limiter.borrowed_tokens == 0


async def test_the_cli_splits_it_too_and_shows_progress(
    recording: Recording, recognizer: PocketSphinxRecognizer, tmp_path: Path
) -> None:
    out_file = tmp_path / "meeting.json"
    async with open_fake_server(recognizer=recognizer) as server:
        args = [sys.executable, "-m", "trio_stt", "transcribe", str(recording.path),
                "--base-url", server.base_url, "--model", "whisper-1", "-o", str(out_file)]  # fmt: skip
        done = await trio.run_process(args, capture_stdout=True, capture_stderr=True)
    pieces = len(server.requests)
    assert pieces >= 2
    progress = [line for line in done.stderr.decode().splitlines() if "pieces transcribed" in line]
    assert progress[0].endswith(f"0 of {pieces} pieces transcribed (0 / 720 s)")
    assert progress[-1].endswith(f"{pieces} of {pieces} pieces transcribed (720 / 720 s)")
    body = json.loads(out_file.read_text())
    assert word_error_rate(recording.said, body["text"]) <= alone_wer(recording, recognizer) + 0.05
    starts = [w["start"] for w in body["words"]]
    assert starts == sorted(starts) and body["words"][-1]["end"] <= recording.seconds
    assert body["segments"][-1]["end"] > recording.seconds * 0.9


def test_cuts_fall_in_the_silences_and_pieces_cover_everything() -> None:
    rate = 16_000
    rng = np.random.default_rng(1)
    loud = (rng.standard_normal(rate * 8) * 3000).astype(np.int16)
    quiet = np.zeros(rate, np.int16)
    # 8 s of sound, 1 s of quiet, repeated: every allowed 20 s ends inside sound.
    audio = np.concatenate([loud, quiet] * 6)
    ranges = plan_pieces(audio, rate, 20.0)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(audio)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert all(end - start <= 20 * rate for start, end in ranges)
    for _, end in ranges[:-1]:
        assert not audio[end - rate // 10 : end + rate // 10].any(), "cut inside the sound"


def test_stitching_shifts_times_renumbers_and_sums() -> None:
    pieces = [Piece(0, 0.0, 600.0), Piece(1, 600.0, 900.0)]
    results = [
        Transcription(
            "one two",
            segments=(TranscriptionSegment(1.0, 2.0, "one two", id=0),),
            words=(TranscriptionWord("one", 1.0, 1.5), TranscriptionWord("two", 1.5, 2.0)),
            usage=DurationUsage(600),
            language="english",
        ),
        Transcription(
            " three ",
            segments=(TranscriptionSegment(0.5, 1.0, "three", id=0),),
            words=(TranscriptionWord("three", 0.5, 1.0),),
            usage=DurationUsage(300),
        ),
    ]
    result = stitch(results, pieces, "verbose_json")
    assert result.text == "one two three"
    assert [(s.id, s.start) for s in result.segments] == [(0, 1.0), (1, 600.5)]
    assert [w.start for w in result.words] == [1.0, 1.5, 600.5]
    assert result.usage == DurationUsage(900)
    assert (result.language, result.duration) == ("english", 900.0)
    srt = stitch(results, pieces, "srt")
    assert "00:10:00,500 --> 00:10:01,000\nthree" in srt.text and srt.raw.startswith("1\n")


async def test_a_failing_piece_is_named_with_its_time_range(tmp_path: Path) -> None:
    # Three 10 s stretches of noise, each louder than the last, so that the recognizer
    # below can tell which stretch it was sent.
    rng = np.random.default_rng(2)
    stretches = [rng.standard_normal(RATE * 10) * 1000 * level for level in (1, 2, 3)]
    path = tmp_path / "half-minute.wav"
    path.write_bytes(write_wav(np.concatenate(stretches).astype(np.int16), RATE))
    split = SplitOptions(max_piece_seconds=12)
    async with (
        open_fake_server(recognizer=_Loudness()) as server,
        server.model("whisper-1") as model,
    ):
        server.app.rest_faults.append(RestFault(400, "invalid_value", "Audio file is odd"))
        with pytest.raises(
            PieceError, match=r"piece \d of 3 \(0:\d\d.\d-0:\d\d.\d\) failed: "
        ) as info:
            await model.transcribe_file(path, split=split)
        assert isinstance(info.value.__cause__, APIStatusError)
        assert "Audio file is odd" in str(info.value)
        result = await model.transcribe_file(path, split=split)
    assert result.text == "level 1 level 2 level 3"  # in order, whatever order they came back


class _Loudness:
    """Says how loud the audio it was sent is, in thousands (of a noise's deviation)."""

    blocking = False

    def recognize(self, samples: np.ndarray, sample_rate: int) -> Recognition:
        # 674.5 is the median deviation of unit noise; resampling pieces to 16 kHz keeps
        # two thirds of white noise's power, hence the square root.
        level = round(float(np.median(np.abs(samples))) / 674.5 / (2 / 3) ** 0.5)
        return Recognition.evenly_timed(f"level {level}", len(samples) / sample_rate)


async def test_a_file_within_the_limits_is_sent_whole_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    path.write_bytes(write_wav(np.zeros(RATE, np.int16), RATE))
    async with open_fake_server(["fine"]) as server, server.model("gpt-transcribe") as model:
        assert (await model.transcribe_file(path)).text == "fine"
    assert [r.filename for r in server.requests] == ["short.wav"]


async def test_the_local_server_refuses_what_openai_refuses_for_length(tmp_path: Path) -> None:
    # Past gpt-4o-transcribe's 1400 s, at 8 kHz to stay under 25 MB.
    long = write_wav(np.zeros(8000 * 1401, np.int16), 8000)
    async with (
        open_fake_server(["fine"]) as server,
        server.model("gpt-4o-transcribe") as model,
    ):
        with pytest.raises(APIStatusError, match="longer than 1400 seconds"):
            await model.transcribe_file(long, split=SplitOptions(enabled=False))
        result = await model.transcribe_file(long)  # split by default
    assert result.text == "fine fine fine" and len(server.requests) == 4  # 1 + 3 pieces of 10 min


def test_pieces_shorter_than_a_second_are_refused() -> None:
    with pytest.raises(ValueError, match="more than 1 s"):
        plan_pieces(np.zeros(100, np.int16), 16_000, 0.5)
