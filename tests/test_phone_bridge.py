"""The phone bridge example, end to end: a scripted carrier speaking Twilio Media Streams,
the bridge, and the local server as the upstream, all on real sockets on loopback.

The carrier sends what a carrier sends: the bundled recordings as 8 kHz µ-law (resampled
by soxr, encoded by libsndfile), in 160-byte frames every 20 ms of real time.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile
import soxr
import trio
import trio_websocket

from trio_stt import OpenAISTTModel, SessionOptions, STTModelSettings
from trio_stt._config import ClientConfig
from trio_stt.testing import RealtimeFaults, bundled_samples, open_fake_server, word_error_rate

from .helpers import serve_in_a_process

VAD = STTModelSettings(
    turn_detection={"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500}
)
FRAME = 160  # 20 ms of 8 kHz G.711


def load_example() -> ModuleType:
    path = Path(__file__).parent.parent / "examples" / "phone_bridge.py"
    spec = importlib.util.spec_from_file_location("phone_bridge", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["phone_bridge"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


phone_bridge = load_example()


def mulaw(samples: np.ndarray, rate: int, subtype: str = "ULAW") -> bytes:
    narrow = soxr.resample(samples.astype(np.float32) / 32768, rate, 8000)
    out = io.BytesIO()
    soundfile.write(out, narrow, 8000, format="RAW", subtype=subtype)
    return out.getvalue()


def quiet(seconds: float) -> bytes:
    return b"\xff" * int(seconds * 8000)  # µ-law's code for 0


async def carrier(
    port: int,
    n: int,
    audio: bytes,
    *,
    hang_up_after: float | None = None,
    hang_up: str = "stop",
    stay_while: Callable[[], bool] = lambda: False,
    encoding: str = "audio/x-mulaw",
) -> int | None:
    """One call as Twilio places it: ``connected``, ``start``, *audio* in 20 ms ``media``
    frames at real time with a ``mark`` each second, then the line's quiet for as long as
    *stay_while* says (a caller waiting for an answer), then ``stop``. After
    *hang_up_after* seconds the caller hangs up instead, by ``stop`` or by closing.
    Returns the code the bridge closed the call with (``None`` if the caller closed it)."""
    # trio-websocket's client leaves its socket open when the server closes first (its
    # reader stops at the end of the stream without closing it), so the carrier holds the
    # TCP stream itself and closes it.
    code = None
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream, trio.open_nursery() as nursery:
        ws = await trio_websocket.wrap_client_stream(nursery, stream, "127.0.0.1", "/calls")
        line = _Line(ws, f"MZ{n:032x}", f"CA{n:032x}")
        try:
            await line.start(encoding)
            began = trio.current_time()
            frames = (audio[at : at + FRAME] for at in range(0, len(audio), FRAME))
            for i in itertools.count():
                if hang_up_after is not None and i * 0.02 >= hang_up_after:
                    break
                frame = next(frames, None)
                if frame is None and not stay_while():
                    break
                await line.media(i, frame or quiet(0.02))
                await trio.sleep_until(began + (i + 1) * 0.02)
            if hang_up_after is not None and hang_up == "close":
                nursery.cancel_scope.cancel()  # the TCP stream closes, with no close frame
            else:
                await line.stop()
                with trio.fail_after(30):
                    while True:
                        await ws.get_message()  # until the bridge hangs up its end
        except trio_websocket.ConnectionClosed as closed:
            code = closed.reason.code
    return code


@dataclass
class _Line:
    """The carrier's side of one Media Streams WebSocket."""

    ws: trio_websocket.WebSocketConnection
    stream_sid: str
    call_sid: str
    sequence: int = 0

    async def send(self, event: str, **fields: object) -> None:
        self.sequence += 1
        message = {"event": event, "sequenceNumber": str(self.sequence),
                   "streamSid": self.stream_sid, **fields}  # fmt: skip
        await self.ws.send_message(json.dumps(message))

    async def start(self, encoding: str) -> None:
        await self.ws.send_message(json.dumps({"event": "connected", "protocol": "Call",
                                               "version": "1.0.0"}))  # fmt: skip
        await self.send("start", start={
            "accountSid": "AC" + "0" * 32, "streamSid": self.stream_sid,
            "callSid": self.call_sid, "tracks": ["inbound"], "customParameters": {},
            "mediaFormat": {"encoding": encoding, "sampleRate": 8000, "channels": 1},
        })  # fmt: skip

    async def media(self, i: int, frame: bytes) -> None:
        payload = base64.b64encode(frame).decode()
        await self.send("media", media={"track": "inbound", "chunk": str(i + 1),
                                        "timestamp": str(i * 20), "payload": payload})  # fmt: skip
        if i % 50 == 0:
            await self.send("mark", mark={"name": f"second {i // 50}"})

    async def stop(self) -> None:
        await self.send("stop", stop={"accountSid": "AC" + "0" * 32, "callSid": self.call_sid})


