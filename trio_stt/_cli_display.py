"""What the CLI shows on stderr while it works: progress, live text, notices.

Results go to stdout and everything else to stderr, so ``trio-stt stream x.wav > turns.txt``
captures just the turns. A terminal gets one status line rewritten in place; a file or pipe
gets plain lines, so that logs stay readable and nothing runs together.
"""

from __future__ import annotations

import json
import os
import sys

from ._demo import status_line
from ._long_audio import SplitProgress
from ._protocol import RealtimeEvent, TranscriptionCompleted, TranscriptionDelta

__all__ = ["StreamDisplay", "SplitDisplay"]


class SplitDisplay:
    """Progress of a file sent in pieces: a status line, or a line per piece in logs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.live = sys.stderr.isatty()

    def update(self, progress: SplitProgress) -> None:
        text = (
            f"{self.name}: {progress.pieces_done} of {progress.pieces} pieces transcribed "
            f"({progress.seconds_done:.0f} / {progress.seconds:.0f} s)"
        )
        if self.live:
            status_line(text)
        else:
            print(f"trio-stt: {text}", file=sys.stderr, flush=True)


class StreamDisplay:
    """What ``stream`` shows: turns on stdout; live text and progress on stderr.

    A terminal gets one status line rewritten in place. A file or pipe gets plain lines, and
    a line of live text is always ended before anything else is written, so that turns and
    partial text never run together on one line. When stdout and stderr are one file
    (``> log 2>&1``), the live text is left out: it would repeat each turn.
    """

    def __init__(
        self, total_seconds: float | None, *, json_turns: bool, notice: str | None
    ) -> None:
        """*total_seconds* of a file, or None for a live source (the microphone)."""
        self.notice = notice  # said once the audio flows: the session is up by then
        self.total = total_seconds
        self.json_turns = json_turns
        self.live = sys.stderr.isatty()
        self.live_text = self.live or not _same_file(sys.stdout, sys.stderr)
        self.turns = 0
        self.partial = ""  # live text of the turn under way
        self.line_open = False  # a log line of live text is waiting for its end
        self.next_report = 0.0  # logs get a progress line every tenth of the file
        self.seconds = 0.0

    def sent(self, seconds: float) -> None:
        self.seconds = seconds
        if self.notice is not None:
            self.say(self.notice)
            self.notice = None
        if self.live:
            self._status()
        elif self.total is not None and (seconds >= self.next_report or seconds >= self.total):
            self.next_report = seconds + self.total / 10
            self._line(f"sent {seconds:.1f} / {self.total:.1f} s, {self.turns} turn(s)")

    def say(self, text: str) -> None:
        """A notice of the CLI's own, on a line of its own."""
        status_line("")
        self._line(f"trio-stt: {text}")

    def event(self, event: RealtimeEvent) -> None:
        if isinstance(event, TranscriptionDelta):
            self.partial = event.text
            if self.live:
                self._status()
            elif self.live_text:
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
        sent = (
            "listening" if self.total is None else f"sent {self.seconds:.1f} / {self.total:.1f} s"
        )
        status_line(f"{sent}, {self.turns} turn(s){words}")

    def _line(self, text: str) -> None:
        self._end_line()
        print(text, file=sys.stderr, flush=True)

    def _end_line(self) -> None:
        if self.line_open:
            print(file=sys.stderr, flush=True)
            self.line_open = False


def _same_file(one: object, other: object) -> bool:
    """Whether two streams write to one file, as ``> log 2>&1`` makes them."""
    try:
        a, b = os.fstat(one.fileno()), os.fstat(other.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):  # not a real file: pytest's capture, say
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
