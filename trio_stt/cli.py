"""The ``trio-stt`` command: transcribe a file, stream one in real time, or serve locally.

Results go to stdout; progress and live deltas go to stderr, so ``trio-stt stream x.wav >
turns.txt`` captures just the turns. Errors are one line and a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import numpy as np
import trio

from ._audio_files import DECODABLE, g711_format_of, read_audio, read_g711, sniff_extension
from ._cli_display import SplitDisplay, StreamDisplay
from ._cli_output import FORMATS, format_for, formats_help, output_path, render, write_output
from ._config import ClientConfig
from ._demo import run_demo, status_line
from ._errors import ConfigurationError, STTError, exception_leaves
from ._long_audio import SplitOptions
from ._model import OpenAISTTModel
from ._playback import collect_turns, transcribe_live
from ._protocol import WIRE_FORMATS
from ._settings import MODEL_CAPABILITIES, ClientVAD, STTModelSettings, capabilities_for
from ._streamed_input import StreamedAudioInput
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
    fmt = format_for(args.format, args.output, args.model)
    supported = capabilities_for(args.model).rest_formats
    if fmt not in supported:
        others = [m for m, caps in MODEL_CAPABILITIES.items() if fmt in caps.rest_formats]
        hint = f"; try --model {others[0]} for {fmt}" if others else ""
        raise ConfigurationError(
            f"{args.model} does not produce {fmt} (it produces {', '.join(sorted(supported))})"
            + hint
        )
    if args.concurrency < 1:
        raise ConfigurationError(f"--concurrency must be at least 1; got {args.concurrency}")
    destination = output_path(args.file, args.output, args.output_dir, fmt)
    file, filename = await _input_file(args.file)
    split = SplitOptions(
        limiter=trio.CapacityLimiter(args.concurrency),
        on_progress=SplitDisplay(args.file).update,
    )
    async with OpenAISTTModel(args.model, config) as model:
        host = urlsplit(config.base_url).netloc
        status_line(f"transcribing {args.file} with {args.model} at {host}")
        try:
            result = await model.transcribe_file(
                file,
                _settings(args),
                filename=filename,
                response_format=fmt,  # type: ignore[arg-type]
                timestamp_granularities=["word", "segment"] if fmt == "verbose_json" else None,
                split=split,
            )
        finally:
            status_line("")
    plain = args.format is None and destination is None  # read by a person: the text
    write_output(destination, render(result, fmt, args.json, plain=plain))
    if destination is not None:
        print(f"trio-stt: wrote {destination}", file=sys.stderr, flush=True)


async def _input_file(name: str) -> tuple[str | bytes, str | None]:
    """A path as it is; ``-`` is stdin, read whole and named by what it turns out to be."""
    if name != "-":
        await trio.lowlevel.checkpoint()
        return name, None
    data = await trio.to_thread.run_sync(sys.stdin.buffer.read)
    if not data:
        raise ConfigurationError("stdin is empty; pipe an audio file in, e.g. < talk.wav")
    ext = sniff_extension(data)
    if ext is None:
        raise ConfigurationError(f"stdin is not audio this decoder knows; it reads {DECODABLE}")
    return data, f"stdin.{ext}"


async def _stream(args: argparse.Namespace) -> None:
    send_as = args.audio_format or g711_format_of(args.file) or "audio/pcm"
    if send_as == "audio/pcm":
        frames, rate, channels = read_audio(args.file)
    else:  # G.711 as the file has it, or encoded in the law asked for
        codes = await trio.to_thread.run_sync(read_g711, args.file, send_as)
        frames, rate, channels = np.frombuffer(codes, np.uint8), 8000, 1
    settings = _vad_settings(args)
    notice = None
    if args.vad == "manual":
        notice = "--vad manual: the whole file is one turn, committed when it ends"
    shown = StreamDisplay(len(frames) / rate, json_turns=args.json, notice=notice)  # per channel
    async with OpenAISTTModel(args.model, _config(args)) as model:
        await transcribe_live(
            model,
            frames,
            rate,
            settings,
            channels=channels,
            audio_format=send_as,
            chunk_ms=args.chunk_ms,
            realtime=not args.fast,
            on_event=shown.event,
            on_turn=shown.turn,
            on_sent=shown.sent,
        )
        shown.finish()


async def _listen(args: argparse.Namespace) -> None:
    from ._microphone import MicrophoneStats, feed_from_microphone, import_sounddevice

    import_sounddevice()  # before connecting: say at once if PortAudio is missing
    settings = _vad_settings(args)
    display = StreamDisplay(None, json_turns=args.json, notice=None)
    audio = StreamedAudioInput()
    stats = MicrophoneStats()
    listening = trio.CancelScope()
    stopped_by_user = False

    async def listen() -> None:
        with listening:
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    partial(feed_from_microphone, audio, device=args.device, stats=stats)
                )
                display.say(f"listening to {args.device or 'the default input device'} "
                            "(Ctrl+C to stop)")  # fmt: skip

    async def stop_on_ctrl_c() -> None:
        nonlocal stopped_by_user
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:
                if stopped_by_user:
                    raise KeyboardInterrupt  # a second Ctrl+C: leave now
                stopped_by_user = True
                display.say("stopping: finishing the last turn (Ctrl+C again to quit now)")
                listening.cancel()

    async with OpenAISTTModel(args.model, _config(args)) as model, trio.open_nursery() as watch:
        watch.start_soon(stop_on_ctrl_c)
        await collect_turns(
            model, audio, settings, listen, on_event=display.event, on_turn=display.turn
        )
        display.finish()
        watch.cancel_scope.cancel()
    if stats.dropped_seconds or stats.overflows:
        display.say(
            f"{stats.dropped_seconds:.1f} s of audio were dropped waiting for the session "
            f"and the device overflowed {stats.overflows} time(s)"
        )
    if stopped_by_user:
        raise KeyboardInterrupt  # exit 130, as Ctrl+C does everywhere, the turns all printed


def _positive(text: str) -> int:
    """A whole number above 0, or argparse's one-line error and exit status 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number; got {value}")
    return value


