"""The audio a server has not finished with, kept to send again on a new connection.

When a realtime socket dies, the server forgets everything it held for it: the audio not
yet committed, and the turns committed but not yet transcribed. Reconnecting without that
audio loses the turn under way (openai-python's reconnect does, and LiveKit's rotation).
So every byte the session sends is also kept here, with the place of each commit it sent,
until the turn it belongs to has come back; a new connection is then sent the same audio
and the same commits, and the turns come out once, in order.

Positions are byte offsets in the stream of audio you added (24 kHz PCM16 mono: 48 bytes a
millisecond), counted once however often a stretch is sent. Pure bookkeeping, no I/O.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass

from ._pcm import BYTES_PER_MS

__all__ = ["ReplayLedger", "Replay", "LegMap"]


@dataclass(slots=True)
class _Stretch:
    start: int
    data: bytes
    voiced: bool  # dropping quiet for room loses nothing a turn needs

    @property
    def end(self) -> int:
        return self.start + len(self.data)


@dataclass(frozen=True)
class Replay:
    """What to send on a new connection: audio stretches, and commits at their places."""

    parts: tuple[bytes | None, ...]  # audio, or None for a commit
    starts: tuple[int, ...]  # the stream offset each part begins at
    lost_bytes: int  # audio that was needed but had been dropped for room

    @property
    def audio_bytes(self) -> int:
        return sum(len(p) for p in self.parts if p is not None)


class ReplayLedger:
    """Audio sent since the oldest turn not yet finished, bounded by *max_bytes*.

    Past the bound the oldest audio is dropped, so memory stays flat; what was voiced is
    counted (:attr:`lost_bytes`), so the loss of speech is known exactly if a reconnect ever
    needs that audio. Quiet is dropped without a word: an hour of a silent microphone is not
    an hour of lost audio.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"the replay buffer needs room; got {max_bytes} bytes")
        self.max_bytes = max_bytes
        # Lists, not deques: an empty deque costs 760 bytes, an empty list 56, and
        # thousands of idle sessions each hold one of these.
        self._stretches: list[_Stretch] = []
        self._commits: list[int] = []  # offsets of commits whose turn is not back
        self.kept_bytes = 0
        self.end = 0  # the stream offset after the last byte added
        self.lost_bytes = 0  # voiced audio dropped for room since the last replay was taken

    def __repr__(self) -> str:
        return (
            f"<ReplayLedger {self.kept_bytes:,} of {self.max_bytes:,} bytes, "
            f"{len(self._commits)} commit(s), lost {self.lost_bytes:,}>"
        )

    def add(self, pcm: bytes, voiced: bool = True) -> None:
        """Audio about to be sent (kept as it is: joining chunks would copy them again)."""
        self._stretches.append(_Stretch(self.end, pcm, voiced))
        self.end += len(pcm)
        self.kept_bytes += len(pcm)
        self._make_room()

    def _make_room(self) -> None:
        while self.kept_bytes > self.max_bytes:
            first = self._stretches[0]
            cut = min(len(first.data), self.kept_bytes - self.max_bytes)
            cut -= cut % 2
            cut = cut or min(2, len(first.data))
            first.data = first.data[cut:]
            first.start += cut
            self.kept_bytes -= cut
            self.lost_bytes += cut if first.voiced else 0
            if not first.data:
                del self._stretches[0]

    def commit(self) -> int:
        """A commit about to be sent, after all the audio added so far; its offset."""
        self._commits.append(self.end)
        return self.end

    def clear(self) -> None:
        """A clear about to be sent: the audio since the last commit is thrown away."""
        since = self._commits[-1] if self._commits else self._first_start()
        while self._stretches and self._stretches[-1].start >= since:
            self.kept_bytes -= len(self._stretches.pop().data)
        if self._stretches and self._stretches[-1].end > since:
            last = self._stretches[-1]
            keep = since - last.start
            self.kept_bytes -= len(last.data) - keep
            last.data = last.data[:keep]

    def _first_start(self) -> int:
        return self._stretches[0].start if self._stretches else self.end

    def finished_through(self, offset: int) -> None:
        """Every turn up to *offset* is back: its audio will never be needed again."""
        done = 0
        for stretch in self._stretches:
            if stretch.end > offset:
                break
            self.kept_bytes -= len(stretch.data)
            done += 1
        del self._stretches[:done]
        if self._stretches and self._stretches[0].start < offset:
            first = self._stretches[0]
            cut = offset - first.start
            first.data = first.data[cut:]
            first.start = offset
            self.kept_bytes -= cut
        del self._commits[: bisect.bisect_right(self._commits, offset)]

    def take_replay(self) -> Replay:
        """What a new connection must be sent, in order; resets :attr:`lost_bytes`.

        The same audio and the same commits as before, each commit after the audio that
        preceded it: a commit left with no audio (its turn's audio dropped for room, which
        :attr:`Replay.lost_bytes` reports) is sent as it was, and answered as it would be.
        """
        parts: list[bytes | None] = []
        starts: list[int] = []
        commits = deque(self._commits)
        for stretch in self._stretches:
            while commits and commits[0] <= stretch.start:
                parts.append(None)
                starts.append(commits.popleft())
            position = stretch.start
            while commits and commits[0] <= stretch.end:
                at = commits.popleft()
                if at > position:
                    parts.append(stretch.data[position - stretch.start : at - stretch.start])
                    starts.append(position)
                    position = at
                parts.append(None)
                starts.append(at)
            if position < stretch.end:
                parts.append(stretch.data[position - stretch.start :])
                starts.append(position)
        parts += [None] * len(commits)  # commits after the last audio kept
        starts += list(commits)
        lost, self.lost_bytes = self.lost_bytes, 0
        return Replay(tuple(parts), tuple(starts), lost)


