"""The local server recognizes in worker processes: the event loop never waits on a decode,
and a client that leaves takes its decode with it.

These run real PocketSphinx decodes against the server as users start it, on loopback.
Their bounds are generous (a health check within 0.25 s; a slot freed within 1 s): in a
thread, one decode held the event loop for seconds.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from functools import partial

import httpx2
import numpy as np
import pytest
import trio
import trio_websocket

from trio_stt import AudioInput, ClientConfig, OpenAISTTModel
from trio_stt.server import RunningServer, ServerConfig, STTServerApp, open_server, serve
from trio_stt.testing import bundled_samples, word_error_rate

pytest.importorskip("pocketsphinx")

RATE = 24_000


def speech(seconds: float) -> np.ndarray:
    """The bundled recordings one after another, half a second apart, for *seconds*."""
    parts, total = [], 0
    clips = bundled_samples()
    while total < seconds * RATE:
        samples, rate = clips[len(parts) // 2 % len(clips)].read()
        assert rate == RATE
        parts += [samples, np.zeros(RATE // 2, np.int16)]
        total += len(samples) + RATE // 2
    return (np.concatenate(parts)[: int(seconds * RATE)] / 32768).astype(np.float32)


@pytest.fixture
async def real_server() -> AsyncIterator[RunningServer]:
    async with open_server(ServerConfig(workers=2)) as running:
        await running.app.pool.warm_up(running.app.config.recognizer)
        yield running


async def busy(server: RunningServer, count: int) -> None:
    """Wait (really: decodes take real time) until *count* decodes are running."""
    with trio.fail_after(30):
        while True:  # a worker process's progress: nothing to wait on but the count
            await trio.sleep(0.01)
            if server.app.pool.limiter.borrowed_tokens >= count:
                return


async def freed_within(server: RunningServer) -> float:
    """Seconds until no decode holds a slot and no realtime session is open."""
    start = time.monotonic()
    with trio.fail_after(10):
        while True:
            await trio.sleep(0.01)
            if not (server.app.pool.limiter.borrowed_tokens or server.app.realtime.active):
                return time.monotonic() - start


async def test_health_answers_at_once_while_four_decodes_run(real_server: RunningServer) -> None:
    audio = speech(12)
    texts: list[str] = []
    latencies: list[float] = []
    model = OpenAISTTModel("whisper-1", ClientConfig(base_url=real_server.base_url, api_key="k"))

    async def transcribe() -> None:
        texts.append(await model.transcribe(AudioInput(audio)))

    async with model, httpx2.AsyncClient() as client, trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(transcribe)
        await busy(real_server, 2)
        while len(texts) < 4:
            start = time.monotonic()
            answer = await client.get(real_server.base_url + "/health")
            latencies.append(time.monotonic() - start)
            assert answer.status_code == 200
            await trio.sleep(0.05)
    assert all("weather" in text for text in texts), texts  # they were really recognized
    assert len(latencies) > 20, "the decodes ended before the health checks could measure"
    assert max(latencies) <= 0.25, f"health took {max(latencies):.3f} s during the decodes"


async def test_a_client_that_leaves_mid_decode_frees_its_slot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ctrl-C during an upload's recognition: the decode stops, and the log says the client
    left (it once said 200, a minute later, for an answer nobody received)."""
    app = STTServerApp(ServerConfig(workers=2))
    caplog.set_level(logging.INFO, "trio_stt.server.access")
    async with trio.open_nursery() as server:
        base_url = await server.start(partial(serve, access_log=True), app, "127.0.0.1", 0)
        running = RunningServer(base_url, app)
        model = OpenAISTTModel("whisper-1", ClientConfig(base_url=base_url, api_key="k"))
        async with model, trio.open_nursery() as nursery:
            nursery.start_soon(model.transcribe, AudioInput(speech(60)))
            await busy(running, 1)
            nursery.cancel_scope.cancel()  # Ctrl-C, as far as the server can tell
        assert await freed_within(running) <= 1.0
        assert app.client_disconnected.is_set()
        server.cancel_scope.cancel()
    [line] = [r.getMessage() for r in caplog.records if "/audio/transcriptions" in r.getMessage()]
    assert '"POST /v1/audio/transcriptions" - 0B' in line
    assert line.endswith("(client left)")


