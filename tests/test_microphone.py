"""The microphone, through a real PortAudio input device that plays a recording.

See ``alsa_fifo.py`` for the device. ``trio-stt listen`` runs as a user runs it, in a
process of its own, and is stopped with Ctrl+C (SIGINT); the library helper runs in the
test's own nursery beside a session, and is stopped by cancelling it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import trio

from trio_stt import MicrophoneStats, StreamedAudioInput, feed_from_microphone, open_microphone
from trio_stt.server import PocketSphinxRecognizer
from trio_stt.testing import bundled_samples, open_fake_server, word_error_rate

from .alsa_fifo import PlayingDevice, portaudio_missing

pytestmark = pytest.mark.speech


if (_why := portaudio_missing()) is not None:  # .ci/run installs it
    pytest.skip(_why, allow_module_level=True)


@pytest.fixture
def clip() -> tuple[str, np.ndarray]:
    sample = next(s for s in bundled_samples() if s.name == "weather")
    samples, rate = sample.read()
    assert rate == 24_000
    return sample.text, samples


async def read_until(stream: trio.abc.ReceiveStream, needle: bytes, seen: bytearray) -> None:
    await trio.lowlevel.checkpoint()
    while needle not in seen:
        data = await stream.receive_some()
        if not data:
            raise AssertionError(f"stream ended before {needle!r}: {bytes(seen)!r}")
        seen += data


async def test_listen_transcribes_a_device_until_ctrl_c(
    tmp_path: Path, clip: tuple[str, np.ndarray]
) -> None:
    said, samples = clip
    with PlayingDevice(tmp_path, samples) as device:
        async with open_fake_server(recognizer=PocketSphinxRecognizer()) as server:
            args = [sys.executable, "-m", "trio_stt", "listen", "--base-url", server.base_url]
            process = await trio.lowlevel.open_process(
                args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=device.env
            )
            assert process.stdout is not None and process.stderr is not None
            err = bytearray()
            with trio.fail_after(30):
                await read_until(process.stderr, b"listening to the default input", err)
                await trio.to_thread.run_sync(device.played.wait, abandon_on_cancel=True)
                await trio.sleep(0.3)  # the last blocks reach the session
                process.send_signal(signal.SIGINT)
                out = bytearray()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read_until, process.stdout, b"\n", out)
                    nursery.start_soon(read_until, process.stderr, b"finishing the last", err)
                code = await process.wait()
                while chunk := await process.stderr.receive_some():
                    err += chunk
    assert code == 130, err.decode()
    assert b"Traceback" not in err
    assert word_error_rate(said, out.decode()) <= 0.2, out.decode()


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlayingDevice]:
    """One device for the tests that open it in this process: PortAudio reads the ALSA
    configuration (in ``$HOME``) once, when it starts, and keeps it."""
    sample = next(s for s in bundled_samples() if s.name == "weather")
    home = tmp_path_factory.mktemp("mic-home")
    with pytest.MonkeyPatch.context() as patch, PlayingDevice(home, sample.read()[0]) as device:
        patch.setenv("HOME", str(home))
        yield device


async def wait_until_played(device: PlayingDevice, stats: MicrophoneStats) -> None:
    """Until the recording went to the device's reader and the session's input took it."""
    await trio.to_thread.run_sync(device.played.wait, abandon_on_cancel=True)
    # PortAudio's thread counts blocks as it hands them over: nothing to wait on but this.
    while stats.captured_seconds < len(device.pcm) / 2 / 24_000:  # noqa: ASYNC110
        await trio.sleep(0.05)


async def test_the_helper_feeds_a_session_in_the_users_nursery(
    device: PlayingDevice, clip: tuple[str, np.ndarray]
) -> None:
    said, samples = clip
    stats = MicrophoneStats()
    audio = StreamedAudioInput()
    with trio.fail_after(30):
        async with open_fake_server(recognizer=PocketSphinxRecognizer()) as server:
            model = server.model("gpt-live-transcribe")
            async with model.create_session(audio) as session:
                async with trio.open_nursery() as mic:  # the user's own nursery
                    await mic.start(partial(feed_from_microphone, audio, stats=stats))
                    await wait_until_played(device, stats)  # it played from the start
                    mic.cancel_scope.cancel()  # stop listening: the input ends, turn committed
                turns = [text async for text in session.transcribe_turns()]
    assert len(turns) == 1 and word_error_rate(said, turns[0]) <= 0.2
    assert stats.captured_seconds >= len(samples) / 24_000
    assert stats.dropped_seconds == 0


async def test_open_microphone_ends_its_input_to_keep_the_last_turn(
    device: PlayingDevice, clip: tuple[str, np.ndarray]
) -> None:
    said, samples = clip
    stats = MicrophoneStats()
    with trio.fail_after(30):
        async with open_fake_server(recognizer=PocketSphinxRecognizer()) as server:
            model = server.model("gpt-live-transcribe")
            async with (
                open_microphone(stats=stats) as audio,
                model.create_session(audio) as session,
                trio.open_nursery() as nursery,
            ):

                async def stop_once_played() -> None:
                    await wait_until_played(device, stats)
                    await audio.aclose()  # the turn is committed; the events end

                nursery.start_soon(stop_once_played)
                turns = [text async for text in session.transcribe_turns()]
    assert len(turns) == 1 and word_error_rate(said, turns[0]) <= 0.2
    assert stats.captured_seconds >= len(samples) / 24_000


async def test_open_microphone_gives_back_the_users_own_exception(device: PlayingDevice) -> None:
    mine = ValueError("mine")
    with pytest.raises(ValueError, match="mine") as raised:
        async with open_microphone():
            raise mine
    assert raised.value is mine
