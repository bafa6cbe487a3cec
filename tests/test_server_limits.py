"""The local server against careless and hostile clients: every malformed message is an
``error`` event and the session goes on; every limit holds under concurrency; nothing a
client sends is kept once its session is over.

Written from outside: real sockets on loopback, the server started as users start it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
import trio_websocket

from trio_stt.server import ScriptedRecognizer, ServerConfig, open_server
from trio_stt.server._serve import RunningServer

from .helpers import serve_in_a_process

GOOD_UPDATE = {
    "type": "session.update",
    "session": {
        "type": "transcription",
        "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}},
    },
}


def update(audio_input: Any) -> str:
    session = {"type": "transcription", "audio": {"input": audio_input}}
    return json.dumps({"type": "session.update", "event_id": "evt_u", "session": session})


def append(audio: Any, event_id: str = "evt_a") -> str:
    return json.dumps({"type": "input_audio_buffer.append", "event_id": event_id, "audio": audio})


def vad(**fields: Any) -> str:
    return update({"turn_detection": {"type": "server_vad", **fields}})


# name: (message, the error's code, whether the error names the client's event_id)
MALFORMED: dict[str, tuple[str | bytes, str, bool]] = {
    "JSON nested 100 000 deep": ("[" * 100_000, "invalid_json", False),
    "an update nested 50 000 deep": (
        '{"type":"session.update","session":' + '{"a":' * 50_000 + "1" + "}" * 50_001,
        "invalid_json",
        False,
    ),
    "odd-length PCM16": (append(base64.b64encode(b"\x01\x02\x03").decode()), "invalid_value", True),
    "audio that is not base64": (append("%%%"), "invalid_value", True),
    "audio that is a number": (append(5), "invalid_type", True),
    "audio missing": (
        json.dumps({"type": "input_audio_buffer.append"}),
        "missing_required_parameter",
        False,
    ),
    "not JSON": ("{", "invalid_json", False),
    "NaN": ('{"type": "session.update", "x": NaN}', "invalid_json", False),
    "a list": ("[]", "invalid_json", False),
    "a number for a type": ('{"type": 5}', "invalid_json", False),
    "a binary frame": (b"\x00\x01", "invalid_json", False),
    "an unknown event": (
        json.dumps({"type": "response.create", "event_id": "e"}),
        "invalid_value",
        True,
    ),
    "a format that is a string": (update({"format": "x"}), "invalid_type", True),
    "a sample rate of 0": (
        update({"format": {"type": "audio/pcm", "rate": 0}}),
        "integer_below_min_value",
        True,
    ),
    "turn detection that is a string": (update({"turn_detection": "x"}), "invalid_type", True),
    "a silence of 10**400 ms": (vad(silence_duration_ms=10**400), "integer_above_max_value", True),
    "a prefix of 10**12 ms": (vad(prefix_padding_ms=10**12), "integer_above_max_value", True),
    "a negative silence": (vad(silence_duration_ms=-1), "integer_below_min_value", True),
    "a threshold of 2": (vad(threshold=2), "invalid_value", True),
    "a model that is a number": (update({"transcription": {"model": 5}}), "invalid_type", True),
}


@asynccontextmanager
async def connected(server: RunningServer, beta: bool = False) -> AsyncIterator[Any]:
    url = server.base_url.replace("http://", "ws://") + "/realtime?intent=transcription"
    headers = [("OpenAI-Beta", "realtime=v1")] if beta else []
    async with trio_websocket.open_websocket_url(
        url, extra_headers=headers, max_message_size=2**24
    ) as ws:
        assert json.loads(await ws.get_message())["type"].endswith("session.created")
        yield ws


async def answer(ws: Any, message: str | bytes) -> dict[str, Any]:
    await ws.send_message(message)
    with trio.fail_after(5):
        return dict(json.loads(await ws.get_message()))


def _configures(message: str | bytes) -> bool:
    return isinstance(message, str) and message.startswith('{"type": "session.update"')


@pytest.mark.parametrize(
    ("mode", "name"),
    [
        (mode, name)
        for mode in ("ga", "beta", "lenient")
        for name, (message, _, _) in MALFORMED.items()
        if not (mode == "beta" and _configures(message))  # Beta configures by another event
    ],
)
async def test_a_malformed_message_is_an_error_event_and_the_session_goes_on(
    name: str, mode: str
) -> None:
    message, code, names_event = MALFORMED[name]
    configures = _configures(message)
    config = ServerConfig(recognizer=ScriptedRecognizer(["fine"]), lenient=mode == "lenient")
    async with open_server(config) as server, connected(server, beta=mode == "beta") as ws:
        reply = await answer(ws, message)
        if mode == "lenient" and configures:  # it takes what OpenAI refuses; junk is ignored
            assert reply["type"] in ("error", "session.updated"), reply
        else:
            assert reply["type"] == "error", reply
            assert reply["error"]["code"] == code, reply
            assert (reply["error"].get("event_id") is not None) == names_event, reply
        # The session is alive and still takes audio and commits.
        if mode != "beta":
            assert (await answer(ws, json.dumps(GOOD_UPDATE)))["type"] == "session.updated"
        await ws.send_message(append(base64.b64encode(bytes(9600)).decode(), "evt_ok"))
        committed = await answer(ws, json.dumps({"type": "input_audio_buffer.commit"}))
        assert committed["type"] == "input_audio_buffer.committed", committed


async def test_max_sessions_holds_when_twenty_clients_connect_at_once() -> None:
    config = ServerConfig(recognizer=ScriptedRecognizer(["hi"]), max_sessions=8)
    answers: list[bytes] = []
    async with open_server(config) as server:
        port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
        everyone_tried = trio.Event()

        async def connect() -> None:
            """A WebSocket handshake by hand: its status line is the server's decision."""
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(
                    b"GET /v1/realtime?intent=transcription HTTP/1.1\r\nHost: x\r\n"
                    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\n"
                )
                answers.append((await stream.receive_some(4096)).split(b"\r\n", 1)[0])
                if len(answers) == 20:
                    everyone_tried.set()
                await everyone_tried.wait()  # an accepted client holds its slot till the end

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(connect)
    assert sorted(answers) == [b"HTTP/1.1 101 "] * 8 + [b"HTTP/1.1 403 "] * 12, answers


