"""The replay ledger: what a new connection is sent after the old one died."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trio_stt._protocol._replay import ReplayLedger


def audio(n: int, fill: int = 1) -> bytes:
    return bytes([fill]) * n


def test_audio_and_commits_come_back_in_order_until_their_turns_finish() -> None:
    ledger = ReplayLedger(1_000_000)
    ledger.add(audio(100, 1))
    first = ledger.commit()
    ledger.add(audio(50, 2))
    second = ledger.commit()
    ledger.add(audio(30, 3))  # the turn under way
    replay = ledger.take_replay()
    assert replay.parts == (audio(100, 1), None, audio(50, 2), None, audio(30, 3))
    assert replay.starts == (0, 100, 100, 150, 150)
    ledger.finished_through(first)  # the first turn came back
    assert ledger.take_replay().parts == (audio(50, 2), None, audio(30, 3))
    ledger.finished_through(second)
    assert ledger.take_replay().parts == (audio(30, 3),)
    assert ledger.kept_bytes == 30


def test_a_clear_drops_only_what_came_after_the_last_commit() -> None:
    ledger = ReplayLedger(1_000_000)
    ledger.add(audio(100, 1))
    ledger.commit()
    ledger.add(audio(40, 2))
    ledger.clear()
    ledger.add(audio(20, 3))
    assert ledger.take_replay().parts == (audio(100, 1), None, audio(20, 3))
    assert ledger.kept_bytes == 120


def test_past_its_bound_it_drops_the_oldest_and_counts_it() -> None:
    ledger = ReplayLedger(1_000)
    for _ in range(50):
        ledger.add(audio(100))
    assert ledger.kept_bytes == 1_000
    replay = ledger.take_replay()
    assert replay.lost_bytes == 4_000 and replay.audio_bytes == 1_000
    assert ledger.take_replay().lost_bytes == 0  # reported once


def test_quiet_dropped_for_room_is_not_a_loss() -> None:
    ledger = ReplayLedger(1_000)
    for i in range(50):
        ledger.add(audio(100), voiced=i >= 30)  # 3,000 bytes of quiet, then 2,000 of speech
    replay = ledger.take_replay()
    assert replay.lost_bytes == 1_000 and replay.audio_bytes == 1_000


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "commit", "clear", "finish"]),
                          st.integers(1, 400).map(lambda n: n * 2)), max_size=40))  # fmt: skip
def test_the_replay_is_exactly_what_a_model_of_the_stream_keeps(ops: list) -> None:  # type: ignore[type-arg]
    """A model: the audio of unfinished turns and the current tail, commits between."""
    ledger = ReplayLedger(10_000_000)
    kept: list[tuple[int, bytes | None]] = []  # (offset, audio or commit) in order
    position = 0
    for n, (op, size) in enumerate(ops):
        if op == "add":
            data = bytes([n % 251]) * size
            ledger.add(data)
            kept.append((position, data))
            position += size
        elif op == "commit":
            ledger.commit()
            kept.append((position, None))
        elif op == "clear":
            ledger.clear()
            last_commit = max((i for i, (_, d) in enumerate(kept) if d is None), default=-1)
            kept = kept[: last_commit + 1]
        elif op == "finish":
            commits = [at for at, d in kept if d is None]
            if commits:  # the first turn is back (and any empty commit at its place)
                ledger.finished_through(commits[0])
                kept = [(at, d) for at, d in kept if at > commits[0] or
                        (at == commits[0] and d is not None)]  # fmt: skip
    replay = ledger.take_replay()
    expected = b"".join(d for _, d in kept if d is not None)
    assert b"".join(p for p in replay.parts if p is not None) == expected
    assert replay.parts.count(None) == sum(d is None for _, d in kept)
    assert ledger.kept_bytes == len(expected)