def _positive_float(text: str) -> float:
    """A finite number above 0, or argparse's one-line error and exit status 2."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
    return value


def _vad_settings(args: argparse.Namespace) -> STTModelSettings:
    settings = _settings(args)
    if args.vad is None:
        return settings  # the model's own VAD, else the client's
    detection: Mapping[str, Any] | ClientVAD | Literal["manual"] = {"type": args.vad}
    if args.vad == "client_vad":
        detection = ClientVAD()
    elif args.vad == "manual":
        detection = "manual"
    return replace(settings, turn_detection=detection)


async def _serve(args: argparse.Namespace) -> None:
    from .server import (
        PocketSphinxRecognizer,
        ScriptedRecognizer,
        ServerConfig,
        STTServerApp,
        WhisperRecognizer,
        serve,
    )

    if (args.certfile is None) != (args.keyfile is None):
        raise _Failed("--certfile and --keyfile go together: pass both to serve over TLS")
    if await trio.to_thread.run_sync(_port_taken, args.host, args.port):
        raise _port_in_use(args)  # before seconds of model loading, not after
    recognizer: Recognizer
    if args.scripted is not None:
        recognizer = ScriptedRecognizer([args.scripted])
    elif args.recognizer == "whisper":
        recognizer = WhisperRecognizer()
    else:
        recognizer = PocketSphinxRecognizer()
    config = ServerConfig(
        recognizer=recognizer,
        api_key=args.require_api_key,
        max_body_bytes=args.max_body_bytes,
        max_sessions=args.max_sessions,
        max_audio_seconds=args.max_audio_seconds,
        body_timeout=args.body_timeout,
        workers=args.workers,
        lenient=args.lenient,
    )
    app = STTServerApp(config)
    if recognizer.blocking:
        name = "Whisper tiny.en" if args.recognizer == "whisper" else "PocketSphinx"
        print(f"loading the {name} model in {app.pool.workers} worker processes",
              file=sys.stderr, flush=True)  # fmt: skip
        await app.pool.warm_up(recognizer)
    async with trio.open_nursery() as nursery:
        try:
            if not args.quiet:  # one line a request, the path without its query
                _log_to_stderr("trio_stt.server.access", logging.INFO, "%(message)s")
            start = partial(
                serve, access_log=not args.quiet, certfile=args.certfile, keyfile=args.keyfile
            )
            url = await nursery.start(start, app, args.host, args.port)
        except Exception as exc:  # hypercorn's nursery may wrap the bind error in a group
            leaves = exception_leaves(exc)
            if not any(isinstance(e, OSError) and e.errno == errno.EADDRINUSE for e in leaves):
                raise
            raise _port_in_use(args) from None
        print(f"trio-stt server on {url} (Ctrl+C to stop)", file=sys.stderr, flush=True)
        if args.certfile is None and not _is_loopback(args.host):
            print(
                f"warning: {args.host} is reachable from other machines and there is no TLS: "
                "keys and audio cross the network in clear. Pass --certfile and --keyfile.",
                file=sys.stderr,
                flush=True,
            )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _port_taken(host: str, port: int) -> bool:
    """Whether something listens on *port* already (binding as the server will, with
    SO_REUSEADDR). A race with another process remains; the server's own bind says so."""
    if port == 0:
        return False
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError:
        return False  # the server's own bind will say what is wrong with the host
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _port_in_use(args: argparse.Namespace) -> _Failed:
    return _Failed(
        f"port {args.port} on {args.host} is already in use; choose another with "
        "--port (--port 0 picks a free one)"
    )


