"""The ``trio-stt`` command: transcribe a file, stream one in real time, or serve locally.

Results go to stdout; progress and live deltas go to stderr, so ``trio-stt stream x.wav >
turns.txt`` captures just the turns. Errors are one line and a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import trio

from ._audio import read_wav
from ._config import ClientConfig
from ._errors import STTError
from ._model import OpenAISTTModel
from ._protocol import TranscriptionCompleted, TranscriptionDelta
from ._session import SessionOptions
from ._settings import STTModelSettings
from ._streamed_input import StreamedAudioInput

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["main"]


def _config(args: argparse.Namespace) -> ClientConfig:
    return ClientConfig.from_env(base_url=args.base_url, api_key=args.api_key)


def _settings(args: argparse.Namespace) -> STTModelSettings:
    return STTModelSettings(language=args.language, prompt=args.prompt)


async def _transcribe(args: argparse.Namespace) -> None:
    async with OpenAISTTModel(args.model, _config(args)) as model:
        result = await model.transcribe_file(
            args.file, _settings(args), response_format=args.format
        )
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
    frames, rate, channels = read_wav(args.file)
    model = OpenAISTTModel(args.model, _config(args))
    audio = StreamedAudioInput(frame_rate=rate, channels=channels)
    step = max(1, rate * args.chunk_ms // 1000)
    settings = _settings(args)
    async with model.create_session(audio, settings, options=SessionOptions()) as session:
        events = session.events()

        async def send() -> None:
            start = trio.current_time()
            for i, begin in enumerate(range(0, len(frames), step)):
                await audio.add_audio(frames[begin : begin + step])
                if not args.fast:
                    await trio.sleep_until(start + (i + 1) * args.chunk_ms / 1000)
            await audio.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            async for event in events:
                _show(event, args.json)


def _show(event: Any, as_json: bool) -> None:
    if isinstance(event, TranscriptionDelta) and not as_json:
        print(f"\r… {event.text}", end="", file=sys.stderr, flush=True)
    elif isinstance(event, TranscriptionCompleted):
        if as_json:
            print(json.dumps({"item_id": event.item_id, "text": event.transcript}), flush=True)
        else:
            print("\r\x1b[K", end="", file=sys.stderr)
            print(event.transcript, flush=True)


async def _serve(args: argparse.Namespace) -> None:
    from .server import ServerConfig, STTServerApp, serve

    config = ServerConfig(
        api_key=args.require_api_key,
        max_body_bytes=args.max_body_bytes,
        max_sessions=args.max_sessions,
    )
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve, STTServerApp(config), args.host, args.port)
        print(f"trio-stt server on {url} (Ctrl+C to stop)", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trio-stt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def client(name: str, help: str, default_model: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("file", help="a WAV file (transcribe also takes mp3, m4a, flac, ...)")
        p.add_argument("--model", default=default_model, help=f"default: {default_model}")
        p.add_argument("--base-url", help="server base URL (default: OPENAI_BASE_URL or OpenAI)")
        p.add_argument("--api-key", help="API key (default: OPENAI_API_KEY)")
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
    v.set_defaults(run=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        trio.run(args.run, args)
    except KeyboardInterrupt:
        return 130
    except (STTError, OSError) as exc:
        print(f"trio-stt: error: {exc}", file=sys.stderr)
        return 1
    except BaseExceptionGroup as group:  # a failure inside the CLI's own nursery
        first = group.exceptions[0]
        print(f"trio-stt: error: {first}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
