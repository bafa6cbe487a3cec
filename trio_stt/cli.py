"""The ``trio-stt`` command: transcribe a file, stream one in real time, or serve locally.

Results go to stdout; progress and live deltas go to stderr, so ``trio-stt stream x.wav >
turns.txt`` captures just the turns. Errors are one line and a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import trio

from ._audio import read_wav
from ._config import ClientConfig
from ._demo import run_demo, status_line
from ._errors import ConfigurationError, STTError, exception_leaves
from ._model import OpenAISTTModel
from ._playback import transcribe_live
from ._protocol import RealtimeEvent, TranscriptionCompleted, TranscriptionDelta
from ._settings import STTModelSettings, capabilities_for
from ._version import __version__

if TYPE_CHECKING:
    from .server import Recognizer


__all__ = ["main"]


def _config(args: argparse.Namespace) -> ClientConfig:
    config = ClientConfig.from_env(
        base_url=args.base_url, api_key=args.api_key, allow_insecure=args.allow_insecure or None
    )
    plain = urlsplit(config.base_url).scheme == "http"
    if args.allow_insecure and plain and config.api_key is not None:
        host = urlsplit(config.base_url).hostname
        print(
            f"trio-stt: warning: sending the API key to {host} over plain http; anyone on "
            "the way can read it",
            file=sys.stderr,
            flush=True,
        )
    return config


def _settings(args: argparse.Namespace) -> STTModelSettings:
    return STTModelSettings(language=args.language, prompt=args.prompt)


async def _transcribe(args: argparse.Namespace) -> None:
    config = _config(args)
    async with OpenAISTTModel(args.model, config) as model:
        host = urlsplit(config.base_url).netloc
        status_line(f"transcribing {args.file} with {args.model} at {host}")
        try:
            result = await model.transcribe_file(
                args.file, _settings(args), response_format=args.format
            )
        finally:
            status_line("")
    if args.json:
        print(
            json.dumps(
                {
                    "text": result.text,
                    "language": result.language,
                    "duration": result.duration,
                    "request_id": result.request_id,
                }
            )
        )
    else:
        print(result.text)


async def _stream(args: argparse.Namespace) -> None:
    if args.chunk_ms <= 0:
        raise ConfigurationError(f"--chunk-ms must be a positive number; got {args.chunk_ms}")
    frames, rate, channels = read_wav(args.file)
    settings = _settings(args)
    if args.vad:
        settings = replace(settings, turn_detection={"type": args.vad})
    notice = None
    if not args.vad and not capabilities_for(args.model).server_vad:
        notice = (
            f"{args.model} has no server VAD, so the whole file is one turn, committed when it "
            "ends (--vad server_vad with another model finds turns)"
        )
    shown = _StreamDisplay(len(frames) / (rate * channels), json_turns=args.json, notice=notice)
    async with OpenAISTTModel(args.model, _config(args)) as model:
        await transcribe_live(
            model,
            frames,
            rate,
            settings,
            channels=channels,
            chunk_ms=args.chunk_ms,
            realtime=not args.fast,
            on_event=shown.event,
            on_turn=shown.turn,
            on_sent=shown.sent,
        )
        shown.finish()


async def _serve(args: argparse.Namespace) -> None:
    from .server import (
        PocketSphinxRecognizer,
        ScriptedRecognizer,
        ServerConfig,
        STTServerApp,
        WhisperRecognizer,
        serve,
    )

    recognizer: Recognizer
    if args.scripted is not None:
        recognizer = ScriptedRecognizer([args.scripted])
    else:
        loaded = WhisperRecognizer() if args.recognizer == "whisper" else PocketSphinxRecognizer()
        name = "Whisper tiny.en" if args.recognizer == "whisper" else "PocketSphinx"
        print(f"loading the {name} model", file=sys.stderr, flush=True)
        await trio.to_thread.run_sync(loaded.warm_up)
        recognizer = loaded
    config = ServerConfig(
        recognizer=recognizer,
        api_key=args.require_api_key,
        max_body_bytes=args.max_body_bytes,
        max_sessions=args.max_sessions,
        lenient=args.lenient,
    )
    async with trio.open_nursery() as nursery:
        try:
            if not args.quiet:  # one line a request, the path without its query
                _log_to_stderr("trio_stt.server.access", logging.INFO, "%(message)s")
            start = partial(serve, access_log=not args.quiet)
            url = await nursery.start(start, STTServerApp(config), args.host, args.port)
        except Exception as exc:  # hypercorn's nursery may wrap the bind error in a group
            leaves = exception_leaves(exc)
            if not any(isinstance(e, OSError) and e.errno == errno.EADDRINUSE for e in leaves):
                raise
            raise _Failed(
                f"port {args.port} on {args.host} is already in use; choose another with "
                "--port (--port 0 picks a free one)"
            ) from None
        print(f"trio-stt server on {url} (Ctrl+C to stop)", file=sys.stderr, flush=True)


class _StreamDisplay:
    """What ``stream`` shows: turns on stdout; live text and progress on stderr.

    A terminal gets one status line rewritten in place. A file or pipe gets plain lines, and
    a line of live text is always ended before anything else is written, so that when stdout
    and stderr share a file, turns and partial text never run together on one line.
    """

    def __init__(self, total_seconds: float, *, json_turns: bool, notice: str | None) -> None:
        self.notice = notice  # said once the audio flows: the session is up by then
        self.total = total_seconds
        self.json_turns = json_turns
        self.live = sys.stderr.isatty()
        self.turns = 0
        self.partial = ""  # live text of the turn under way
        self.line_open = False  # a log line of live text is waiting for its end
        self.next_report = 0.0  # logs get a progress line every tenth of the file
        self.seconds = 0.0

    def sent(self, seconds: float) -> None:
        self.seconds = seconds
        if self.notice is not None:
            status_line("")
            self._line(f"trio-stt: {self.notice}")
            self.notice = None
        if self.live:
            self._status()
        elif seconds >= self.next_report or seconds >= self.total:
            self.next_report = seconds + self.total / 10
            self._line(f"sent {seconds:.1f} / {self.total:.1f} s, {self.turns} turn(s)")

    def event(self, event: RealtimeEvent) -> None:
        if isinstance(event, TranscriptionDelta):
            self.partial = event.text
            if self.live:
                self._status()
            else:
                print(event.delta, end="", file=sys.stderr, flush=True)
                self.line_open = True
        elif isinstance(event, TranscriptionCompleted):
            self.partial = ""
            self._end_line()

    def turn(self, text: str) -> None:
        self.turns += 1
        self._end_line()
        status_line("")
        print(json.dumps({"turn": self.turns, "text": text}) if self.json_turns else text,
              flush=True)  # fmt: skip

    def finish(self) -> None:
        self._end_line()
        status_line("")

    def _status(self) -> None:
        words = f" … {self.partial}" if self.partial else ""
        status_line(f"sent {self.seconds:.1f} / {self.total:.1f} s, {self.turns} turn(s){words}")

    def _line(self, text: str) -> None:
        self._end_line()
        print(text, file=sys.stderr, flush=True)

    def _end_line(self) -> None:
        if self.line_open:
            print(file=sys.stderr, flush=True)
            self.line_open = False


async def _demo(args: argparse.Namespace) -> None:
    if not await run_demo(realtime=args.realtime, max_wer=args.max_wer):
        raise _Failed(f"a clip was recognized worse than WER {args.max_wer}")


class _Failed(Exception):
    """The command ran but its result is a failure (exit 1, one line)."""


_EXAMPLES = """\
examples:
  trio-stt demo                                  everything offline, on bundled recordings
  trio-stt transcribe talk.wav --model whisper-1 --format srt   OpenAI (OPENAI_API_KEY)
  trio-stt stream talk.wav                       live, paced at real time
  trio-stt serve --port 8000                     the local server on 127.0.0.1
  trio-stt stream talk.wav --base-url http://127.0.0.1:8000/v1 --model gpt-transcribe \\
      --vad server_vad

