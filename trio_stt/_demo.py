"""``trio-stt demo``: the main job end to end, offline, on the bundled recordings.

It starts the local server in this process with the PocketSphinx recognizer, then sends every
bundled recording both ways a user would: as a file (``POST /v1/audio/transcriptions``) and as
a live stream (the Realtime WebSocket, with server VAD finding the turns). For each it prints
what was said, what was recognized and the word error rate; it fails when any clip is worse
than ``max_wer``, so the demo doubles as a smoke test of a fresh install.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

import trio

from ._config import ClientConfig
from ._model import OpenAISTTModel
from ._playback import transcribe_live
from ._protocol import RealtimeEvent, TranscriptionDelta
from ._settings import STTModelSettings

__all__ = ["run_demo", "status_line"]

MODEL = "gpt-transcribe"  # has both paths and server VAD, like OpenAI's
LIVE_VAD = {"type": "server_vad", "silence_duration_ms": 500}


@dataclass(frozen=True)
class _Score:
    path: str
    clip: str
    turns: int
    expected_turns: int
    wer: float


async def run_demo(
    *, realtime: bool = False, max_wer: float = 0.35, out: TextIO = sys.stdout
) -> bool:
    """Run the demo; True when every clip met ``max_wer`` and the live turns came out right."""
    from .server import PocketSphinxRecognizer, ServerConfig, open_server
    from .testing import bundled_samples, word_error_rate

    samples = bundled_samples()
    status_line("loading the PocketSphinx model")
    recognizer = PocketSphinxRecognizer()
    await trio.to_thread.run_sync(recognizer.warm_up)
    scores: list[_Score] = []
    async with open_server(ServerConfig(recognizer=recognizer)) as server:
        status_line("")
        print(f"Local server on {server.base_url} (PocketSphinx, no network, no API key)", file=out)
        config = ClientConfig(base_url=server.base_url)
        settings = STTModelSettings(language="en")

        async with OpenAISTTModel(MODEL, config) as model:
            print("\nFile transcription (HTTP POST /v1/audio/transcriptions)", file=out)
            for sample in samples:
                status_line(f"transcribing {sample.path.name}")
                result = await model.transcribe_file(sample.path, settings)
                wer = word_error_rate(sample.text, result.text)
                scores.append(_Score("file", sample.name, 1, 1, wer))
                _report(out, sample.path.name, sample.text, result.text, wer)

            pace = "paced at real time" if realtime else "sent as fast as possible"
            print(f"\nLive transcription (Realtime WebSocket, server VAD, {pace})", file=out)
            live_settings = STTModelSettings(language="en", turn_detection=LIVE_VAD)
            for sample in samples:
                frames, rate = sample.read()
                turns = await transcribe_live(
                    model, frames, rate, live_settings, realtime=realtime, on_event=_show_delta
                )
                heard = " ".join(turns)
                wer = word_error_rate(sample.text, heard)
                expected = len(sample.turns)
                scores.append(_Score("live", sample.name, len(turns), expected, wer))
                _report(out, sample.path.name, sample.text, heard, wer, turns, expected)
    return _summary(out, scores, max_wer)


def _report(
    out: TextIO,
    name: str,
    said: str,
    heard: str,
    wer: float,
    turns: list[str] | None = None,
    expected_turns: int = 1,
) -> None:
    status_line("")  # a terminal's status line shares the screen with these results
    print(f"  {name}", file=out)
    print(f"    said:        {said}", file=out)
    if turns is not None:
        for i, turn in enumerate(turns, start=1):
            print(f"    turn {i}:      {turn}", file=out)
    print(f"    recognized:  {heard}", file=out)
    counted = "" if turns is None else f"   turns {len(turns)}/{expected_turns}"
    print(f"    WER {wer:.2f}{counted}", file=out)


def _summary(out: TextIO, scores: list[_Score], max_wer: float) -> bool:
    print("\nSummary", file=out)
    ok = True
    for path in ("file", "live"):
        mine = [s for s in scores if s.path == path]
        worst = max(mine, key=lambda s: s.wer)
        mean = sum(s.wer for s in mine) / len(mine)
        wrong_turns = [s.clip for s in mine if s.turns != s.expected_turns]
        print(
            f"  {path:4}  {len(mine)} clips  mean WER {mean:.2f}  "
            f"worst {worst.wer:.2f} ({worst.clip})"
            + (f"  wrong turn count: {', '.join(wrong_turns)}" if wrong_turns else ""),
            file=out,
        )
        ok = ok and worst.wer <= max_wer and not wrong_turns
    verdict = "every clip" if ok else "NOT every clip"
    print(f"  {verdict} within WER {max_wer:.2f} with the expected turns", file=out)
    print(
        "\nNext: `trio-stt serve` runs this server on its own; with OPENAI_API_KEY set, "
        "`trio-stt transcribe FILE` and `trio-stt stream FILE` talk to OpenAI.",
        file=out,
    )
    return ok


def _show_delta(event: RealtimeEvent) -> None:
    if isinstance(event, TranscriptionDelta):
        status_line(f"… {event.text}")


def status_line(text: str) -> None:
    """A status line on stderr while work is under way: terminals only, rewritten in place
    (an empty *text* erases it), so logs and pipes stay clean."""
    if sys.stderr.isatty():
        print(f"\r\x1b[K{text}", end="", file=sys.stderr, flush=True)