@pytest.mark.speech
async def test_twenty_calls_each_get_their_turns_and_hang_ups_end_at_once() -> None:
    """Twenty calls at once, each a bundled recording. Callers stay on the line until
    their words are transcribed, as callers waiting for an answer do (the local server
    recognizes one turn at a time, at about 0.3 s a second of speech here); calls 0 and 1
    hang up 2 s in, in mid-sentence, one with ``stop``, the other by closing its socket."""
    clips = bundled_samples()
    with serve_in_a_process("--quiet") as (_, base_url):
        async with OpenAISTTModel("gpt-4o-transcribe", ClientConfig(base_url=base_url)) as model:
            bridge = phone_bridge.PhoneBridge(model, VAD)

            def waiting(n: int) -> bool:
                heard = [c.turns for c in bridge.calls if c.call_sid == f"CA{n:032x}"]
                return len(heard[0]) < len(clips[n % len(clips)].turns)

            async with trio.open_nursery() as nursery:
                port = await nursery.start(bridge.serve)
                async with trio.open_nursery() as phones:
                    for n in range(20):
                        samples, rate = clips[n % len(clips)].read()
                        call = partial(carrier, port, n, quiet(0.5) + mulaw(samples, rate))
                        if n < 2:
                            call = partial(call, hang_up_after=2.0, hang_up=("stop", "close")[n])
                        phones.start_soon(partial(call, stay_while=partial(waiting, n)))
                        # Calls arrive a little apart, as calls do; all twenty are on the
                        # line at once. (Closer, and the one recognizer thread of the local
                        # server falls so far behind that it misses keepalive pings.)
                        await trio.sleep(0.5)
                with trio.fail_after(10):
                    for call in bridge.calls:
                        await call.ended.wait()
                nursery.cancel_scope.cancel()
    by_number = {int(c.call_sid[2:], 16): c for c in bridge.calls}
    assert sorted(by_number) == list(range(20))
    assert all(c.audio_format == "audio/pcmu" and c.error is None for c in bridge.calls)
    for n in (0, 1):
        call = by_number[n]
        assert call.hung_up == ("stop", "closed")[n]
        assert call.ended_at - call.hung_up_at < 1.0, call
        assert call.media_bytes == 100 * FRAME  # 2 s
    rates = []
    for n in range(2, 20):
        call, clip = by_number[n], clips[n % len(clips)]
        assert call.hung_up == "stop" and call.ended_at - call.hung_up_at < 1.0
        assert len(call.turns) == len(clip.turns), call.turns  # a turn a sentence
        rates.append(word_error_rate(clip.text, " ".join(call.turns)))
    # Telephone audio has nothing above 4 kHz, and PocketSphinx was trained on more: its
    # worst is "seven thirty" (0.57 once: "call me back up to a party tonight").
    assert max(rates) <= 0.6 and sum(rates) / len(rates) <= 0.25, rates


async def test_a_failing_upstream_ends_only_its_own_call() -> None:
    """The upstream cuts the first connection to receive audio; with no reconnect, that
    call's session fails: its socket is closed with 1011 and the other calls go on."""
    speech = mulaw((np.sin(np.arange(24_000) * 0.05) * 9000).astype(np.int16), 24_000)
    audio = quiet(0.3) + speech + quiet(1.0)
    faults = RealtimeFaults(drops=[(3, 1011)])
    async with open_fake_server(["hello caller"], faults=faults) as server:
        options = SessionOptions(reconnect=None)
        bridge = phone_bridge.PhoneBridge(server.model("gpt-4o-transcribe"), VAD, options=options)
        closes = {}

        async def call(n: int) -> None:
            closes[n] = await carrier(port, n, audio)

        async with trio.open_nursery() as nursery:
            port = await nursery.start(bridge.serve)
            async with trio.open_nursery() as phones:
                for n in range(3):
                    phones.start_soon(call, n)
                    await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    failed = [c for c in bridge.calls if c.error is not None]
    assert len(failed) == 1 and "1011" in failed[0].error
    failed_number = int(failed[0].call_sid[2:], 16)
    assert closes == {n: 1011 if n == failed_number else 1000 for n in range(3)}
    others = [c for c in bridge.calls if c.error is None]
    assert len(others) == 2 and all(c.turns == ["hello caller"] for c in others)


async def test_a_call_in_a_format_it_cannot_take_is_refused_and_the_bridge_goes_on() -> None:
    async with open_fake_server(["hello caller"]) as server:
        bridge = phone_bridge.PhoneBridge(server.model("gpt-4o-transcribe"), VAD)
        async with trio.open_nursery() as nursery:
            port = await nursery.start(bridge.serve)
            refused = await carrier(port, 0, quiet(0.2), encoding="audio/l16")
            taken = await carrier(port, 1, quiet(0.3) + b"\x10\x20" * 4000 + quiet(1.0),
                                  encoding="audio/x-alaw")  # fmt: skip
            nursery.cancel_scope.cancel()
    assert (refused, taken) == (1003, 1000)
    assert [c.audio_format for c in bridge.calls] == ["audio/pcma"]
    assert bridge.calls[0].turns == ["hello caller"]