async def test_a_realtime_client_that_leaves_mid_decode_frees_its_slot(
    real_server: RunningServer,
) -> None:
    url = real_server.base_url.replace("http://", "ws://") + "/realtime?intent=transcription"
    pcm = (speech(60) * 32767).astype("<i2").tobytes()
    async with trio_websocket.open_websocket_url(url) as ws:
        session = {"type": "transcription", "audio": {"input": {
            "transcription": {"model": "gpt-4o-transcribe"}, "turn_detection": None}}}  # fmt: skip
        await ws.send_message(json.dumps({"type": "session.update", "session": session}))
        for start in range(0, len(pcm), 96_000):
            audio = base64.b64encode(pcm[start : start + 96_000]).decode()
            await ws.send_message(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
        await ws.send_message(json.dumps({"type": "input_audio_buffer.commit"}))
        await busy(real_server, 1)
    assert await freed_within(real_server) <= 1.0


async def test_a_recognizer_that_fails_in_its_worker_is_an_error_not_a_crash() -> None:
    from trio_stt import InternalServerError
    from trio_stt.server import PocketSphinxRecognizer

    broken = PocketSphinxRecognizer(hmm="/nonexistent/acoustic-model")  # fails in the worker
    async with open_server(ServerConfig(recognizer=broken, workers=1)) as server:
        model = OpenAISTTModel("whisper-1", ClientConfig(base_url=server.base_url, api_key="k"))
        async with model:
            with pytest.raises(InternalServerError, match="error while processing"):
                await model.transcribe(AudioInput(speech(2)))
            with pytest.raises(InternalServerError):  # the same worker, still serving
                await model.transcribe(AudioInput(speech(2)))
        assert server.app.pool.busy == 0


async def test_partials_arrive_while_the_turn_is_spoken(real_server: RunningServer) -> None:
    """Real speech paced at real time in 20 ms frames, server VAD: text grows during it."""
    clip = bundled_samples()[0]
    samples, _ = clip.read()
    pcm = np.concatenate([np.zeros(RATE // 2, np.int16), samples, np.zeros(RATE, np.int16)])
    frames = pcm.astype("<i2").tobytes()
    url = real_server.base_url.replace("http://", "ws://") + "/realtime?intent=transcription"
    events: list[dict[str, object]] = []
    async with trio_websocket.open_websocket_url(url) as ws:
        session = {"type": "transcription", "audio": {"input": {
            "transcription": {"model": "gpt-4o-transcribe"}}}}  # fmt: skip
        await ws.send_message(json.dumps({"type": "session.update", "session": session}))

        async def listen() -> None:
            while True:
                event = json.loads(await ws.get_message())
                events.append(event)
                if event["type"].endswith("transcription.completed"):
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen)
            for start in range(0, len(frames), 960):  # 20 ms
                audio = base64.b64encode(frames[start : start + 960]).decode()
                await ws.send_message(
                    json.dumps({"type": "input_audio_buffer.append", "audio": audio})
                )
                await trio.sleep(0.02)
    kinds = [str(e["type"]) for e in events]
    stopped = kinds.index("input_audio_buffer.speech_stopped")
    deltas = [i for i, kind in enumerate(kinds) if kind.endswith("transcription.delta")]
    assert deltas, kinds
    assert deltas[0] < stopped, f"no delta before the end of speech: {kinds}"
    transcript = str(events[-1]["transcript"])
    assert word_error_rate(clip.text, transcript) <= 0.35, transcript
    streamed = "".join(str(events[i]["delta"]) for i in deltas)
    # The deltas are the completion's words, unless a partial settled on a word the final
    # hypothesis changed (then the completion stops the deltas and carries the truth).
    assert transcript.startswith(streamed) or word_error_rate(transcript, streamed) <= 0.5


async def test_segments_end_where_the_speaker_paused(real_server: RunningServer) -> None:
    clips = bundled_samples()[:3]
    pause = np.zeros(3 * RATE, np.int16)
    parts = [part for clip in clips for part in (clip.read()[0], pause)]
    audio = (np.concatenate(parts) / 32768).astype(np.float32)
    model = OpenAISTTModel("whisper-1", ClientConfig(base_url=real_server.base_url, api_key="k"))
    async with model:
        result = await model.transcribe_file(AudioInput(audio), response_format="verbose_json")
    spans, at = [], 0.0  # each clip's time in the file
    for clip in clips:
        spans.append((at, at + clip.duration))
        at += clip.duration + 3
    for segment in result.segments:  # no segment runs over a 3 s pause (they were cut at 9 s)
        assert any(a - 0.1 <= segment.start and segment.end <= b + 0.1 for a, b in spans), (
            segment, spans)  # fmt: skip
    for a, b in spans:  # and each clip's segments say what it said
        said = " ".join(s.text for s in result.segments if a - 0.1 <= s.start <= b)
        assert word_error_rate(clips[spans.index((a, b))].text, said) <= 0.35, said
