"""Our own text frames: valid RFC 6455 client frames, written whole beside trio-websocket's.

The session writes its frames straight to the socket stream, while trio-websocket's reader
task writes pongs and close frames to the same stream. These tests run a real trio-websocket
server on loopback that pings the client for every message it gets, so pongs and our
messages contend for the stream the whole time.
"""

from __future__ import annotations

import json

import pytest
import trio
import trio_websocket
from wsproto.frame_protocol import FrameProtocol, Opcode

from trio_stt._frames import masked_text_frame
from trio_stt._websocket import open_websocket


@pytest.mark.parametrize("size", [0, 1, 3, 125, 126, 127, 65_535, 65_536, 200_001])
def test_a_frame_parses_as_one_final_masked_text_frame(size: int) -> None:
    message = "é" + "a" * size  # not ASCII, and of every length-field form
    frame = masked_text_frame(message)
    assert frame[1] & 0x80  # masked, as a client must
    server = FrameProtocol(client=False, extensions=[])
    server.receive_bytes(frame)
    [parsed] = list(server.received_frames())
    assert (parsed.opcode, parsed.message_finished, parsed.payload) == (Opcode.TEXT, True, message)


def test_each_frame_has_a_fresh_masking_key() -> None:
    keys = {masked_text_frame("same")[2:6] for _ in range(50)}
    assert len(keys) > 45  # RFC 6455 §5.3: unpredictable, one per frame


async def test_pongs_and_messages_share_the_stream_without_tearing_either() -> None:
    received: list[dict[str, int]] = []
    done = trio.Event()

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        async with trio.open_nursery() as pings:
            while len(received) < 200:
                received.append(json.loads(await ws.get_message()))
                pings.start_soon(ws.ping)  # answered by the client's reader task
        done.set()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None)
        url = f"ws://127.0.0.1:{server.port}/v1/realtime"
        async with open_websocket(url, [], max_message_bytes=1 << 20, connect_timeout=5) as ws:
            for i in range(200):
                await ws.send(json.dumps({"i": i, "pad": "x" * 60_000}))
            with trio.fail_after(10):
                await done.wait()
        nursery.cancel_scope.cancel()
    assert [m["i"] for m in received] == list(range(200))