class LegMap:
    """One connection's view of the stream: where its audio came from, where its turns end.

    The server counts audio in milliseconds from the start of *its* connection
    (``audio_end_ms``), and a new connection starts with replayed audio, so each stretch a
    connection was sent is noted with its place in the stream; a turn's end is then a
    stream offset, and once the turn is back the ledger lets go of everything before it.
    """

    def __init__(self, vad_margin_ms: int = 0, bytes_per_ms: int = BYTES_PER_MS) -> None:
        # The server's VAD ends a turn after a stretch of quiet; keeping the last of that
        # quiet lets the next turn's speech be found with its full prefix padding again.
        self.bytes_per_ms = bytes_per_ms
        self.vad_margin = vad_margin_ms * bytes_per_ms
        self._forget()

    def begin(self) -> None:
        """A new connection: nothing sent on it yet."""
        self._forget()

    def _forget(self) -> None:
        self._sent = 0  # bytes sent on this connection
        self._follows = -1  # the stream offset that would continue the last stretch
        self._leg_starts: list[int] = []  # where each stretch starts on the connection
        self._stream_starts: list[int] = []  # ... and in the stream
        self._commits: list[int] = []  # our commits not yet acknowledged
        self._stopped: dict[str, int] = {}  # items the server's VAD ended, at which offset
        self._ends: dict[str, int] = {}  # committed items, and where they end

    def audio_sent(self, stream_offset: int, nbytes: int) -> None:
        """Called for every append: a comparison, unless a new stretch begins here."""
        if stream_offset != self._follows:
            self._leg_starts.append(self._sent)
            self._stream_starts.append(stream_offset)
        self._sent += nbytes
        self._follows = stream_offset + nbytes

    def stream_offset(self, leg_bytes: int) -> int:
        """The stream offset of the byte at *leg_bytes* on this connection."""
        i = bisect.bisect_right(self._leg_starts, leg_bytes) - 1
        if i < 0:
            return 0
        return self._stream_starts[i] + leg_bytes - self._leg_starts[i]

    def commit_sent(self, stream_offset: int) -> None:
        self._commits.append(stream_offset)

    def vad_started(self, audio_start_ms: int) -> int:
        """Speech the server's VAD found: the quiet before it (but the padding) was heard."""
        return max(0, self.stream_offset(audio_start_ms * self.bytes_per_ms) - self.vad_margin)

    def vad_stopped(self, item_id: str, audio_end_ms: int) -> None:
        end = self.stream_offset(audio_end_ms * self.bytes_per_ms)
        self._stopped[item_id] = max(0, end - self.vad_margin)

    def committed(self, item_id: str) -> None:
        """``committed``: the server's own (its VAD named the item) or our oldest."""
        if item_id in self._stopped:
            self._ends[item_id] = self._stopped.pop(item_id)
        elif self._commits:
            self._ends[item_id] = self._commits.pop(0)

    def finished(self, item_id: str) -> int | None:
        """The turn is back: where its audio ends in the stream, if known."""
        return self._ends.pop(item_id, None)