async def _demo(args: argparse.Namespace) -> None:
    if not await run_demo(realtime=args.realtime, max_wer=args.max_wer):
        raise _Failed(f"a clip was recognized worse than WER {args.max_wer}")


class _Failed(Exception):
    """The command ran but its result is a failure (exit 1, one line)."""


_EXAMPLES = """\
examples:
  trio-stt demo                                  everything offline, on bundled recordings
  trio-stt transcribe talk.mp3                   OpenAI (OPENAI_API_KEY); text on stdout
  trio-stt transcribe talk.wav --model whisper-1 -o talk.srt    subtitles, by extension
  trio-stt stream talk.flac                      live, paced at real time
  trio-stt listen --model gpt-4o-transcribe      the microphone, until Ctrl+C
  trio-stt serve --port 8000                     the local server on 127.0.0.1
  trio-stt stream talk.wav --base-url http://127.0.0.1:8000/v1 --model gpt-transcribe \\
      --vad server_vad

Results go to stdout, progress and live text to stderr. Errors are one line on stderr and
exit status 1 (2 for bad arguments, 130 after Ctrl+C).
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

    def client(
        name: str, help: str, default_model: str, *, file: bool = True
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        if file:
            p.add_argument(
                "file",
                help="an audio file: WAV, FLAC, Ogg (Vorbis, Opus), MP3, AIFF; transcribe also "
                "sends M4A and WebM as they are, and reads - as stdin",
            )
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
        p.add_argument(
            "--json",
            action="store_true",
            help="machine-readable output: transcribe prints one object (text, and language, "
            "duration, languages, segments and words when the server gave them); stream, one "
            "per turn",
        )
        return p

    t = client("transcribe", "transcribe a file over HTTP", "gpt-transcribe")
    t.add_argument(
        "--format",
        choices=FORMATS,
        help="the response format, and what is written; default: from -o's extension "
        f"(.txt, .json, .srt, .vtt), else json. Models: {formats_help()}",
    )
    t.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the result to FILE instead of stdout; its extension picks the format",
    )
    t.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write the result into DIR, named after the input (talk.wav -> DIR/talk.srt)",
    )
    t.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="pieces sent at once when a file past 25 MB (or the model's length) is split "
        "at silences (default 4)",
    )
    t.set_defaults(run=_transcribe)
    s = client("stream", "stream an audio file over the Realtime WebSocket", "gpt-live-transcribe")
    s.add_argument("--fast", action="store_true", help="send as fast as possible, not real time")
    s.add_argument(
        "--chunk-ms", type=_positive, default=100, help="ms of audio per append (default 100)"
    )
    vad = {
        "choices": ["server_vad", "semantic_vad", "client_vad", "manual"],
        "help": "who finds turns: the server (server_vad, semantic_vad), this client "
        "(client_vad: Silero with trio-stt[vad], else by level), or nobody (manual: one turn, "
        "committed at the end). Default: the model's server VAD, else client_vad",
    }
    s.add_argument("--vad", **vad)  # type: ignore[arg-type]
    s.add_argument(
        "--audio-format",
        choices=list(WIRE_FORMATS),
        help="what to send: audio/pcm (24 kHz PCM16), or G.711 audio/pcmu (µ-law) or audio/pcma "
        "(A-law), 8 kHz (default: a G.711 file, .ulaw, .alaw or a G.711 WAV, as it is; "
        "anything else as audio/pcm)",
    )
    s.set_defaults(run=_stream)
    m = client(
        "listen", "transcribe the microphone live until Ctrl+C", "gpt-live-transcribe", file=False
    )
    m.add_argument(
        "--device",
        help="input device, by number or name (see python -m sounddevice); default: the "
        "system's default input. Needs PortAudio: pip install 'trio-stt[mic]'",
    )
    m.add_argument("--vad", **vad)  # type: ignore[arg-type]
    m.set_defaults(run=_listen)
    v = sub.add_parser(
        "serve",
        help="run the local OpenAI-compatible server",
        description="run the local OpenAI-compatible server",
    )
    v.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    v.add_argument(
        "--port", type=int, default=8000, help="TCP port; 0 picks a free one (default 8000)"
    )
    v.add_argument("--require-api-key", metavar="KEY", help="refuse requests without this key")
    v.add_argument(
        "--max-body-bytes",
        type=_positive,
        default=26_214_400,
        metavar="BYTES",
        help="larger uploads get OpenAI's 413 (default 26214400, OpenAI's limit)",
    )
    v.add_argument(
        "--max-sessions",
        type=_positive,
        default=64,
        metavar="N",
        help="realtime sessions open at once; more are refused (default 64)",
    )
    v.add_argument(
        "--max-audio-seconds",
        type=_positive_float,
        default=1400.0,
        metavar="S",
        help="longest upload decoded for a model without a cap of its own, such as "
        "whisper-1, judged from the file's header (default 1400, the gpt-4o models' cap)",
    )
    v.add_argument(
        "--body-timeout",
        type=_positive_float,
        default=60.0,
        metavar="S",
        help="seconds an upload's body may take to arrive; slower ones get 408 (default 60)",
    )
    v.add_argument("--certfile", help="PEM certificate: serve HTTPS and WSS (with --keyfile)")
    v.add_argument("--keyfile", help="PEM private key of --certfile")
    v.add_argument(
        "--workers",
        type=_positive,
        default=None,
        metavar="N",
        help="worker processes that recognize at once; more turns wait for one "
        f"(default: the core count, {os.cpu_count() or 1} here)",
    )
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


async def _interruptible(args: argparse.Namespace) -> None:
    """Run the command; Ctrl+C cancels it as a whole, then leaves as KeyboardInterrupt.

    Left to trio's default, the KeyboardInterrupt is raised in whichever task is running,
    which may be the in-process server's (the demo's), whose framework logs it as an error
    and closes the client's socket with 1011. As a cancellation, every part of the command
    shuts down the way it would for any cancel, and the exit is 130 whatever they raised.
    """
    interrupted = False

    async def watch(nursery: trio.Nursery) -> None:
        nonlocal interrupted
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:
                interrupted = True
                nursery.cancel_scope.cancel()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch, nursery)
            await args.run(args)
            nursery.cancel_scope.cancel()
    finally:
        if interrupted:
            raise KeyboardInterrupt  # whatever the cancel made the parts raise


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.verbose:
        level = logging.DEBUG if args.verbose > 1 else logging.INFO
        _log_to_stderr("trio_stt", level, "trio-stt: %(levelname)s %(name)s: %(message)s")
    try:
        trio.run(_interruptible, args)
    except BaseException as exc:  # noqa: ASYNC103 - outside trio.run: nothing is cancelled
        # Nurseries (ours, the server's) wrap what they propagate in groups; judge the leaves.
        leaves = exception_leaves(exc)
        if any(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
            return 130  # noqa: ASYNC104
        if any(isinstance(leaf, BrokenPipeError) for leaf in leaves):
            # The reader went away (| head): stop quietly, as cat does, and keep Python
            # from complaining while it flushes stdout on the way out.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141  # noqa: ASYNC104
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
    ("use create_session() or a file model", "stream it (trio-stt stream) or pick a file model"),
    (
        "leave turn_detection unset (the client detects turns, ClientVAD), or 'manual' to "
        "commit turns yourself",
        "leave --vad out (the client finds the turns) or pass --vad manual",
    ),
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