Results go to stdout, progress and live text to stderr. Errors are one line on stderr and
exit status 1 (2 for bad arguments).
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-stt",
        description="OpenAI speech-to-text from the command line: transcribe a file, stream "
        "one in real time, or run the local OpenAI-compatible server.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"trio-stt {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log what the trio_stt logger says to stderr (-v: info, -vv: debug)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def client(name: str, help: str, default_model: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("file", help="a WAV file (transcribe also takes mp3, m4a, flac, ...)")
        p.add_argument("--model", default=default_model, help=f"default: {default_model}")
        p.add_argument("--base-url", help="server base URL (default: OPENAI_BASE_URL or OpenAI)")
        p.add_argument(
            "--api-key", help="API key (default: OPENAI_API_KEY, which other users cannot see)"
        )
        p.add_argument(
            "--allow-insecure",
            action="store_true",
            help="send the API key over plain http:// to a host that is not this machine "
            "(refused otherwise: anyone on the way could read it)",
        )
        p.add_argument("--language", help="ISO-639-1 hint, e.g. en")
        p.add_argument("--prompt", help="context for the model")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    t = client("transcribe", "transcribe a file over HTTP", "gpt-transcribe")
    t.add_argument(
        "--format",
        default="json",
        choices=["json", "text", "srt", "vtt", "verbose_json", "diarized_json"],
    )
    t.set_defaults(run=_transcribe)
    s = client("stream", "stream a WAV file over the Realtime WebSocket", "gpt-live-transcribe")
    s.add_argument("--fast", action="store_true", help="send as fast as possible, not real time")
    s.add_argument("--chunk-ms", type=int, default=100, help="audio per append (default 100)")
    s.add_argument(
        "--vad",
        choices=["server_vad", "semantic_vad"],
        help="let the server find turns (default: the model's own; manual commit at the end)",
    )
    s.set_defaults(run=_stream)
    v = sub.add_parser(
        "serve",
        help="run the local OpenAI-compatible server",
        description="run the local OpenAI-compatible server",
    )
    v.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument("--require-api-key", metavar="KEY", help="refuse requests without this key")
    v.add_argument("--max-body-bytes", type=int, default=26_214_400)
    v.add_argument("--max-sessions", type=int, default=64)
    v.add_argument(
        "--recognizer",
        choices=["pocketsphinx", "whisper"],
        default="pocketsphinx",
        help="pocketsphinx (small, clear read speech) or whisper (Whisper tiny.en through "
        "faster-whisper: real voices; needs pip install 'trio-stt[whisper]')",
    )
    v.add_argument("--quiet", action="store_true", help="no access log on stderr")
    v.add_argument(
        "--lenient",
        action="store_true",
        help="accept what OpenAI refuses (misspelled keys, options a model lacks, unknown "
        "models, Beta event names, URLs without intent=transcription)",
    )
    v.add_argument(
        "--scripted",
        metavar="TEXT",
        help="answer every request with TEXT instead of recognizing speech (for tests)",
    )
    v.set_defaults(run=_serve)
    d = sub.add_parser(
        "demo",
        help="transcribe the bundled recordings offline, both ways, and score them",
        description=(
            "start the local server in this process (PocketSphinx) and send every bundled "
            "recording as a file and as a live stream; print what was said, what was "
            "recognized and the word error rate; exit 1 if any clip is worse than --max-wer"
        ),
    )
    d.add_argument("--realtime", action="store_true", help="pace live streams at real time")
    d.add_argument("--max-wer", type=float, default=0.35, help="default 0.35")
    d.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.verbose:
        level = logging.DEBUG if args.verbose > 1 else logging.INFO
        _log_to_stderr("trio_stt", level, "trio-stt: %(levelname)s %(name)s: %(message)s")
    try:
        trio.run(args.run, args)
    except BaseException as exc:  # noqa: ASYNC103 - outside trio.run: nothing is cancelled
        # Nurseries (ours, the server's) wrap what they propagate in groups; judge the leaves.
        leaves = exception_leaves(exc)
        if any(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
            return 130  # noqa: ASYNC104
        expected = [leaf for leaf in leaves if isinstance(leaf, _EXPECTED)]
        if len(expected) != len(leaves):
            raise  # a bug: keep the traceback
        print(f"trio-stt: error: {_in_flag_terms(str(expected[0]))}", file=sys.stderr)
        return 1  # noqa: ASYNC104
    return 0


_EXPECTED = (STTError, OSError, _Failed)

# The library's messages name its arguments; on the command line, name the flags instead.
_FLAG_TERMS = [
    ("pass api_key=", "pass --api-key"),
    ("api_key is empty", "--api-key is empty"),
    ("is base_url ", "is --base-url "),
    ("base_url is ", "--base-url is "),
    ("base_url '", "--base-url '"),
    ("pass allow_insecure=True", "pass --allow-insecure"),
]


def _in_flag_terms(message: str) -> str:
    for library_words, cli_words in _FLAG_TERMS:
        message = message.replace(library_words, cli_words)
    return message


def _log_to_stderr(name: str, level: int, fmt: str) -> None:
    """Lines of the *name* logger on stderr: ``-v`` (``trio_stt``), ``serve``'s access log."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # printed here, once


if __name__ == "__main__":
    sys.exit(main())
