"""The append policy: small frames are joined into appends of ``min_append_ms``, and audio
never waits longer than ``append_deadline_ms`` for the rest of one.

The producers here run the way applications feed a microphone: a task in the user's own
nursery inside the session, adding 20 ms frames at real time. The clock is trio's mock
clock (no sockets: the in-memory connector), so the times asserted are exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import trio
import trio.testing

from trio_stt import SessionOptions, StreamedAudioInput, STTModelSettings
from trio_stt.testing import FakeServer, open_fake_server, speech_like

from .helpers import assert_nothing_left

MANUAL = STTModelSettings(turn_detection="manual")
FRAME = (speech_like(0.02) * 32767).astype(np.int16)  # 20 ms, 960 bytes
BYTES_PER_MS = 48


def appended_sizes(server: FakeServer) -> list[int]:
    """Each append's audio, in bytes, in the order the server received them."""
    events = server.sessions[0].events_of("input_audio_buffer.append")
    return [int(event["audio"].strip("<>").split()[0]) for event in events]


async def paced_frames(audio: StreamedAudioInput, count: int, period: float = 0.02) -> None:
    """A microphone: *count* 20 ms frames, one every *period* seconds, then the end."""
    start = trio.current_time()
    for i in range(count):
        await audio.add_audio(FRAME)
        await trio.sleep_until(start + (i + 1) * period)
    await audio.aclose()


async def stream(server: FakeServer, options: SessionOptions, frames: int) -> list[str]:
    audio = StreamedAudioInput()
    options = SessionOptions(**{**vars(options), "connector": server.connector})
    async with server.model().create_session(audio, MANUAL, options=options) as session:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(paced_frames, audio, frames)
            texts = [text async for text in session.transcribe_turns()]
    return texts


@pytest.mark.parametrize(
    ("options", "appends", "each_ms"),
    [
        (SessionOptions(), 10, 100),  # the default: 100 ms appends
        (SessionOptions(min_append_ms=200), 5, 200),  # coarser, one setting away
        (SessionOptions(min_append_ms=0), 50, 20),  # every frame on its own
    ],
)
async def test_20ms_frames_cost_one_append_per_min_append_ms(
    options: SessionOptions, appends: int, each_ms: int, exact_clock: trio.testing.MockClock
) -> None:
    async with open_fake_server(["one second of speech"]) as server:
        turns = await stream(server, options, frames=50)
        sizes = appended_sizes(server)
        assert sizes == [each_ms * BYTES_PER_MS] * appends
        assert sum(sizes) == 50 * FRAME.nbytes  # nothing lost, nothing doubled
        assert turns == ["one second of speech"]
        await assert_nothing_left(server)


async def test_audio_waits_no_longer_than_the_deadline(
    exact_clock: trio.testing.MockClock,
) -> None:
    """A producer slower than the policy: each lone frame goes out at its deadline."""
    async with open_fake_server(["x"]) as server:
        audio = StreamedAudioInput()
        options = SessionOptions(connector=server.connector, append_deadline_ms=60)
        async with server.model().create_session(audio, MANUAL, options=options):
            for sent in range(1, 4):
                await audio.add_audio(FRAME)
                added = trio.current_time()
                await trio.sleep_until(added + 0.059)
                await trio.testing.wait_all_tasks_blocked()
                assert len(appended_sizes(server)) == sent - 1  # still waiting for more
                await trio.sleep_until(added + 0.060)
                await trio.testing.wait_all_tasks_blocked()
                assert appended_sizes(server) == [FRAME.nbytes] * sent  # out at the deadline
                await trio.sleep(0.3)
            await audio.aclose()
        await assert_nothing_left(server)


async def test_a_commit_sends_the_waiting_audio_at_once(
    exact_clock: trio.testing.MockClock,
) -> None:
    """Push-to-talk: releasing the button must not wait for the append deadline."""
    async with open_fake_server(["first", "second"]) as server:
        audio = StreamedAudioInput()
        options = SessionOptions(connector=server.connector, min_append_ms=300)
        with trio.fail_after(10):
            async with server.model().create_session(audio, MANUAL, options=options) as s:
                turns = s.transcribe_turns()
                for _ in range(6):  # 120 ms: less than an append
                    await audio.add_audio(FRAME)
                before = trio.current_time()
                await s.commit()
                assert trio.current_time() == before  # no deadline was waited for
                assert await turns.receive() == "first"
                for _ in range(7):
                    await audio.add_audio(FRAME)
                await audio.aclose()  # the end of input does not wait either
                assert await turns.receive() == "second"
                assert trio.current_time() == before
        kinds = [e["type"].rsplit(".", 1)[-1] for e in server.sessions[0].client_events]
        assert kinds[-4:] == ["append", "commit", "append", "commit"]
        assert appended_sizes(server) == [6 * FRAME.nbytes, 7 * FRAME.nbytes]
        await assert_nothing_left(server)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min_append_ms": -1}, "min_append_ms must be a finite number >= 0"),
        ({"append_deadline_ms": float("nan")}, "append_deadline_ms must be a finite number"),
        (
            {"min_append_ms": 600, "max_append_ms": 500},
            r"max_append_ms \(500\) is below min_append_ms \(600\)",
        ),
    ],
)
def test_a_policy_that_cannot_work_is_refused(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SessionOptions(**fields)  # type: ignore[arg-type]


def test_a_coarse_minimum_raises_the_default_maximum_with_it() -> None:
    coarse = SessionOptions(min_append_ms=600).append_policy()
    assert coarse.min_bytes == coarse.max_bytes == 600 * 48
    assert SessionOptions().append_policy().max_bytes == 500 * 48