async def raw_request(server: RunningServer, head: bytes, body: bytes = b"") -> bytes:
    """Send a request by hand and return what the server answered before closing."""
    port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    answer = b""
    async with stream:
        await stream.send_all(head + body)
        while b"\r\n0\r\n\r\n" not in answer:  # the chunked body's end
            chunk = await stream.receive_some(65_536)
            if not chunk:
                break
            answer += chunk
    return answer


def post_head(length: int) -> bytes:
    return (
        b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: %d\r\n\r\n" % length
    )


async def test_a_declared_length_over_the_limit_is_refused_before_the_body() -> None:
    config = ServerConfig(recognizer=ScriptedRecognizer(["hi"]), max_body_bytes=1_000_000)
    async with open_server(config) as server:
        with trio.fail_after(5):  # no body is ever sent: only the declaration can be judged
            answer = await raw_request(server, post_head(1_000_000_000))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"1000000000 bytes declared" in answer


async def test_a_trickled_body_is_cut_after_the_body_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = ServerConfig(recognizer=ScriptedRecognizer(["hi"]), body_timeout=10)
    async with open_server(config) as server:
        port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(post_head(1000))
            start = trio.current_time()
            answer = b""
            with trio.move_on_after(60):
                async with trio.open_nursery() as nursery:

                    async def trickle() -> None:
                        for _ in range(1000):
                            await stream.send_all(b"x")
                            await trio.sleep(1)

                    nursery.start_soon(trickle)
                    answer = await stream.receive_some(65_536)
                    nursery.cancel_scope.cancel()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert 10 <= trio.current_time() - start < 12


async def test_a_header_claiming_hours_is_refused_before_decoding() -> None:
    from trio_stt import BadRequestError, ClientConfig, OpenAISTTModel
    from trio_stt._audio import write_wav

    one_hertz = write_wav(np.zeros(48_000, np.int16), 1)  # 96 kB that claim 13 hours
    long_file = write_wav(np.zeros(12 * 24_000, np.int16), 24_000)
    recognizer = ScriptedRecognizer(["hi"])
    config = ServerConfig(recognizer=recognizer, max_audio_seconds=10)
    async with open_server(config) as server:
        model = OpenAISTTModel("whisper-1", ClientConfig(base_url=server.base_url, api_key="k"))
        async with model:
            with trio.fail_after(5), pytest.raises(BadRequestError, match="says 1 Hz"):
                await model.transcribe_file(one_hertz, filename="tiny.wav")
            with pytest.raises(BadRequestError, match="longer than 10 seconds"):
                await model.transcribe_file(long_file, filename="long.wav")
    assert recognizer.calls == []  # neither was decoded, let alone recognized


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
async def test_memory_stays_flat_over_200_sessions() -> None:
    """Each round: a realtime session that streams 5 s in 20 ms appends, and an upload."""
    from trio_stt import AudioInput, ClientConfig, OpenAISTTModel

    pcm = base64.b64encode(bytes(960)).decode()  # 20 ms
    with serve_in_a_process("--scripted", "hi", "--quiet") as (server, base_url):
        url = base_url.replace("http://", "ws://") + "/realtime?intent=transcription"
        model = OpenAISTTModel("whisper-1", ClientConfig(base_url=base_url, api_key="a-key"))

        async def session() -> None:
            async with trio_websocket.open_websocket_url(url) as ws:
                await ws.get_message()
                await ws.send_message(json.dumps(GOOD_UPDATE))
                for _ in range(250):
                    await ws.send_message(append(pcm))
                await ws.send_message(json.dumps({"type": "input_audio_buffer.commit"}))
                while json.loads(await ws.get_message())["type"] != (
                    "conversation.item.input_audio_transcription.completed"
                ):
                    pass
            await model.transcribe(AudioInput(np.zeros(24_000, np.float32)))

        async def rounds(count: int) -> None:
            await trio.lowlevel.checkpoint()
            for _ in range(count // 4):
                async with trio.open_nursery() as nursery:
                    for _ in range(4):
                        nursery.start_soon(session)

        async with model:
            await rounds(20)
            after_20 = rss_mb(server.pid)
            await rounds(180)
            after_200 = rss_mb(server.pid)
    assert after_200 - after_20 <= 20, f"{after_20:.1f} MB after 20, {after_200:.1f} after 200"
